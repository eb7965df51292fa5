/**
 * The release on arm64, a Raspberry Pi's architecture, on this x86-64
 * machine under qemu-user-static: the same tarball a Pi installs, run by the
 * arm64 `node` of Debian 13 (what Raspberry Pi OS trixie ships) in an arm64
 * root made by scripts/build-arm64-root.sh (cached between runs). The agent
 * reads the recorded Raspberry Pi 4 tree (test/fixtures/hosts/rpi4) as its
 * /proc and /sys; /health, /metrics (checked by promtool), `piswarm doctor`,
 * `piswarm bench-disk` on a loop device and `piswarm flash` onto an image
 * file all run there. One tarball serves arm64 and x86-64 only if nothing in
 * it is native code: checked first, on every file of the release.
 *
 * Everything is 5-20 times slower under emulation: about 1-2 min here once
 * the root exists (building it: about 10 min, once per machine).
 */
import { ALLOWED_LINT } from '../../unit/agent/metrics/promtool.js';
import { execFileSync, spawnSync } from 'node:child_process';
import { closeSync, cpSync, mkdirSync, mkdtempSync, openSync, readdirSync, readSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';
import t from 'tap';
import { buildPiImage, missingTools, mtoolsList, mtoolsRead, BOOT_START_SECTOR } from '../flash/disk-image.js';
import { SSH_KEY } from '../flash/firstboot.js';
import { ARM64_ROOT, arm64SkipReason, elfMachine, runArm64, spawnArm64 } from './chroot.js';

const ROOT = fileURLToPath(new URL('../../../../', import.meta.url));
const FIXTURE = join(ROOT, 'test/fixtures/hosts/rpi4');
const MAIN = '/work/piswarm/dist/agent/main.js';
const missing = missingTools();
const skip = arm64SkipReason() || (missing.length ? `missing host tools: ${missing.join(', ')} (apt-get install mtools fdisk xz-utils)` : false);

/** Every file under `dir` whose first bytes are an ELF header (a native add-on or any other binary). */
function elfFiles(dir: string): string[] {
  const found: string[] = [];
  const head = Buffer.alloc(4);
  const walk = (d: string) => {
    for (const e of readdirSync(d, { withFileTypes: true })) {
      const p = join(d, e.name);
      if (e.isDirectory()) walk(p);
      else if (e.isFile() && statSync(p).size >= 4) {
        const fd = openSync(p, 'r');
        readSync(fd, head, 0, 4, 0);
        closeSync(fd);
        if (head.equals(Buffer.from([0x7f, 0x45, 0x4c, 0x46]))) found.push(relative(dir, p));
      }
    }
  };
  walk(dir);
  return found;
}

t.test('the release on arm64 under emulation: agent, doctor, bench-disk, flash', { skip, timeout: 2_400_000 }, async (t) => {
  const built = spawnSync('bash', [join(ROOT, 'scripts/build-arm64-root.sh')], { encoding: 'utf8', timeout: 30 * 60_000 });
  t.equal(built.status, 0, `scripts/build-arm64-root.sh: ${built.stderr.trim().split('\n').pop()}`);
  if (built.status !== 0) return;
  const pkg = spawnSync('bash', [join(ROOT, 'scripts/package.sh'), '--skip-build'], { cwd: ROOT, encoding: 'utf8', timeout: 10 * 60_000 });
  t.equal(pkg.status, 0, `scripts/package.sh: ${pkg.stderr.trim()}`);

  const work = mkdtempSync('/var/tmp/piswarm-arm64-');
  t.teardown(() => rmSync(work, { recursive: true, force: true }));
  cpSync(join(ROOT, 'release/piswarm.tar.gz'), join(work, 'piswarm.tar.gz'));
  mkdirSync(join(work, 'piswarm'));
  execFileSync('tar', ['-xzf', join(work, 'piswarm.tar.gz'), '-C', join(work, 'piswarm'), '--strip-components=1']);
  cpSync(FIXTURE, join(work, 'rpi4'), { recursive: true });

  t.same(elfFiles(join(work, 'piswarm')), [], 'no native code anywhere in the release (no .node add-on, no binary)');
  t.equal(elfMachine('usr/bin/nodejs'), 'aarch64', `${ARM64_ROOT}/usr/bin/nodejs is an arm64 program`);
  const v = runArm64(work, ['node', '-p', 'process.versions.node + " " + process.arch']);
  t.equal(v.code, 0, v.stderr);
  t.match(v.stdout.trim(), /^20\.\d+\.\d+ arm64$/, `the distribution's node runs as arm64: ${v.stdout.trim()}`);

  // A loop device over a file with a known pattern: the benchmark must read it and write nothing.
  const disk = join(work, 'disk.img');
  writeFileSync(disk, Buffer.alloc(16 << 20, 0x5a));
  const loop = execFileSync('losetup', ['--find', '--show', disk], { encoding: 'utf8' }).trim();
  t.teardown(() => { spawnSync('losetup', ['-d', loop]); });

  const port = 17000 + (process.pid % 2000);
  const t0 = Date.now();
  const agent = spawnArm64(work, ['node', MAIN, 'agent', '--http-host', '127.0.0.1', '--port', String(port), '--state-dir', '/work/state',
    '--formation-enabled', 'false', '--autopilot-enabled', 'false', '--discovery-mdns', 'false', '--docker-socket-path', '/work/no-docker.sock',
    '--metrics-proc-root', '/work/rpi4/proc', '--metrics-sys-root', '/work/rpi4/sys',
    '--disk-bench-device', loop, '--disk-bench-max-bytes', String(4 << 20)]);
  let out = '';
  agent.stdout!.on('data', (d) => (out += d));
  agent.stderr!.on('data', (d) => (out += d));
  const exited = new Promise<number | null>((r) => agent.on('exit', r));
  t.teardown(async () => {
    if (agent.exitCode === null) agent.kill('SIGKILL');
    await exited;
  });
  while (!/"msg":"agent ready"/.test(out)) {
    if (agent.exitCode !== null || Date.now() - t0 > 180_000) {
      t.fail(`the agent did not get ready (exit ${agent.exitCode}):\n${out}`);
      return;
    }
    await new Promise((r) => setTimeout(r, 250));
  }
  t.comment(`arm64 agent ready ${((Date.now() - t0) / 1000).toFixed(1)} s after start (emulated)`);
  const url = `http://127.0.0.1:${port}`;

  await t.test('/health answers with every check', async (t) => {
    const res = await fetch(`${url}/health`);
    const body = (await res.json()) as { status: string; checks: Record<string, unknown> };
    t.ok([200, 503].includes(res.status), `HTTP ${res.status}`);
    t.equal(body.status === 'fail', res.status === 503, 'the status code follows the verdict');
    t.ok(body.checks['docker:engine'], 'docker:engine is checked (no engine behind the socket here)');
  });

  await t.test('/metrics: the Pi 4 sample tree, in exposition format promtool accepts', async (t) => {
    const text = await (await fetch(`${url}/metrics`)).text();
    t.match(text, new RegExp(`^node_memory_MemTotal_bytes ${3885076 * 1024}$`, 'm'), 'MemTotal of the recorded Pi 4 (3885076 kB)');
    t.match(text, /^node_cpu_seconds_total\{cpu="3",mode="idle"\} /m, 'four cores');
    const p = spawnSync('promtool', ['check', 'metrics'], { input: text, encoding: 'utf8' });
    // Exit 1 is a parse error, 3 lint only; the one lint accepted is node_exporter's
    // own camelCase names (node_memory_MemFree_bytes), as in agent-systemd.test.
    const lint = `${p.stdout ?? ''}${p.stderr ?? ''}`.split('\n').filter(Boolean)
      .filter((l) => !ALLOWED_LINT.test(l) && !/^node_\S+ metric names should be written in 'snake_case' not 'camelCase'$/.test(l));
    t.ok(p.status === 0 || p.status === 3, `promtool parses /metrics (exit ${p.status}${p.error ? `, ${p.error.message}` : ''})`);
    t.same(lint, [], 'and finds no lint problem beyond node_exporter-compatible names');
  });

  await t.test('piswarm bench-disk reads the loop device through the agent', async (t) => {
    const r = runArm64(work, ['node', MAIN, 'bench-disk', '--json', '--port', String(port)]);
    t.equal(r.code, 0, r.stderr);
    const b = JSON.parse(r.stdout) as { device: string; bytes: number; bytesPerSecond: number };
    t.equal(b.device, loop);
    t.equal(b.bytes, 4 << 20, 'bounded by diskBench.maxBytes');
    t.ok(b.bytesPerSecond > 0, `${(b.bytesPerSecond / 1e6).toFixed(0)} MB/s`);
  });

  await t.test('piswarm doctor runs its checks', async (t) => {
    const r = runArm64(work, ['node', MAIN, 'doctor', '--json']);
    t.ok(r.code === 0 || r.code === 1, `exit ${r.code} (1: something blocks a swarm on this host, which is no Pi): ${r.stderr}`);
    const doc = JSON.parse(r.stdout) as { status: string; checks: Array<{ id: string; status: string; detail?: string }> };
    t.ok(doc.checks.length > 3, `${doc.checks.length} checks`);
    const nodeCheck = doc.checks.find((c) => c.id === 'runtime:node');
    t.equal(nodeCheck?.status, 'pass', `the node check passes for the distribution's node: ${JSON.stringify(nodeCheck)}`);
  });

  await t.test('piswarm cluster create and piswarm flash onto an image file', async (t) => {
    buildPiImage(work);
    writeFileSync(join(work, 'id.pub'), `${SSH_KEY}\n`);
    const c = runArm64(work, ['node', MAIN, 'cluster', 'create', 'arm-test', '--size', '3', '--out', '/work/cluster.json']);
    t.equal(c.code, 0, c.stderr);
    const f = runArm64(work, ['node', MAIN, 'flash', '--image', '/work/pi.img', '--target', '/work/card.img', '--cluster', '/work/cluster.json',
      '--hostname', 'pi-arm', '--ssh-key', '/work/id.pub', '--release', '/work/piswarm.tar.gz', '--yes'], 300_000);
    t.equal(f.code, 0, `flash: ${f.stdout}${f.stderr}`);
    const boot = BOOT_START_SECTOR * 512;
    const files = mtoolsList(join(work, 'card.img'), boot);
    t.ok(files.includes('user-data'), `the boot partition holds ${files.join(', ')}`);
    t.match(mtoolsRead(join(work, 'card.img'), boot, 'user-data').toString(), /^\s*hostname: "?pi-arm"?$/m, 'user-data names the flashed hostname');
  });

  agent.kill('SIGTERM');
  t.equal(await exited, 0, 'the agent stops cleanly on SIGTERM');
});
