/**
 * The agent as a real process on this host, and its CLI as a user runs it:
 * no container, no Docker Engine (the socket path points nowhere, which is
 * also what a Pi whose dockerd is down looks like). Checks the local commands
 * (status, metrics, bench-disk end to end: CLI -> loopback API -> state file
 * -> gauge), `npx piswarm` from the checkout, the ordered shutdown on SIGTERM,
 * the second signal, and a port clash.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import t from 'tap';

const ROOT = fileURLToPath(new URL('../../../../', import.meta.url));
const MAIN = path.join(ROOT, 'dist/agent/main.js');
// Nothing of the caller's systemd context leaks in.
const ENV = { PATH: process.env.PATH ?? '/usr/bin:/bin', HOME: os.tmpdir() };

async function freePort(): Promise<number> {
  const s = net.createServer();
  await new Promise<void>((r) => s.listen(0, '127.0.0.1', r));
  const port = (s.address() as net.AddressInfo).port;
  await new Promise((r) => s.close(r));
  return port;
}

/** What the helpers use of a tap test. */
interface TestLike {
  teardown(fn: () => unknown): void;
  fail(message: string): void;
}

interface Agent {
  proc: ChildProcess;
  port: number;
  stateDir: string;
  lines: () => Array<Record<string, unknown>>;
  exited: Promise<{ code: number | null; at: number }>;
}

async function startAgent(t: TestLike, extra: string[] = [], port?: number, env: Record<string, string> = {}): Promise<Agent> {
  const p = port ?? (await freePort());
  const stateDir = fs.mkdtempSync(path.join(os.tmpdir(), 'piswarm-proc-'));
  t.teardown(() => fs.rmSync(stateDir, { recursive: true, force: true }));
  const proc = spawn(process.execPath, [MAIN, 'agent', '--http-host', '127.0.0.1', '--port', String(p), '--state-dir', stateDir,
    '--formation-enabled', 'false', '--autopilot-enabled', 'false', '--discovery-mdns', 'false',
    '--docker-socket-path', path.join(stateDir, 'no-docker.sock'), '--log-level', 'info', ...extra], { env: { ...ENV, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  proc.stdout!.on('data', (d) => (out += d.toString()));
  proc.stderr!.on('data', (d) => (out += d.toString()));
  const exited = new Promise<{ code: number | null; at: number }>((r) => proc.on('exit', (code) => r({ code, at: Date.now() })));
  t.teardown(() => { if (proc.exitCode === null) proc.kill('SIGKILL'); });
  const lines = () => out.split('\n').filter((l) => l.startsWith('{')).map((l) => JSON.parse(l) as Record<string, unknown>);
  return { proc, port: p, stateDir, lines, exited };
}

async function ready(a: Agent, t: TestLike): Promise<void> {
  const deadline = Date.now() + 20_000;
  while (!a.lines().some((l) => l.msg === 'agent ready')) {
    if (a.proc.exitCode !== null || Date.now() > deadline) {
      t.fail(`agent not ready (exit ${a.proc.exitCode}):\n${a.lines().map((l) => JSON.stringify(l)).join('\n')}`);
      throw new Error('agent did not start');
    }
    await new Promise((r) => setTimeout(r, 100));
  }
}

function cli(args: string[]): { code: number | null; stdout: string; stderr: string } {
  const r = spawnSync(process.execPath, [MAIN, ...args], { env: ENV, encoding: 'utf8', timeout: 60_000 });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}

t.test('status, metrics and bench-disk against a running agent', async (t) => {
  // A scratch file on the filesystem of the checkout stands in for the boot
  // disk: the sandbox here refuses /dev/vda, and O_DIRECT works on a file.
  const scratch = path.join(ROOT, `.bench-scratch-${process.pid}`);
  fs.writeFileSync(scratch, Buffer.alloc(8 << 20, 7));
  t.teardown(() => fs.rmSync(scratch, { force: true }));
  const a = await startAgent(t, ['--disk-bench-device', scratch, '--disk-bench-max-bytes', String(4 << 20)]);
  await ready(a, t);
  const port = ['--port', String(a.port)];

  const json = cli(['status', '--json', ...port]);
  const doc = JSON.parse(json.stdout) as { status: string; checks: Record<string, Array<{ status: string }>> };
  t.equal(doc.checks['docker:engine']?.[0]?.status, 'fail', 'no engine behind the socket: docker:engine fails');
  t.equal(doc.status, 'fail');
  t.equal(json.code, 1, 'status exits 1 when health fails');
  const text = cli(['status', ...port]);
  t.equal(text.code, 1);
  t.match(text.stdout, /^status: fail$/m);
  t.match(text.stdout, /^\s+fail docker:engine/m, 'one line per check');

  const metrics = cli(['metrics', ...port]);
  t.equal(metrics.code, 0);
  t.match(metrics.stdout, /^node_cpu_seconds_total\{cpu="0",mode="idle"\} \d/m);
  t.match(metrics.stdout, /^piswarm_docker_up 0$/m);

  const bench = cli(['bench-disk', '--json', ...port]);
  t.equal(bench.code, 0, `bench-disk: ${bench.stderr}`);
  const r = JSON.parse(bench.stdout) as { device: string; bytes: number; bytesPerSecond: number };
  t.equal(r.device, scratch);
  t.equal(r.bytes, 4 << 20, 'bounded by diskBench.maxBytes');
  t.ok(r.bytesPerSecond > 0);
  t.same(JSON.parse(fs.readFileSync(path.join(a.stateDir, 'disk-bench.json'), 'utf8')).bytesPerSecond, r.bytesPerSecond, 'persisted in the state directory');
  const after = cli(['metrics', ...port]).stdout;
  const gauge = new RegExp(`^piswarm_disk_bench_read_bytes_per_second\\{device="${path.basename(scratch)}"\\} (\\S+)$`, 'm').exec(after);
  t.equal(Number(gauge?.[1]), r.bytesPerSecond, 'exported as a gauge');
  t.same(fs.readFileSync(scratch).subarray(0, 16), Buffer.alloc(16, 7), 'the benchmark wrote nothing');

  fs.rmSync(scratch);
  const failed = cli(['bench-disk', ...port]);
  t.equal(failed.code, 1, 'a failed benchmark exits 1');
  t.match(failed.stderr, /PISWARM_ERR_DISK_BENCH/);
  t.match(failed.stderr, new RegExp(`cannot stat ${scratch}`), 'and says why');

  t.equal(cli(['livez', ...port]).code, 0, 'livez: the event loop answers, whatever the health');
  t.equal(cli(['status', '--port', String(await freePort())]).code, 69, 'no agent on that port: 69');
  t.equal(cli(['livez', '--port', String(await freePort())]).code, 69, 'livez with no agent: 69');
  t.equal(cli(['status', '--bogus', ...port]).code, 64, 'unknown flag: 64');
});

t.test('npx piswarm works from the checkout', async (t) => {
  // npx links the checkout into its own cache once and makes the bin executable
  // only then: a warm cache (a second clone at the same path, a rebuilt dist/)
  // runs whatever mode the build left. So the build itself must set it.
  const bin = path.join(ROOT, 'dist/agent/main.js');
  t.ok((fs.statSync(bin).mode & 0o111) === 0o111, `the build leaves ${path.relative(ROOT, bin)} executable (mode ${(fs.statSync(bin).mode & 0o777).toString(8)})`);
  const r = spawnSync('npx', ['--no-install', 'piswarm', 'version'], { cwd: ROOT, env: { ...ENV, npm_config_update_notifier: 'false' }, encoding: 'utf8', timeout: 60_000 });
  const pkg = JSON.parse(fs.readFileSync(path.join(ROOT, 'package.json'), 'utf8')) as { version: string };
  t.equal(r.status, 0, r.stderr);
  t.match(r.stdout, new RegExp(`^${pkg.version.replace(/\./g, '\\.')}`, 'm'));
});

t.test('SIGTERM: ordered stop, logged, exit 0 well inside the deadline', async (t) => {
  const a = await startAgent(t);
  await ready(a, t);
  const sent = Date.now();
  a.proc.kill('SIGTERM');
  const { code, at } = await a.exited;
  t.equal(code, 0);
  t.ok(at - sent < 12_000, `stopped in ${at - sent} ms (deadline 12 s)`);
  const msgs = a.lines().map((l) => l.msg);
  const stopping = msgs.indexOf('stopping');
  const stopped = msgs.indexOf('stopped');
  t.ok(stopping >= 0 && stopped > stopping, `"stopping" then "stopped": ${JSON.stringify(msgs.slice(-6))}`);
  t.equal(a.lines().find((l) => l.msg === 'stopping')?.signal, 'SIGTERM');
  t.notOk(a.lines().some((l) => Number(l.level) >= 50), 'no error on the way down');
});

t.test('a second signal during a slow stop exits at once with 1', async (t) => {
  const a = await startAgent(t);
  await ready(a, t);
  // A client that never finishes its request keeps the HTTP server's close
  // waiting (up to its step deadline), so the stop is still running when the
  // second signal comes. Without it the stop takes ~20 ms and wins the race.
  const stuck = net.connect(a.port, '127.0.0.1');
  await new Promise<void>((r) => stuck.once('connect', () => r()));
  stuck.write('GET /health HTTP/1.1\r\nHost: x\r\n');
  t.teardown(() => stuck.destroy());
  a.proc.kill('SIGTERM');
  const deadline = Date.now() + 5000;
  while (!a.lines().some((l) => l.msg === 'stopping') && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
  await new Promise((r) => setTimeout(r, 200));
  t.equal(a.proc.exitCode, null, 'still stopping 200 ms later (held by the unfinished request)');
  const sent = Date.now();
  a.proc.kill('SIGINT');
  const { code, at } = await a.exited;
  t.equal(code, 1);
  t.ok(at - sent < 2000, `exited ${at - sent} ms after the second signal`);
  t.ok(a.lines().some((l) => l.msg === 'second signal: exiting at once'));
  t.notOk(a.lines().some((l) => l.msg === 'stopped'), 'the ordered stop did not finish');
});

t.test('a port clash exits 69 (systemd retries) and says which port', async (t) => {
  const first = await startAgent(t);
  await ready(first, t);
  const second = await startAgent(t, [], first.port);
  const { code } = await second.exited;
  t.equal(code, 69);
  t.ok(second.lines().some((l) => l.msg === `port ${first.port} is already taken`));
  t.equal(first.proc.exitCode, null, 'the first agent is untouched');
});

t.test('no cluster key: the join relay takes no port (another agent or program may hold it)', async (t) => {
  // A listener of our own on a free port stands in for whatever holds the relay's port.
  const holder = net.createServer();
  await new Promise<void>((r) => holder.listen(0, '127.0.0.1', () => r()));
  t.teardown(() => holder.close());
  const held = (holder.address() as net.AddressInfo).port;
  const a = await startAgent(t, ['--formation-join-relay-port', String(held)]);
  await ready(a, t);
  a.proc.kill('SIGTERM');
  t.equal((await a.exited).code, 0);
  t.notOk(a.lines().some((l) => /join relay/.test(String(l.msg))), `no join relay line: ${JSON.stringify(a.lines().filter((l) => /relay/.test(String(l.msg))))}`);
  t.notOk(a.lines().some((l) => Number(l.level) >= 50), 'no error from start to stop');

  // With a key (formation off), the relay does try the port, and says so when it is taken.
  const keyed = await startAgent(t, ['--formation-join-relay-port', String(held)], undefined, { PISWARM_CLUSTER_KEY: 'a'.repeat(64) });
  await ready(keyed, t);
  keyed.proc.kill('SIGTERM');
  await keyed.exited;
  t.ok(keyed.lines().some((l) => l.msg === 'join relay cannot listen; workers join managers directly (formation.joinRelayPort)' && l.port === held), 'with a key the relay reports the taken port');
});
