import { randomBytes } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import t from 'tap';
import { OPERATOR_NODE_ID } from '../../../../shared/constants.js';
import { PEER_AUTH_HEADER } from '../../../../shared/wire/peer.js';
import { RELEASE_BODY_LIMIT, RELEASE_CHUNK_BYTES } from '../../../../shared/wire/release.js';
import { buildApp } from '../../../../agent/http/app.js';
import type { HealthDocument } from '../../../../agent/health/aggregate.js';
import { deriveClusterKeys } from '../../../../agent/identity/keys.js';
import { createPeerClient } from '../../../../agent/peers/client.js';
import { ReplayCache, signRequest } from '../../../../agent/peers/protocol.js';
import { createPeerRoutes, type PeerRouteContext } from '../../../../agent/peers/routes.js';
import { generateReleaseKey, signRelease } from '../../../../agent/upgrade/signature.js';
import { requestPath, readState } from '../../../../agent/upgrade/state.js';
import { chunksOf, upgradeSubsystem, type UpgradePeer } from '../../../../agent/upgrade/subsystem.js';
import { memoryLogger } from '../../../helpers/fakes.js';
import { KEY, OTHER_KEY } from '../formation/helpers.js';

/**
 * The release endpoints over real HTTP (fastify on loopback, the real peer
 * client): the operator's offer, chunks and install; a node catching up
 * from a peer; and everything a caller can get wrong, refused with a stable
 * code and counted.
 */
const keys = deriveClusterKeys(KEY);
const health: HealthDocument = { status: 'pass', version: '0', releaseId: '0', serviceId: 'x', description: 'x', checks: {} };
const notModelled = (what: string) => () => {
  throw new Error(`Not implemented: ${what}`);
};
const releaseKey = generateReleaseKey();
const bytes = randomBytes(RELEASE_CHUNK_BYTES * 2 + 123);
const sig = signRelease(releaseKey.privatePem, { version: '1.1.0', bytes });

async function node(t: { teardown(fn: () => unknown): void }, nodeId: string, opts: { running?: string; dir?: string } = {}) {
  const dir = opts.dir ?? mkdtempSync(join(tmpdir(), 'upgrade-routes-'));
  if (!opts.dir) t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const { log, lines } = memoryLogger();
  const failures: string[] = [];
  let peers: UpgradePeer[] = [];
  const client = createPeerClient({ keys, identity: { nodeId, name: nodeId.slice(0, 4), createdAt: '' }, timeoutMs: 5000, windowMs: 30_000 });
  t.teardown(() => client.close());
  const upgrade = upgradeSubsystem({ stateDir: dir, running: opts.running ?? '1.0.0', nodeId, releaseKey: releaseKey.publicKey, deadlineMs: 300_000, catchUp: true, catchUpIntervalMs: 30_000, log, peers: () => peers, client: () => client });
  const ctx: PeerRouteContext = {
    keys, identity: { nodeId, name: 'pi', createdAt: '' }, windowMs: 30_000, replay: new ReplayCache(60_000),
    self: { nodeId, port: 0, isOwnHost: (h) => h === '127.0.0.1' },
    now: Date.now, nonce: () => randomBytes(16).toString('base64url'), iv: () => randomBytes(12),
    hello: notModelled('hello'), grantSource: notModelled('grantSource'), onGrantIssued: notModelled('onGrantIssued'), status: notModelled('status'),
    peers: notModelled('peers'), nodes: notModelled('nodes'), checks: notModelled('checks'), services: notModelled('services'),
    authFailure: (r) => failures.push(r), grantRefused: notModelled('grantRefused'),
    release: upgrade,
  };
  const app = await buildApp({ log, bodyLimit: 16384, version: '0', health: () => health, metrics: () => '', countError: () => undefined, plugins: [createPeerRoutes(ctx)] });
  t.teardown(() => app.close());
  await app.listen({ host: '127.0.0.1', port: 0 });
  const port = (app.server.address() as { port: number }).port;
  return { dir, app, upgrade, failures, lines, port, setPeers: (p: UpgradePeer[]) => (peers = p), target: { addr: '127.0.0.1', port, nodeId } };
}

t.test('the operator offers, sends and installs over the peer protocol; a node that missed it catches up from a peer', async (t) => {
  const a = await node(t, 'a'.repeat(24));
  const operator = createPeerClient({ keys, identity: { nodeId: OPERATOR_NODE_ID, name: 'operator', createdAt: '' }, timeoutMs: 5000, windowMs: 30_000 });
  t.teardown(() => operator.close());
  t.match(await operator.releaseOffer(a.target, sig), { state: 'receive', have: 0, running: '1.0.0' });
  // Cut short after the first chunk, then offered again: it resumes where it stopped.
  const [first] = [...chunksOf(bytes, 0)];
  await operator.releaseChunk(a.target, sig.sha256, first![0], first![1]);
  const again = await operator.releaseOffer(a.target, sig);
  t.equal(again.have, RELEASE_CHUNK_BYTES, 'offered again: resumes after the first chunk');
  let last = null;
  for (const [o, c] of chunksOf(bytes, again.have)) last = await operator.releaseChunk(a.target, sig.sha256, o, c);
  t.match(last, { have: bytes.length, complete: true });
  const st = await operator.releaseInstall(a.target, sig.sha256);
  t.match(st.upgrade, { state: 'requested', version: '1.1.0', from: '1.0.0' });
  t.same(JSON.parse(readFileSync(requestPath(a.dir), 'utf8')), { sha256: sig.sha256 }, 'the root installer is asked');
  t.same((await operator.releaseTarget(a.target, sig)).target, sig, 'the cluster version declared');
  t.notOk(a.lines().some((l) => JSON.stringify(l).includes(sig.signature)), 'no signature in the journal');

  // A restarted into 1.1.0 (same state directory); B was off and runs 1.0.0.
  const a2 = await node(t, 'c'.repeat(24), { running: '1.1.0', dir: a.dir });
  const b = await node(t, 'b'.repeat(24));
  b.setPeers([{ nodeId: a2.target.nodeId, name: 'pi-a', addr: '127.0.0.1', port: a2.port, version: '1.1.0' }]);
  t.equal(await b.upgrade.catchUpOnce(), 'installing 1.1.0', 'B reads the release from A over HTTP and asks its installer');
  t.same(readFileSync(join(b.dir, 'upgrade', 'releases', `${sig.sha256}.tar.gz`)), bytes, 'byte for byte');
  t.equal(readState(b.dir)?.state, 'requested');
  t.ok(b.lines().some((l) => /catching up: the cluster runs 1\.1\.0, fetching it from pi-a/.test(String(l.msg))), 'B says so in its journal');
});

t.test('the release routes verify like every peer route and limit sizes: 4xx with stable codes, counted', async (t) => {
  const n = await node(t, 'd'.repeat(24));
  const sign = (path: string, body: string, over: Partial<{ key: string; nonce: string }> = {}) =>
    signRequest(over.key ? deriveClusterKeys(over.key) : keys, { method: 'POST', path, body, nodeId: OPERATOR_NODE_ID, to: n.target.nodeId, now: Date.now(), nonce: over.nonce ?? randomBytes(16).toString('base64url') });
  const post = (url: string, payload: string, header?: string) =>
    n.app.inject({ method: 'POST', url, headers: { 'content-type': 'application/json', ...(header ? { [PEER_AUTH_HEADER]: header } : {}) }, payload });
  const OFFER = '/v1/peers/release/offer';
  const CHUNK = '/v1/peers/release/chunk';
  const offer = JSON.stringify({ v: 1, signature: sig });
  const replayed = sign(OFFER, offer);
  t.equal((await post(OFFER, offer, replayed)).statusCode, 200, 'first use is fine');
  const chunk = (data: string) => JSON.stringify({ v: 1, sha256: sig.sha256, offset: 0, data });
  const big = chunk(Buffer.alloc(RELEASE_CHUNK_BYTES + 4096).toString('base64'));
  const cases: Array<[string, ReturnType<typeof post>, number, string]> = [
    ['no auth header', post(OFFER, offer), 401, 'PISWARM_ERR_AUTH_FAILED'],
    ['replayed', post(OFFER, offer, replayed), 409, 'PISWARM_ERR_REPLAY'],
    ['another cluster', post(OFFER, offer, sign(OFFER, offer, { key: OTHER_KEY })), 403, 'PISWARM_ERR_WRONG_CLUSTER'],
    ['signed for another route', post(CHUNK, offer, sign(OFFER, offer)), 401, 'PISWARM_ERR_AUTH_FAILED'],
    ['a signature that is no signature', post(OFFER, JSON.stringify({ v: 1, signature: { ...sig, signature: 'x' } }), sign(OFFER, JSON.stringify({ v: 1, signature: { ...sig, signature: 'x' } }))), 400, 'PISWARM_ERR_BAD_REQUEST'],
    ['a chunk larger than a chunk', post(CHUNK, big, sign(CHUNK, big)), 413, 'PISWARM_ERR_BODY_TOO_LARGE'],
    ['a chunk that is not base64', post(CHUNK, chunk('<script>'), sign(CHUNK, chunk('<script>'))), 400, 'PISWARM_ERR_BAD_REQUEST'],
    ['install of a release not held', post('/v1/peers/release/install', JSON.stringify({ v: 1, sha256: 'e'.repeat(64) }), sign('/v1/peers/release/install', JSON.stringify({ v: 1, sha256: 'e'.repeat(64) }))), 422, 'PISWARM_ERR_RELEASE_REFUSED'],
    ['fetch of a release not held', post('/v1/peers/release/fetch', JSON.stringify({ v: 1, sha256: 'e'.repeat(64), offset: 0 }), sign('/v1/peers/release/fetch', JSON.stringify({ v: 1, sha256: 'e'.repeat(64), offset: 0 }))), 422, 'PISWARM_ERR_RELEASE_REFUSED'],
  ];
  t.ok(big.length > RELEASE_BODY_LIMIT, 'the oversized chunk is over the route limit');
  for (const [what, p, status, code] of cases) {
    const res = await p;
    t.equal(res.statusCode, status, `${what}: status (${res.body.slice(0, 120)})`);
    t.equal(res.json().code, code, `${what}: code`);
  }
  t.same([...new Set(n.failures)].sort(), ['bad_mac', 'malformed', 'malformed_body', 'replay', 'too_large', 'wrong_cluster']);
});
