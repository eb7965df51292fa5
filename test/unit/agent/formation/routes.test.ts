import t from 'tap';
import { randomBytes } from 'node:crypto';
import { buildApp } from '../../../../agent/http/app.js';
import type { HealthDocument } from '../../../../agent/health/aggregate.js';
import { deriveClusterKeys } from '../../../../agent/identity/keys.js';
import { openToken, signRequest, verifyResponse } from '../../../../agent/peers/protocol.js';
import { createFormation } from '../../../../agent/formation/controller.js';
import { createMemoryFormationStore } from '../../../../agent/formation/store.js';
import { renderFamilies } from '../../../../agent/metrics/format.js';
import type { ErrorCode } from '../../../../shared/errors.js';
import { PEER_AUTH_HEADER } from '../../../../shared/wire/peer.js';
import { fakeDocker, memoryLogger } from '../../../helpers/fakes.js';
import { FakeWorld } from './fake-swarm.js';
import { KEY, OTHER_KEY, testConfig } from './helpers.js';

const keys = deriveClusterKeys(KEY);
const JOINER = 'b'.repeat(24);
const doc: HealthDocument = { status: 'pass', version: '0', releaseId: '0', serviceId: 'x', description: 'x', checks: {} };

async function setup(t: { teardown(fn: () => unknown): void }, opts: { manager: boolean }) {
  const world = new FakeWorld();
  const engine = world.engine('pi-1');
  if (opts.manager) await engine.swarmInit({ advertiseAddr: '10.0.0.1', listenAddr: '10.0.0.1:2377', dataPathAddr: '10.0.0.1' });
  const { log, lines } = memoryLogger();
  const config = testConfig({ clusterKey: KEY, nodeName: 'pi-1' });
  const formation = createFormation({
    config,
    log,
    docker: engine,
    clock: { now: Date.now, setTimeout, clearTimeout },
    identity: { nodeId: 'a'.repeat(24), name: 'pi-1', createdAt: '' },
    discovery: null,
    peerClient: { hello: async () => { throw new Error('Not implemented: hello'); }, grant: async () => { throw new Error('Not implemented: grant'); }, close: async () => undefined },
    address: () => ({ address: '10.0.0.1', interface: 'eth0', reason: 'test' }),
    store: createMemoryFormationStore(),
  });
  const counted: ErrorCode[] = [];
  const app = await buildApp({ log, bodyLimit: 16384, version: '0', health: () => doc, metrics: () => '', countError: (c) => counted.push(c), plugins: [formation.routes] });
  t.teardown(() => app.close());
  return { app, world, engine, formation, counted, lines };
}

const sign = (body: string, over: Partial<{ path: string; now: number; nonce: string; key: string; nodeId: string; to: string }> = {}) =>
  signRequest(over.key ? deriveClusterKeys(over.key) : keys, { method: 'POST', path: over.path ?? '/v1/grants', body, nodeId: over.nodeId ?? JOINER, to: over.to ?? 'a'.repeat(24), now: over.now ?? Date.now(), nonce: over.nonce ?? randomBytes(16).toString('base64url') });

const grantBody = JSON.stringify({ v: 1, nodeId: JOINER, name: 'pi-2', addr: '10.0.0.2' });

t.test('a good grant: sealed token opens for the joiner only, answer authentic, nothing in clear', async (t) => {
  const { app, world, formation, lines } = await setup(t, { manager: true });
  const nonce = randomBytes(16).toString('base64url');
  const res = await app.inject({ method: 'POST', url: '/v1/grants', headers: { 'content-type': 'application/json', [PEER_AUTH_HEADER]: sign(grantBody, { nonce }) }, payload: grantBody });
  t.equal(res.statusCode, 200, res.body);
  t.notOk(res.body.includes('SWMTKN'), 'no token in clear in the answer');
  const h = verifyResponse(keys, { requestNonce: nonce, to: 'a'.repeat(24), status: 200, body: res.body, header: res.headers[PEER_AUTH_HEADER], now: Date.now(), windowMs: 30_000 });
  const g = res.json();
  const tokenIn = openToken(keys, { requestNonce: nonce, responseNonce: h.nonce, joinerId: JOINER, managerId: h.nodeId, swarmId: g.swarmId, managerAddrs: g.managerAddrs }, g);
  t.equal(tokenIn, [...world.swarms.values()][0]!.workerToken);
  const metrics = renderFamilies(formation.collector.collect());
  t.match(metrics, /piswarm_formation_grants_issued_total 1/);
  t.notOk(metrics.includes('SWMTKN'));
  t.notOk(JSON.stringify(lines()).includes('SWMTKN'), 'no token in logs');
  t.notOk(JSON.stringify(lines()).includes(KEY), 'no cluster key in logs');
});

t.test('forged, replayed, stale, wrong-cluster, malformed and oversized requests: 4xx with stable codes, counted, app keeps serving', async (t) => {
  const { app, formation, lines } = await setup(t, { manager: true });
  const post = (url: string, payload: string, header?: string, ct = 'application/json') =>
    app.inject({ method: 'POST', url, headers: { 'content-type': ct, ...(header ? { [PEER_AUTH_HEADER]: header } : {}) }, payload });
  const replayed = sign(grantBody);
  t.equal((await post('/v1/grants', grantBody, replayed)).statusCode, 200, 'first use is fine');
  const helloBody = JSON.stringify({ v: 1, nodeId: JOINER, name: 'pi-2', addr: '10.0.0.2', port: 7070 });
  const cases: Array<[string, Promise<{ statusCode: number; body: string; json(): { code: string } }>, number, string]> = [
    ['no auth header', post('/v1/grants', grantBody), 401, 'PISWARM_ERR_AUTH_FAILED'],
    ['forged mac', post('/v1/grants', grantBody, sign(grantBody).replace(/m=[^,]+$/, `m=${'A'.repeat(43)}`)), 401, 'PISWARM_ERR_AUTH_FAILED'],
    ['body swapped after signing', post('/v1/grants', grantBody.replace('pi-2', 'pi-9'), sign(grantBody)), 401, 'PISWARM_ERR_AUTH_FAILED'],
    ['signed for another path', post('/v1/grants', grantBody, sign(grantBody, { path: '/v1/peers/hello' })), 401, 'PISWARM_ERR_AUTH_FAILED'],
    ['replayed', post('/v1/grants', grantBody, replayed), 409, 'PISWARM_ERR_REPLAY'],
    ['stale', post('/v1/grants', grantBody, sign(grantBody, { now: Date.now() - 31_000 })), 400, 'PISWARM_ERR_STALE'],
    ['another cluster', post('/v1/grants', grantBody, sign(grantBody, { key: OTHER_KEY })), 403, 'PISWARM_ERR_WRONG_CLUSTER'],
    ['signed but schema-invalid', post('/v1/grants', '{"v":1,"nodeId":"zz"}', sign('{"v":1,"nodeId":"zz"}')), 400, 'PISWARM_ERR_BAD_REQUEST'],
    ['signed but node id differs from the header', post('/v1/grants', grantBody, sign(grantBody, { nodeId: 'c'.repeat(24) })), 400, 'PISWARM_ERR_BAD_REQUEST'],
    ['not JSON', post('/v1/grants', '{oops', sign('{oops')), 400, 'PISWARM_ERR_BAD_REQUEST'],
    ['oversized', post('/v1/grants', JSON.stringify({ pad: 'x'.repeat(5000) }), sign('x')), 413, 'PISWARM_ERR_BODY_TOO_LARGE'],
    ['hello forged', post('/v1/peers/hello', helloBody, sign(helloBody).replace(/m=[^,]+$/, `m=${'B'.repeat(43)}`)), 401, 'PISWARM_ERR_AUTH_FAILED'],
    ['hello stale', post('/v1/peers/hello', helloBody, sign(helloBody, { path: '/v1/peers/hello', now: Date.now() + 60_000 })), 400, 'PISWARM_ERR_STALE'],
    // Captured on their way to another node (by id, then by address) and replayed here.
    ['grant meant for another node', post('/v1/grants', grantBody, sign(grantBody, { to: 'c'.repeat(24) })), 403, 'PISWARM_ERR_MISADDRESSED'],
    ['hello meant for another address', post('/v1/peers/hello', helloBody, sign(helloBody, { path: '/v1/peers/hello', to: '10.0.0.3:7070' })), 403, 'PISWARM_ERR_MISADDRESSED'],
    ['an older release (protocol 1)', post('/v1/peers/hello', helloBody, sign(helloBody, { path: '/v1/peers/hello' }).replace('v=2,', 'v=1,')), 400, 'PISWARM_ERR_PROTOCOL_VERSION'],
  ];
  for (const [what, p, status, code] of cases) {
    const res = await p;
    t.equal(res.statusCode, status, `${what}: status`);
    t.equal(res.json().code, code, `${what}: code`);
    t.notOk(res.body.includes('SWMTKN'), `${what}: no token`);
  }
  const m = renderFamilies(formation.collector.collect());
  t.match(m, /piswarm_peer_auth_failures_total\{reason="bad_mac"\} 4/);
  t.match(m, /piswarm_peer_auth_failures_total\{reason="replay"\} 1/);
  t.match(m, /piswarm_peer_auth_failures_total\{reason="stale"\} 2/);
  t.match(m, /piswarm_peer_auth_failures_total\{reason="wrong_cluster"\} 1/);
  t.match(m, /piswarm_peer_auth_failures_total\{reason="misaddressed"\} 2/);
  t.match(m, /piswarm_peer_auth_failures_total\{reason="version"\} 1/);
  t.match(m, /piswarm_peer_auth_failures_total\{reason="too_large"\} 1/);
  t.match(m, /piswarm_formation_grants_refused_total\{reason="too_large"\} 1\n/);
  t.match(m, /piswarm_formation_grants_refused_total\{reason="malformed"\} 4\n/, 'no auth header, schema-invalid, node id differs, not JSON');
  t.match(m, /piswarm_formation_grants_refused_total\{reason="bad_mac"\} 3\n/);
  t.equal(formation.healthChecks.find((c) => c.name === 'discovery:peers')!.run()[0]!.status, 'warn', 'a caller from another cluster shows in /health');
  const ok = await app.inject({ url: '/v1/formation' });
  t.equal(ok.statusCode, 200, 'still serving');
  const good = await post('/v1/peers/hello', helloBody, sign(helloBody, { path: '/v1/peers/hello' }));
  t.equal(good.statusCode, 200, 'a good hello after all that');
  t.notOk(JSON.stringify(lines()).includes('SWMTKN'));
});

t.test('every refused grant request is counted once in piswarm_formation_grants_refused_total, parse errors included', async (t) => {
  const { app, formation, counted } = await setup(t, { manager: true });
  const grant = (payload: string, ct = 'application/json', header?: string) =>
    app.inject({ method: 'POST', url: '/v1/grants', headers: { 'content-type': ct, ...(header ? { [PEER_AUTH_HEADER]: header } : {}) }, payload });
  const cases: Array<[string, ReturnType<typeof grant>, ErrorCode]> = [
    ['not JSON, unsigned', grant('{oops'), 'PISWARM_ERR_BAD_REQUEST'],
    ['not JSON, signed', grant('not json at all', 'application/json', sign('not json at all')), 'PISWARM_ERR_BAD_REQUEST'],
    ['empty JSON body', grant(''), 'PISWARM_ERR_BAD_REQUEST'],
    ['JSON but no grant request', grant('[1,2]', 'application/json', sign('[1,2]')), 'PISWARM_ERR_BAD_REQUEST'],
    ['over the 4 KiB peer limit', grant(JSON.stringify({ pad: 'x'.repeat(5000) })), 'PISWARM_ERR_BODY_TOO_LARGE'],
    ['over the app body limit', grant(JSON.stringify({ pad: 'x'.repeat(20_000) })), 'PISWARM_ERR_BODY_TOO_LARGE'],
    ['another media type', grant('AAAA', 'application/octet-stream'), 'PISWARM_ERR_UNSUPPORTED_MEDIA'],
    ['forged signature', grant(grantBody, 'application/json', sign(grantBody).replace(/m=[^,]+$/, `m=${'A'.repeat(43)}`)), 'PISWARM_ERR_AUTH_FAILED'],
  ];
  for (const [what, p, code] of cases) t.equal((await p).json().code, code, what);
  const refused = () => Object.fromEntries([...renderFamilies(formation.collector.collect()).matchAll(/^piswarm_formation_grants_refused_total\{reason="([a-z_]+)"\} (\d+)$/gm)].map((x) => [x[1]!, Number(x[2])]));
  const byReason = { malformed: 4, too_large: 2, unsupported_media: 1, bad_mac: 1 };
  t.same(refused(), byReason, 'one count per refused request: none missed, none twice');
  t.same([...counted].sort(), cases.map(([, , c]) => c).sort(), 'the same codes piswarm_http_errors_total counts');
  t.equal((await grant(grantBody, 'application/json', sign(grantBody))).statusCode, 200, 'a good grant after all that');
  t.same(refused(), byReason, 'is not counted as refused');
});

t.test('a worker refuses grants with NOT_MANAGER; without a key every peer route says NO_CLUSTER_KEY', async (t) => {
  const { app, formation } = await setup(t, { manager: false });
  const res = await app.inject({ method: 'POST', url: '/v1/grants', headers: { 'content-type': 'application/json', [PEER_AUTH_HEADER]: sign(grantBody) }, payload: grantBody });
  t.equal(res.statusCode, 409);
  t.equal(res.json().code, 'PISWARM_ERR_NOT_MANAGER');
  t.match(renderFamilies(formation.collector.collect()), /piswarm_formation_grants_refused_total\{reason="not_manager"\} 1\n/);

  const { log } = memoryLogger();
  const f = createFormation({
    config: testConfig({}), log, docker: fakeDocker({}), clock: { now: Date.now, setTimeout, clearTimeout },
    identity: { nodeId: 'a'.repeat(24), name: 'x', createdAt: '' }, discovery: null, peerClient: null,
    address: () => ({ address: '10.0.0.1', interface: 'eth0', reason: 'test' }), store: createMemoryFormationStore(),
  });
  const app2 = await buildApp({ log, bodyLimit: 16384, version: '0', health: () => doc, metrics: () => '', countError: () => undefined, plugins: [f.routes] });
  t.teardown(() => app2.close());
  const r2 = await app2.inject({ method: 'POST', url: '/v1/grants', headers: { 'content-type': 'application/json', [PEER_AUTH_HEADER]: sign(grantBody) }, payload: grantBody });
  t.equal(r2.json().code, 'PISWARM_ERR_NO_CLUSTER_KEY');
  t.match(renderFamilies(f.collector.collect()), /piswarm_formation_grants_refused_total\{reason="no_key"\} 1\n/);
  await f.start();
  t.equal(f.status().phase, 'disabled');
  const h = f.healthChecks.find((c) => c.name === 'swarm:formation')!.run()[0]!;
  t.equal(h.status, 'warn');
  t.match(h.output, /no cluster key/);
  await f.stop();
});

t.test('peer routes take JSON only: text/plain is 415 before anything is parsed, and counted as a refused grant', async (t) => {
  const { app, formation } = await setup(t, { manager: true });
  for (const url of ['/v1/grants', '/v1/peers/hello']) {
    const res = await app.inject({ method: 'POST', url, headers: { 'content-type': 'text/plain', [PEER_AUTH_HEADER]: sign(grantBody, { path: url }) }, payload: grantBody });
    t.equal(res.statusCode, 415, `${url}: 415`);
    t.equal(res.json().code, 'PISWARM_ERR_UNSUPPORTED_MEDIA');
  }
  t.match(renderFamilies(formation.collector.collect()), /piswarm_formation_grants_refused_total\{reason="unsupported_media"\} 1\n/);
});
