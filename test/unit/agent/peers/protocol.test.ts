import t from 'tap';
import { deriveClusterKeys } from '../../../../agent/identity/keys.js';
import { AuthError, ReplayCache, addressee, isAddressedTo, openToken, parseAuthHeader, sealToken, signRequest, signResponse, verifyRequest, verifyResponse, type GrantBinding, type SelfAddressing } from '../../../../agent/peers/protocol.js';
import { reason } from './auth-reason.js';

const keys = deriveClusterKeys('the cluster key of this test, 32 chars+');
const rogue = deriveClusterKeys('a rogue manager guessing at the key, 32+');
const NOW = 1_800_000_000_000;
const JOINER = '1'.repeat(24);
const MANAGER = '2'.repeat(24);
const TOKEN = 'SWMTKN-1-3pu6hszjas19xyp7ghgosyx9k8atbfcr8p2is99znpy26u2lkl-1awxwuwd3z9j1z3puu7rcgdbx';
const n = (c: string) => c.repeat(22);
/** The manager the requests below are addressed to: its id, port 7070, address 10.0.0.2. */
const SELF: SelfAddressing = { nodeId: MANAGER, port: 7070, isOwnHost: (h) => h === '10.0.0.2' };


t.test('request: a good one verifies; each kind of bad one fails with its reason and code', async (t) => {
  const body = '{"v":1,"nodeId":"111111111111111111111111"}';
  const header = signRequest(keys, { method: 'POST', path: '/v1/grants', body, nodeId: JOINER, to: MANAGER, now: NOW, nonce: n('a') });
  const v = (over: Partial<{ method: string; path: string; body: string; header: unknown; now: number; self: SelfAddressing }>, replay = new ReplayCache(60_000)) =>
    reason(() => verifyRequest(keys, { method: 'POST', path: '/v1/grants', body, header, now: NOW + 500, windowMs: 30_000, replay, self: SELF, ...over }));
  t.equal(v({}), 'accepted');
  t.equal(v({ body: body.replace('"v":1', '"v":2') }), 'bad_mac', 'body changed');
  t.equal(v({ path: '/v1/peers/hello' }), 'bad_mac', 'path changed');
  t.equal(v({ method: 'PUT' }), 'bad_mac', 'method changed');
  t.equal(v({ header: header.replace(`n=${JOINER}`, `n=${'3'.repeat(24)}`) }), 'bad_mac', 'node id changed');
  t.equal(v({ header: signRequest(rogue, { method: 'POST', path: '/v1/grants', body, nodeId: JOINER, to: MANAGER, now: NOW, nonce: n('b') }) }), 'wrong_cluster', 'another cluster');
  t.equal(v({ header: signRequest(rogue, { method: 'POST', path: '/v1/grants', body, nodeId: JOINER, to: MANAGER, now: NOW, nonce: n('b') }).replace(`c=${rogue.clusterId}`, `c=${keys.clusterId}`) }), 'bad_mac', 'wrong key claiming our cluster');
  t.equal(v({ now: NOW + 30_001 }), 'stale', 'too old');
  t.equal(v({ now: NOW - 30_001 }), 'stale', 'from the future');
  t.equal(v({ header: undefined }), 'malformed');
  t.equal(v({ header: 'v=1,c=x' }), 'version', 'an old protocol version is named as such');
  t.equal(v({ header: header.replace('v=2,', 'v=1,').replace(`,a=${MANAGER}`, '') }), 'version', 'a version 1 header (no addressee)');
  t.equal(v({ header: header.replace(`a=${MANAGER}`, `a=${JOINER}`) }), 'bad_mac', 'addressee changed in flight');
  t.equal(v({ header: 'v=2,c=x' }), 'malformed');
  t.equal(v({ header: 'x'.repeat(1000) }), 'malformed');
  const replay = new ReplayCache(60_000);
  t.equal(v({}, replay), 'accepted');
  t.equal(v({}, replay), 'replay', 'same nonce twice');
  const codes = { stale: 'PISWARM_ERR_STALE', replay: 'PISWARM_ERR_REPLAY', wrong_cluster: 'PISWARM_ERR_WRONG_CLUSTER', bad_mac: 'PISWARM_ERR_AUTH_FAILED', malformed: 'PISWARM_ERR_AUTH_FAILED', misaddressed: 'PISWARM_ERR_MISADDRESSED', version: 'PISWARM_ERR_PROTOCOL_VERSION' };
  for (const [r, code] of Object.entries(codes)) t.equal(new AuthError(r as keyof typeof codes, 'x').code, code, `${r} -> ${code}`);
});

t.test('addressee: a request captured on its way to one node is refused by every other node and by its sender, and accepted once by its addressee', async (t) => {
  const body = '{"v":1}';
  const third = '3'.repeat(24);
  const nodes: Record<string, SelfAddressing> = {
    manager: SELF,
    sender: { nodeId: JOINER, port: 7070, isOwnHost: (h) => h === '10.0.0.1' },
    third: { nodeId: third, port: 7070, isOwnHost: (h) => h === '10.0.0.3' },
  };
  const caches = Object.fromEntries(Object.keys(nodes).map((k) => [k, new ReplayCache(60_000)]));
  const at = (who: string, header: string) => reason(() => verifyRequest(keys, { method: 'POST', path: '/v1/peers/hello', body, header, now: NOW, windowMs: 30_000, replay: caches[who]!, self: nodes[who]! }));
  for (const to of [MANAGER, addressee({ addr: '10.0.0.2', port: 7070 })]) {
    const captured = signRequest(keys, { method: 'POST', path: '/v1/peers/hello', body, nodeId: JOINER, to, now: NOW, nonce: n(to === MANAGER ? 'g' : 'h') });
    t.equal(at('third', captured), 'misaddressed', `${to}: replayed to a third node`);
    t.equal(at('sender', captured), 'misaddressed', `${to}: replayed to its sender`);
    t.equal(at('manager', captured), 'accepted', `${to}: its addressee accepts it`);
    t.equal(at('manager', captured), 'replay', `${to}: once`);
  }
  t.ok(isAddressedTo('[fd00::2]:7070', { nodeId: MANAGER, port: 7070, isOwnHost: (h) => h === 'fd00::2' }), 'IPv6 in brackets');
  t.notOk(isAddressedTo('10.0.0.2:7071', SELF), 'another port of the same host is another agent');
  t.equal(addressee({ addr: 'fd00::2', port: 7070 }), '[fd00::2]:7070');
  t.equal(addressee({ addr: '10.0.0.2', port: 7070, nodeId: MANAGER }), MANAGER, 'a known node is addressed by id');
});

t.test('replay cache: bounded, and forgets after its TTL', async (t) => {
  const c = new ReplayCache(1000, 100);
  for (let i = 0; i < 500; i++) t.ok(c.check(`n${i}`, NOW) || true);
  t.ok(c.size <= 100, `size ${c.size}`);
  t.notOk(c.check('n499', NOW + 999));
  t.ok(c.check('n499', NOW + 1001), 'an expired nonce is old enough to be stale anyway');
});

t.test('grant: good exchange, tampering, wrong key, rogue manager', async (t) => {
  const reqNonce = n('c');
  const resNonce = n('d');
  const bind: GrantBinding = { requestNonce: reqNonce, responseNonce: resNonce, joinerId: JOINER, managerId: MANAGER, swarmId: 'swarm1', managerAddrs: ['10.0.0.1:2377'] };
  const sealed = sealToken(keys, bind, TOKEN, Buffer.alloc(12, 7));
  t.notOk(JSON.stringify(sealed).includes('SWMTKN'), 'only ciphertext travels');
  t.equal(openToken(keys, bind, sealed), TOKEN, 'the joiner opens it');

  const fails = (what: string, fn: () => unknown) => t.throws(fn, { code: 'PISWARM_ERR_PEER_UNVERIFIED' }, what);
  const flip = (s: string) => Buffer.from(Buffer.from(s, 'base64url').map((b, i) => (i === 0 ? b ^ 1 : b))).toString('base64url');
  fails('tampered ciphertext', () => openToken(keys, bind, { ...sealed, ciphertext: flip(sealed.ciphertext) }));
  fails('tampered tag', () => openToken(keys, bind, { ...sealed, tag: flip(sealed.tag) }));
  fails('other swarm id (lure into a foreign swarm)', () => openToken(keys, { ...bind, swarmId: 'evil' }, sealed));
  fails('other manager addresses', () => openToken(keys, { ...bind, managerAddrs: ['6.6.6.6:2377'] }, sealed));
  fails('sealed for another joiner', () => openToken(keys, { ...bind, joinerId: '3'.repeat(24) }, sealed));
  fails('an old grant replayed to a new request', () => openToken(keys, { ...bind, requestNonce: n('e') }, sealed));
  fails('sealed with another key', () => openToken(keys, bind, sealToken(rogue, bind, 'SWMTKN-1-rogue', Buffer.alloc(12, 1))));

  // The rogue manager does not hold the key: whatever it signs, the joiner refuses the answer.
  const body = JSON.stringify({ swarmId: 'rogue', ...sealToken(rogue, bind, 'SWMTKN-1-rogue', Buffer.alloc(12, 2)) });
  const rogueHeader = signResponse(rogue, { requestNonce: reqNonce, to: MANAGER, status: 200, body, nodeId: MANAGER, now: NOW, nonce: resNonce });
  const forgedClusterHeader = rogueHeader.replace(`c=${rogue.clusterId}`, `c=${keys.clusterId}`);
  const check = (header: string, b = body, rn = reqNonce, to = MANAGER) => reason(() => verifyResponse(keys, { requestNonce: rn, to, status: 200, body: b, header, now: NOW, windowMs: 30_000 }));
  t.equal(check(rogueHeader), 'wrong_cluster');
  t.equal(check(forgedClusterHeader), 'bad_mac', 'claiming our cluster id does not help');
  const good = signResponse(keys, { requestNonce: reqNonce, to: MANAGER, status: 200, body, nodeId: MANAGER, now: NOW, nonce: resNonce });
  t.equal(check(good), 'accepted');
  t.equal(check(good, body, n('f')), 'bad_mac', 'an answer to another request');
  t.equal(check(good, body + ' '), 'bad_mac', 'body changed in flight');
  t.equal(check(good, body, reqNonce, '10.0.0.9:7070'), 'misaddressed', 'an answer to a request addressed to another node');
  t.equal(parseAuthHeader(good)?.nodeId, MANAGER);
});
