import t from 'tap';
import { encodeAdvert, verifyAdvert, type Advert } from '../../../../agent/discovery/advert.js';
import { deriveClusterKeys, Keyring, keysFor } from '../../../../agent/identity/keys.js';
import { ReplayCache, openToken, sealToken, signRequest, signResponse, verifyRequest, verifyResponse, type SelfAddressing } from '../../../../agent/peers/protocol.js';
import { deriveGossipKeys, encodeMessage, GossipKeyring, open, seal } from '../../../../shared/wire/gossip.js';
import { reason } from '../peers/auth-reason.js';

// A key rotation (issue 16): for a while every node accepts the old key and
// the new one, whichever it signs with; a third key stays another cluster.
const OLD = 'the cluster key before the rotation, 32+ chars';
const NEW = 'the cluster key after the rotation, 32+ chars!';
const THIRD = 'a key this cluster never had, 32 characters +';
const NOW = 1_800_000_000_000;
const JOINER = '1'.repeat(24);
const MANAGER = '2'.repeat(24);
const SELF: SelfAddressing = { nodeId: MANAGER, port: 7070, isOwnHost: (h) => h === '10.0.0.2' };


t.test('a ring signs with its primary and finds any of its keys by cluster id', async (t) => {
  const [oldK, newK] = [deriveClusterKeys(OLD), deriveClusterKeys(NEW)];
  const ring = new Keyring(oldK, [newK, deriveClusterKeys(OLD)]);
  t.same(ring.clusterIds, [oldK.clusterId, newK.clusterId], 'the primary first, a key given twice once');
  t.equal(ring.clusterId, oldK.clusterId);
  t.ok(ring.authKey.equals(oldK.authKey));
  t.equal(keysFor(ring, newK.clusterId), newK);
  t.equal(keysFor(ring, deriveClusterKeys(THIRD).clusterId), null);
  t.equal(keysFor(ring, undefined), null);
  t.equal(keysFor(newK, newK.clusterId), newK, 'a single key is a ring of one');
  t.equal(keysFor(newK, oldK.clusterId), null);
  ring.set(newK);
  t.same(ring.clusterIds, [newK.clusterId], 'set replaces the whole ring');
  t.ok(ring.grantKey.equals(newK.grantKey) && ring.advertKey.equals(newK.advertKey));
});

t.test('peer requests: a ring holding both keys accepts either; replays are refused whatever the key', async (t) => {
  const ring = new Keyring(deriveClusterKeys(OLD), [deriveClusterKeys(NEW)]);
  const replay = new ReplayCache(60_000);
  const body = '{"v":1}';
  const req = (key: string, nonce: string) => signRequest(deriveClusterKeys(key), { method: 'POST', path: '/v1/peers/hello', body, nodeId: JOINER, to: MANAGER, now: NOW, nonce });
  const v = (header: string) => reason(() => verifyRequest(ring, { method: 'POST', path: '/v1/peers/hello', body, header, now: NOW, windowMs: 30_000, replay, self: SELF }));
  t.equal(v(req(OLD, 'a'.repeat(22))), 'accepted', 'a node still signing with the old key');
  t.equal(v(req(NEW, 'b'.repeat(22))), 'accepted', 'a node already signing with the new key');
  t.equal(v(req(NEW, 'b'.repeat(22))), 'replay', 'the same request again');
  t.equal(v(req(THIRD, 'c'.repeat(22))), 'wrong_cluster', 'a key outside the ring');
  const forged = req(NEW, 'd'.repeat(22)).replace(deriveClusterKeys(NEW).clusterId, deriveClusterKeys(OLD).clusterId);
  t.equal(v(forged), 'bad_mac', 'a MAC under one key naming the other key\'s cluster id');
  ring.set(deriveClusterKeys(NEW));
  t.equal(v(req(OLD, 'e'.repeat(22))), 'wrong_cluster', 'once the old key is dropped, its holders are another cluster');
});

t.test('answers and grants travel under the key the request came with', async (t) => {
  const oldK = deriveClusterKeys(OLD);
  const newK = deriveClusterKeys(NEW);
  const managerRing = new Keyring(newK, [oldK]);
  // A joiner that has the old key only asks a manager that already signs with the new one.
  const header = signRequest(oldK, { method: 'POST', path: '/v1/grants', body: '{}', nodeId: JOINER, to: MANAGER, now: NOW, nonce: 'f'.repeat(22) });
  const auth = verifyRequest(managerRing, { method: 'POST', path: '/v1/grants', body: '{}', header, now: NOW, windowMs: 30_000, replay: new ReplayCache(60_000), self: SELF });
  const answerKeys = keysFor(managerRing, auth.clusterId)!;
  t.equal(answerKeys, oldK, 'the manager answers under the joiner\'s key');
  const answer = signResponse(answerKeys, { requestNonce: auth.nonce, to: auth.to, status: 200, body: '{"ok":1}', nodeId: MANAGER, now: NOW, nonce: 'g'.repeat(22) });
  t.equal(reason(() => verifyResponse(oldK, { requestNonce: auth.nonce, to: MANAGER, status: 200, body: '{"ok":1}', header: answer, now: NOW, windowMs: 30_000 })), 'accepted');
  const bind = { requestNonce: auth.nonce, responseNonce: 'g'.repeat(22), joinerId: JOINER, managerId: MANAGER, swarmId: 'S', managerAddrs: ['10.0.0.2:2377'] };
  const token = 'SWMTKN-1-3pu6hszjas19xyp7ghgosyx9k8atbfcr8p2is99znpy26u2lkl-1awxwuwd3z9j1z3puu7rcgdbx';
  t.equal(openToken(oldK, bind, sealToken(answerKeys, bind, token, Buffer.alloc(12, 1))), token, 'the joiner opens the grant with the key it holds');
  t.throws(() => openToken(oldK, bind, sealToken(newK, bind, token, Buffer.alloc(12, 1))), { code: 'PISWARM_ERR_PEER_UNVERIFIED' }, 'a grant under the other key does not open');
});

t.test('adverts: accepted under any key of the ring, another key is another cluster', async (t) => {
  const ring = new Keyring(deriveClusterKeys(NEW), [deriveClusterKeys(OLD)]);
  const advert: Advert = { nodeId: 'a'.repeat(24), addr: '192.168.1.20', port: 7070, role: 'worker', swarmId: null, ts: NOW, seq: 1 };
  for (const key of [OLD, NEW]) t.match(verifyAdvert(ring, encodeAdvert(deriveClusterKeys(key), advert), NOW, { maxAgeMs: 60_000 }), { ok: true }, key === OLD ? 'old key' : 'new key');
  t.match(verifyAdvert(ring, encodeAdvert(deriveClusterKeys(THIRD), advert), NOW, { maxAgeMs: 60_000 }), { ok: false, reason: 'wrong_cluster' });
  t.equal(encodeAdvert(ring, advert).c, deriveClusterKeys(NEW).clusterId, 'a ring advertises under its primary');
});

t.test('gossip: datagrams under either key open, sealed under the primary; a dropped key is another cluster', async (t) => {
  const ring = new GossipKeyring(deriveGossipKeys(OLD), [deriveGossipKeys(NEW)]);
  const payload = encodeMessage({ t: 'p', s: 1, f: 'a'.repeat(24), n: 'b'.repeat(24) });
  for (const key of [OLD, NEW]) t.match(open(ring, seal(deriveGossipKeys(key), payload)!), { ok: true }, key === OLD ? 'old key' : 'new key');
  t.same(open(ring, seal(deriveGossipKeys(THIRD), payload)!), { ok: false, reason: 'wrongCluster' });
  t.match(open(deriveGossipKeys(OLD), seal(ring, payload)!), { ok: true }, 'sealed under the primary');
  const tampered = seal(deriveGossipKeys(NEW), payload)!;
  tampered[tampered.length - 1]! ^= 1;
  t.same(open(ring, tampered), { ok: false, reason: 'auth' });
  ring.set(deriveGossipKeys(NEW));
  t.same(open(ring, seal(deriveGossipKeys(OLD), payload)!), { ok: false, reason: 'wrongCluster' });
  t.match(open(deriveGossipKeys(NEW), seal(ring, payload)!), { ok: true }, 'now sealed under the new key');
});
