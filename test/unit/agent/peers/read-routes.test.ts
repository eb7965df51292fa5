import t from 'tap';
import { randomBytes } from 'node:crypto';
import { Value } from '@sinclair/typebox/value';
import { buildApp } from '../../../../agent/http/app.js';
import type { HealthDocument } from '../../../../agent/health/aggregate.js';
import { deriveClusterKeys } from '../../../../agent/identity/keys.js';
import { createPeerClient } from '../../../../agent/peers/client.js';
import { ReplayCache, signRequest, verifyResponse } from '../../../../agent/peers/protocol.js';
import { createPeerRoutes, type PeerRouteContext } from '../../../../agent/peers/routes.js';
import { PiswarmError } from '../../../../shared/errors.js';
import { PEER_AUTH_HEADER, PeerChecksResponse, PeerServicesResponse } from '../../../../shared/wire/peer.js';
import { memoryLogger } from '../../../helpers/fakes.js';
import { KEY, OTHER_KEY } from '../formation/helpers.js';

const keys = deriveClusterKeys(KEY);
const SERVER = 'a'.repeat(24);
const CALLER = 'b'.repeat(24);
const health: HealthDocument = { status: 'pass', version: '0', releaseId: '0', serviceId: 'x', description: 'x', checks: {} };
const notModelled = (what: string) => () => {
  throw new Error(`Not implemented: ${what}`);
};

async function setup(t: { teardown(fn: () => unknown): void }, o: { manager: boolean }) {
  const { log } = memoryLogger();
  const failures: string[] = [];
  const ctx: PeerRouteContext = {
    keys,
    identity: { nodeId: SERVER, name: 'pi-1', createdAt: '' },
    windowMs: 30_000,
    replay: new ReplayCache(60_000),
    self: { nodeId: SERVER, port: 7070, isOwnHost: (h) => h === '10.0.0.1' },
    now: Date.now,
    nonce: () => randomBytes(16).toString('base64url'),
    iv: () => randomBytes(12),
    hello: notModelled('hello'),
    grantSource: notModelled('grantSource'),
    onGrantIssued: notModelled('onGrantIssued'),
    status: notModelled('status'),
    peers: notModelled('peers'),
    nodes: notModelled('nodes'),
    checks: () => ({ status: 'warn', checks: [{ name: 'disk:free', status: 'warn', component: '/', output: '4 % free', observedAt: null }], omitted: 0 }),
    services: async () => {
      if (!o.manager) throw new PiswarmError('PISWARM_ERR_NOT_MANAGER');
      return { services: [{ name: 'web', image: 'nginx:alpine', mode: 'replicated', desired: 2, running: 2, ports: ['80:80/tcp'], nodes: ['pi-1', 'pi-2'] }], omitted: 0 };
    },
    authFailure: (r) => failures.push(r),
    grantRefused: notModelled('grantRefused'),
  };
  const app = await buildApp({ log, bodyLimit: 16384, version: '0', health: () => health, metrics: () => '', countError: () => undefined, plugins: [createPeerRoutes(ctx)] });
  t.teardown(() => app.close());
  return { app, failures };
}

const READ = '{"v":1}';
const sign = (path: string, body: string, over: Partial<{ now: number; nonce: string; key: string; to: string }> = {}) =>
  signRequest(over.key ? deriveClusterKeys(over.key) : keys, { method: 'POST', path, body, nodeId: CALLER, to: over.to ?? SERVER, now: over.now ?? Date.now(), nonce: over.nonce ?? randomBytes(16).toString('base64url') });

t.test('checks and services: signed answers bound to the request, within the wire schemas', async (t) => {
  const { app } = await setup(t, { manager: true });
  for (const [path, schema] of [['/v1/peers/checks', PeerChecksResponse], ['/v1/peers/services', PeerServicesResponse]] as const) {
    const nonce = randomBytes(16).toString('base64url');
    const res = await app.inject({ method: 'POST', url: path, headers: { 'content-type': 'application/json', [PEER_AUTH_HEADER]: sign(path, READ, { nonce }) }, payload: READ });
    t.equal(res.statusCode, 200, `${path}: ${res.body}`);
    const h = verifyResponse(keys, { requestNonce: nonce, to: SERVER, status: 200, body: res.body, header: res.headers[PEER_AUTH_HEADER], now: Date.now(), windowMs: 30_000 });
    t.equal(h.nodeId, SERVER);
    t.ok(Value.Check(schema, res.json()), `${path}: the schema the client checks`);
    t.equal(res.json().nodeId, SERVER);
  }
});

t.test('the reads verify like every peer route: 4xx with stable codes, counted', async (t) => {
  const { app, failures } = await setup(t, { manager: false });
  const post = (url: string, payload: string, header?: string, ct = 'application/json') =>
    app.inject({ method: 'POST', url, headers: { 'content-type': ct, ...(header ? { [PEER_AUTH_HEADER]: header } : {}) }, payload });
  const P = '/v1/peers/checks';
  const replayed = sign(P, READ);
  t.equal((await post(P, READ, replayed)).statusCode, 200, 'first use is fine');
  const cases: Array<[string, ReturnType<typeof post>, number, string]> = [
    ['no auth header', post(P, READ), 401, 'PISWARM_ERR_AUTH_FAILED'],
    ['forged mac', post(P, READ, sign(P, READ).replace(/m=[^,]+$/, `m=${'A'.repeat(43)}`)), 401, 'PISWARM_ERR_AUTH_FAILED'],
    ['signed for the other read', post(P, READ, sign('/v1/peers/services', READ)), 401, 'PISWARM_ERR_AUTH_FAILED'],
    ['replayed', post(P, READ, replayed), 409, 'PISWARM_ERR_REPLAY'],
    ['stale', post(P, READ, sign(P, READ, { now: Date.now() - 31_000 })), 400, 'PISWARM_ERR_STALE'],
    ['another cluster', post(P, READ, sign(P, READ, { key: OTHER_KEY })), 403, 'PISWARM_ERR_WRONG_CLUSTER'],
    ['meant for another node', post(P, READ, sign(P, READ, { to: 'c'.repeat(24) })), 403, 'PISWARM_ERR_MISADDRESSED'],
    ['meant for another address', post(P, READ, sign(P, READ, { to: '10.0.0.3:7070' })), 403, 'PISWARM_ERR_MISADDRESSED'],
    ['signed but another version', post(P, '{"v":2}', sign(P, '{"v":2}')), 400, 'PISWARM_ERR_BAD_REQUEST'],
    ['signed but an extra field', post(P, '{"v":1,"all":true}', sign(P, '{"v":1,"all":true}')), 400, 'PISWARM_ERR_BAD_REQUEST'],
    ['not JSON', post(P, '{oops', sign(P, '{oops')), 400, 'PISWARM_ERR_BAD_REQUEST'],
    ['text/plain', post(P, READ, sign(P, READ), 'text/plain'), 415, 'PISWARM_ERR_UNSUPPORTED_MEDIA'],
    ['oversized', post(P, JSON.stringify({ pad: 'x'.repeat(5000) }), sign(P, 'x')), 413, 'PISWARM_ERR_BODY_TOO_LARGE'],
    ['a query parameter', post(`${P}?all=1`, READ, sign(P, READ)), 400, 'PISWARM_ERR_BAD_REQUEST'],
    ['services asked of a worker', post('/v1/peers/services', READ, sign('/v1/peers/services', READ)), 409, 'PISWARM_ERR_NOT_MANAGER'],
  ];
  for (const [what, p, status, code] of cases) {
    const res = await p;
    t.equal(res.statusCode, status, `${what}: status`);
    t.equal(res.json().code, code, `${what}: code`);
  }
  t.same([...new Set(failures)].sort(), ['bad_mac', 'malformed', 'malformed_body', 'misaddressed', 'replay', 'stale', 'too_large', 'wrong_cluster']);
});

t.test('the peer client reads over real HTTP: verified answers, a worker says NOT_MANAGER, a wrong node is refused', async (t) => {
  const worker = await setup(t, { manager: false });
  await worker.app.listen({ port: 0, host: '127.0.0.1' });
  const port = (worker.app.server.address() as { port: number }).port;
  const client = createPeerClient({ keys, identity: { nodeId: CALLER, name: 'pi-2', createdAt: '' }, timeoutMs: 2000, windowMs: 30_000 });
  t.teardown(() => client.close());
  const r = await client.checks({ addr: '127.0.0.1', port, nodeId: SERVER });
  t.match(r, { v: 1, nodeId: SERVER, status: 'warn', checks: [{ name: 'disk:free', output: '4 % free' }] });
  await t.rejects(client.services({ addr: '127.0.0.1', port, nodeId: SERVER }), { code: 'PISWARM_ERR_NOT_MANAGER' });
  await t.rejects(client.checks({ addr: '127.0.0.1', port, nodeId: 'c'.repeat(24) }), { code: 'PISWARM_ERR_MISADDRESSED' }, 'addressed to another node: refused there');
  const other = createPeerClient({ keys: deriveClusterKeys(OTHER_KEY), identity: { nodeId: CALLER, name: 'pi-2', createdAt: '' }, timeoutMs: 2000, windowMs: 30_000 });
  t.teardown(() => other.close());
  await t.rejects(other.checks({ addr: '127.0.0.1', port, nodeId: SERVER }), { code: 'PISWARM_ERR_WRONG_CLUSTER' });
  await worker.app.close();
  await t.rejects(client.checks({ addr: '127.0.0.1', port, nodeId: SERVER }), { code: 'PISWARM_ERR_PEER_UNREACHABLE' }, 'nobody listening');
});
