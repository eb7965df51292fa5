import net from 'node:net';
import zlib from 'node:zlib';
import t from 'tap';
import { buildApp, isLoopback } from '../../../../agent/http/app.js';
import type { HealthDocument } from '../../../../agent/health/aggregate.js';
import { PiswarmError, type ErrorCode } from '../../../../shared/errors.js';
import { memoryLogger } from '../../../helpers/fakes.js';

const doc = (status: 'pass' | 'warn' | 'fail'): HealthDocument => ({ status, version: '0', releaseId: '0.1.0', serviceId: 'pi-1', description: 'piswarm agent', checks: { 'docker:engine': [{ status }] } });

async function app(t: { teardown(fn: () => unknown): void }, over: Partial<Parameters<typeof buildApp>[0]> = {}) {
  const counted: ErrorCode[] = [];
  const { log, lines } = memoryLogger();
  const a = await buildApp({ log, bodyLimit: 1024, version: '0.1.0', health: () => doc('pass'), metrics: () => '# HELP x y\n# TYPE x gauge\nx 1\n', countError: (c) => counted.push(c), ...over });
  t.teardown(() => a.close());
  return { a, counted, lines };
}

t.test('/health answers health+json, 200 for pass and warn, 503 for fail', async (t) => {
  for (const [status, code] of [['pass', 200], ['warn', 200], ['fail', 503]] as const) {
    const { a } = await app(t, { health: () => doc(status) });
    const res = await a.inject({ url: '/health' });
    t.equal(res.statusCode, code, status);
    t.match(res.headers['content-type'], /^application\/health\+json/);
    t.equal(res.json().status, status);
  }
});

t.test('/livez passes even when health fails', async (t) => {
  const { a } = await app(t, { health: () => doc('fail') });
  const res = await a.inject({ url: '/livez' });
  t.equal(res.statusCode, 200);
  t.equal(res.json().status, 'pass');
});

t.test('/metrics is Prometheus text', async (t) => {
  const { a } = await app(t);
  const res = await a.inject({ url: '/metrics' });
  t.equal(res.statusCode, 200);
  t.match(res.headers['content-type'], /^text\/plain; version=0\.0\.4/);
  t.match(res.body, /^x 1$/m);
});

t.test('/metrics is gzip-compressed when asked for, and only then', async (t) => {
  const text = Array.from({ length: 200 }, (_, i) => `x{i="${i}"} ${i}`).join('\n') + '\n';
  const { a } = await app(t, { metrics: () => text });
  const gz = await a.inject({ url: '/metrics', headers: { 'accept-encoding': 'gzip, deflate' } });
  t.equal(gz.statusCode, 200);
  t.equal(gz.headers['content-encoding'], 'gzip');
  t.match(gz.headers.vary, /accept-encoding/i);
  t.match(gz.headers['content-type'], /^text\/plain; version=0\.0\.4/);
  t.ok(gz.rawPayload.length < Buffer.byteLength(text) / 2, `${gz.rawPayload.length} compressed bytes for ${Buffer.byteLength(text)}`);
  t.equal(zlib.gunzipSync(gz.rawPayload).toString(), text);
  for (const h of [{}, { 'accept-encoding': 'gzip;q=0, br' }]) {
    const plain = await a.inject({ url: '/metrics', headers: h });
    t.equal(plain.headers['content-encoding'], undefined, JSON.stringify(h));
    t.equal(plain.body, text);
  }
});

t.test('unknown route 404, wrong method 405 with Allow, both coded and counted', async (t) => {
  const { a, counted } = await app(t);
  const nf = await a.inject({ url: '/nope' });
  t.equal(nf.statusCode, 404);
  t.equal(nf.json().code, 'PISWARM_ERR_NOT_FOUND');
  const wm = await a.inject({ method: 'DELETE', url: '/health' });
  t.equal(wm.statusCode, 405);
  t.equal(wm.json().code, 'PISWARM_ERR_METHOD_NOT_ALLOWED');
  t.match(wm.headers.allow, /GET/);
  t.same(counted, ['PISWARM_ERR_NOT_FOUND', 'PISWARM_ERR_METHOD_NOT_ALLOWED']);
});

t.test('unknown or malformed query parameters are a 400 with a stable code', async (t) => {
  const { a } = await app(t);
  for (const url of ['/health?verbose=1', '/metrics?collect[]=cpu', '/livez?%zz=1']) {
    const res = await a.inject({ url });
    t.equal(res.statusCode, 400, url);
    t.equal(res.json().code, 'PISWARM_ERR_BAD_REQUEST', url);
  }
});

t.test('a path fastify cannot decode is a coded, counted 400', async (t) => {
  const { a, counted } = await app(t);
  for (const url of ['/%zz', '/health/%zz']) {
    const res = await a.inject({ url });
    t.equal(res.statusCode, 400, url);
    t.equal(res.json().code, 'PISWARM_ERR_BAD_REQUEST', url);
  }
  t.same(counted, ['PISWARM_ERR_BAD_REQUEST', 'PISWARM_ERR_BAD_REQUEST']);
});

t.test('garbage on the socket and oversized headers get a coded answer, and the server keeps serving', async (t) => {
  const { a, counted } = await app(t);
  await a.listen({ host: '127.0.0.1', port: 0 });
  const port = (a.server.address() as net.AddressInfo).port;
  const raw = (data: string) => new Promise<string>((resolve, reject) => {
    const s = net.connect(port, '127.0.0.1', () => s.end(data));
    let out = '';
    s.on('data', (d) => (out += d.toString()));
    s.on('end', () => resolve(out));
    s.on('error', reject);
  });
  const garbage = await raw('HELLO THERE\r\n\r\n');
  t.match(garbage, /^HTTP\/1\.1 400 /);
  t.match(garbage, /"code":"PISWARM_ERR_BAD_REQUEST"/);
  const headers = await raw(`GET /health HTTP/1.1\r\nHost: x\r\nX-Big: ${'a'.repeat(20_000)}\r\n\r\n`);
  t.match(headers, /^HTTP\/1\.1 431 /);
  t.match(headers, /"code":"PISWARM_ERR_HEADERS_TOO_LARGE"/);
  t.same(counted, ['PISWARM_ERR_BAD_REQUEST', 'PISWARM_ERR_HEADERS_TOO_LARGE']);
  const ok = await raw('GET /livez HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n');
  t.match(ok, /^HTTP\/1\.1 200 /, 'still serving');
});

t.test('oversized and malformed bodies are refused and the app keeps serving', async (t) => {
  const { a } = await app(t, { diskBench: async () => ({ ok: true }) });
  const big = await a.inject({ method: 'POST', url: '/v1/bench/disk', headers: { 'content-type': 'application/json' }, payload: JSON.stringify({ pad: 'x'.repeat(5000) }) });
  t.equal(big.statusCode, 413);
  t.equal(big.json().code, 'PISWARM_ERR_BODY_TOO_LARGE');
  const bad = await a.inject({ method: 'POST', url: '/v1/bench/disk', headers: { 'content-type': 'application/json' }, payload: '{"a":' });
  t.equal(bad.statusCode, 400);
  t.equal(bad.json().code, 'PISWARM_ERR_BAD_REQUEST');
  const media = await a.inject({ method: 'POST', url: '/v1/bench/disk', headers: { 'content-type': 'application/x-evil' }, payload: 'zzz' });
  t.equal(media.statusCode, 415);
  t.equal(media.json().code, 'PISWARM_ERR_UNSUPPORTED_MEDIA');
  t.equal((await a.inject({ url: '/health' })).statusCode, 200, 'still serving');
});

t.test('the disk benchmark answers loopback callers only', async (t) => {
  let runs = 0;
  const { a } = await app(t, { diskBench: async () => ({ runs: ++runs }) });
  const local = await a.inject({ method: 'POST', url: '/v1/bench/disk', remoteAddress: '127.0.0.1' });
  t.equal(local.statusCode, 200);
  t.same(local.json(), { runs: 1 });
  const remote = await a.inject({ method: 'POST', url: '/v1/bench/disk', remoteAddress: '192.168.1.20' });
  t.equal(remote.statusCode, 403);
  t.equal(remote.json().code, 'PISWARM_ERR_FORBIDDEN');
  t.equal(runs, 1, 'a remote caller did not start it');
  t.ok(isLoopback('::1') && isLoopback('::ffff:127.0.0.1') && !isLoopback('10.0.0.1') && !isLoopback(undefined));
});

t.test('internal errors say nothing internal; coded 4xx errors say what was wrong', async (t) => {
  const { a, lines } = await app(t, {
    diskBench: async () => { throw new Error('EIO reading /dev/secret-internals'); },
    plugins: [async (f) => { f.get('/v1/busy', async () => { throw new PiswarmError('PISWARM_ERR_BUSY', 'a benchmark is already running'); }); }],
  });
  const res = await a.inject({ method: 'POST', url: '/v1/bench/disk' });
  t.equal(res.statusCode, 500);
  t.same(res.json(), { statusCode: 500, code: 'PISWARM_ERR_INTERNAL', message: 'internal error' });
  t.ok(lines().some((l) => l.msg === 'request failed'), 'the detail goes to the log');
  const busy = await a.inject({ url: '/v1/busy' });
  t.equal(busy.statusCode, 409);
  t.same(busy.json(), { statusCode: 409, code: 'PISWARM_ERR_BUSY', message: 'a benchmark is already running' });
});

t.test("a failed disk benchmark says why (its messages are written to be shown); other 5xx stay generic", async (t) => {
  const { a } = await app(t, { diskBench: async () => { throw new PiswarmError('PISWARM_ERR_DISK_BENCH', 'cannot open /dev/mmcblk0 read-only'); } });
  const res = await a.inject({ method: 'POST', url: '/v1/bench/disk' });
  t.equal(res.statusCode, 500);
  t.same(res.json(), { statusCode: 500, code: 'PISWARM_ERR_DISK_BENCH', message: 'cannot open /dev/mmcblk0 read-only' });
  const { a: b } = await app(t, { diskBench: async () => { throw new PiswarmError('PISWARM_ERR_DOCKER', 'dockerd said: /var/lib/docker/secret') } });
  t.same((await b.inject({ method: 'POST', url: '/v1/bench/disk' })).json().message, 'the Docker engine refused the request');
});

t.test('no Host, CONNECT, a huge body on a GET, an unfinished body, too many connections from one client: each a coded JSON answer, counted, the server keeps serving', async (t) => {
  const { a, counted } = await app(t);
  await a.listen({ host: '127.0.0.1', port: 0 });
  const port = (a.server.address() as net.AddressInfo).port;
  /** Writes `data` (ending the socket unless `keepOpen`), resolves with all that comes back and when the server closed it. */
  const raw = (data: string, opts: { keepOpen?: boolean } = {}) => new Promise<{ text: string; ms: number }>((resolve, reject) => {
    const t0 = Date.now();
    const s = net.connect(port, '127.0.0.1', () => (opts.keepOpen ? s.write(data) : s.end(data)));
    let out = '';
    s.on('data', (d) => (out += d.toString()));
    s.on('close', () => resolve({ text: out, ms: Date.now() - t0 }));
    s.on('error', reject);
  });
  const noHost = await raw('GET /health HTTP/1.1\r\nConnection: close\r\n\r\n');
  t.match(noHost.text, /^HTTP\/1\.1 400 /, 'no Host: 400');
  t.match(noHost.text, /"code":"PISWARM_ERR_BAD_REQUEST".*missing Host header/, 'with our code and why');
  const connect = await raw('CONNECT example.org:443 HTTP/1.1\r\nHost: example.org:443\r\n\r\n');
  t.match(connect.text, /^HTTP\/1\.1 405 /, 'CONNECT: 405, not a silent close');
  t.match(connect.text, /"code":"PISWARM_ERR_METHOD_NOT_ALLOWED"/);
  // A GET that announces 300 MB: answered at once and the connection closed, nothing read to the end.
  const huge = await raw(`GET /health HTTP/1.1\r\nHost: x\r\nContent-Length: ${300 * 1024 * 1024}\r\n\r\n${'x'.repeat(1000)}`, { keepOpen: true });
  t.match(huge.text, /^HTTP\/1\.1 413 /, 'a 300 MB body: 413');
  t.match(huge.text, /"code":"PISWARM_ERR_BODY_TOO_LARGE"/);
  t.ok(huge.ms < 5000, `closed by the server without reading the rest (${huge.ms} ms)`);
  t.same(counted, ['PISWARM_ERR_BAD_REQUEST', 'PISWARM_ERR_METHOD_NOT_ALLOWED', 'PISWARM_ERR_BODY_TOO_LARGE']);

  // One client holding 40 connections: the 33rd on get 429 and are closed; the first 32 still work.
  const held: net.Socket[] = [];
  const refused: string[] = [];
  for (let i = 0; i < 40; i++) {
    const s = net.connect(port, '127.0.0.1');
    s.on('data', (d) => refused.push(d.toString()));
    s.on('error', () => undefined);
    held.push(s);
  }
  t.teardown(() => held.forEach((s) => s.destroy()));
  await new Promise((r) => setTimeout(r, 300));
  t.equal(refused.length, 8, '8 connections over the bound answered');
  t.ok(refused.every((x) => /^HTTP\/1\.1 429 /.test(x) && x.includes('PISWARM_ERR_TOO_MANY_CONNECTIONS')), 'each with 429 and our code');
  for (const s of held) s.destroy();
  await new Promise((r) => setTimeout(r, 100));
  const ok = await raw('GET /livez HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n');
  t.match(ok.text, /^HTTP\/1\.1 200 /, 'serving again once they are closed');
});

t.test('an unfinished body is cut at the request timeout, not a minute and a half later', { timeout: 60_000 }, async (t) => {
  const { a, counted } = await app(t, { diskBench: async () => ({ ok: true }) });
  await a.listen({ host: '127.0.0.1', port: 0 });
  const port = (a.server.address() as net.AddressInfo).port;
  const t0 = Date.now();
  const text = await new Promise<string>((resolve, reject) => {
    const s = net.connect(port, '127.0.0.1', () => s.write('POST /v1/bench/disk HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n{"a":'));
    let out = '';
    s.on('data', (d) => (out += d.toString()));
    s.on('close', () => resolve(out));
    s.on('error', reject);
  });
  const s = (Date.now() - t0) / 1000;
  t.match(text, /^HTTP\/1\.1 408 /, 'a 408');
  t.match(text, /"code":"PISWARM_ERR_REQUEST_TIMEOUT"/);
  t.ok(s >= 29 && s <= 34, `after ${s.toFixed(1)} s (requestTimeout 30 s)`);
  t.same(counted, ['PISWARM_ERR_REQUEST_TIMEOUT'], `counted: ${counted.join(', ')}`);
});
