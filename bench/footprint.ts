/**
 * What the agent costs a Pi, against Debian's prometheus-node-exporter and
 * Node.js alone, side by side in one run: resident memory idle and after a
 * scrape burst, idle CPU at one scrape per 15 s, /metrics bytes with gzip and
 * CPU per scrape. Prints a table with ratios; asserts nothing.
 *
 *   node dist/bench/footprint.js [--settle-s 20] [--idle-s 60] [--scrape-every-s 15]
 *                                [--per-scrape 200] [--burst 2000] [--concurrency 8]
 *                                [--docker-socket PATH] [--agent PATH/main.js] [--agent-env K=V,K=V]
 *
 * The real agent (`dist/agent/main.js agent`) runs on this host with the V8
 * flags of systemd/piswarm.service and every feature on: a cluster key, mDNS,
 * gossip (its UDP port, probe and gossip timers; no peer), formation and the
 * autopilot. No Docker Engine is given to it by default (a socket path that
 * does not exist): formation on the host's engine would create a swarm there,
 * so the engine side is the "engine down" path. Pass --docker-socket to use one:
 * it must be in no swarm (the bench refuses otherwise), the agent creates one
 * there as a Pi's first agent would, and the bench leaves it at the end. With
 * an engine it also prints dockerd's CPU over the idle window (what the
 * agent's engine calls cost the Pi besides the agent's own CPU).
 * Every scrape asks for gzip, as Prometheus does. --agent runs another build
 * (e.g. an older commit's dist/agent/main.js) to measure a change.
 */
import { spawn } from 'node:child_process';
import crypto from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { Pool } from 'undici';
import { cpuSeconds, rssKiB, sleep, stopChildrenOnSignal, unitEnvironment, unitNodeFlags, waitUp } from './lib/process.js';

const NODE_EXPORTER = '/usr/bin/prometheus-node-exporter';
const ROOT = fileURLToPath(new URL('../../', import.meta.url));

function arg(name: string, def: string): string {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 ? String(process.argv[i + 1]) : def;
}
const num = (name: string, def: number) => Number(arg(name, String(def)));

interface Scrape { status: number; encoding: string | undefined; bytes: number; ms: number }

async function scrape(pool: Pool): Promise<Scrape> {
  const t0 = performance.now();
  const r = await pool.request({ path: '/metrics', method: 'GET', headers: { 'accept-encoding': 'gzip' } });
  const body = Buffer.from(await r.body.arrayBuffer());
  const enc = r.headers['content-encoding'];
  return { status: r.statusCode, encoding: Array.isArray(enc) ? enc[0] : enc, bytes: body.length, ms: performance.now() - t0 };
}

interface Target { name: string; pid: number; pool: Pool }

async function burst(t: Target, n: number, concurrency: number): Promise<{ p50: number; p99: number }> {
  const lat: number[] = [];
  let next = 0;
  await Promise.all(Array.from({ length: concurrency }, async () => {
    while (next < n) {
      next++;
      const s = await scrape(t.pool);
      if (s.status !== 200) throw new Error(`${t.name}: HTTP ${s.status}`);
      lat.push(s.ms);
    }
  }));
  lat.sort((a, b) => a - b);
  const q = (p: number) => lat[Math.min(lat.length - 1, Math.floor(p * lat.length))] as number;
  return { p50: q(0.5), p99: q(0.99) };
}

async function main(): Promise<void> {
  if (!fs.existsSync(NODE_EXPORTER)) {
    console.log(`node_exporter not installed (${NODE_EXPORTER}): apt-get install prometheus-node-exporter`);
    process.exitCode = 1;
    return;
  }
  const settleS = num('settle-s', 20);
  const idleS = num('idle-s', 60);
  const everyS = num('scrape-every-s', 15);
  const perScrape = num('per-scrape', 200);
  const burstN = num('burst', 2000);
  const concurrency = num('concurrency', 8);
  const ourPort = 19101 + Math.floor(Math.random() * 500);
  const nePort = ourPort + 1000;
  const unit = fs.readFileSync(path.join(ROOT, 'systemd/piswarm.service'), 'utf8');
  const flags = unitNodeFlags(unit);
  // The unit's Environment= lines, then --agent-env K=V,K=V (to try a setting before the unit gets it).
  const agentEnv = { ...unitEnvironment(unit), ...Object.fromEntries(arg('agent-env', '').split(',').filter(Boolean).map((kv) => [kv.slice(0, kv.indexOf('=')), kv.slice(kv.indexOf('=') + 1)])) };
  const stateDir = fs.mkdtempSync(path.join(os.tmpdir(), 'piswarm-footprint-'));
  const socket = arg('docker-socket', path.join(stateDir, 'no-docker.sock'));
  const agentMain = arg('agent', path.join(ROOT, 'dist/agent/main.js'));
  const engine = arg('docker-socket', '') ? await engineSwarmState(socket) : null;
  if (engine !== null && engine !== 'inactive') {
    console.error(`footprint: the engine at ${socket} is in a swarm already (${engine}); the agent would act on it. Leave it (docker swarm leave --force) or give another engine.`);
    process.exitCode = 2;
    return;
  }
  const ours = spawn(process.execPath, [...flags, agentMain, 'agent', '--http-host', '127.0.0.1', '--port', String(ourPort),
    '--state-dir', stateDir, '--docker-socket-path', socket, '--log-level', 'warn'],
  { stdio: ['ignore', 'ignore', 'inherit'], env: { ...agentEnv, PATH: process.env.PATH ?? '/usr/bin:/bin', PISWARM_CLUSTER_KEY: crypto.randomBytes(32).toString('hex') } });
  const ne = spawn(NODE_EXPORTER, [`--web.listen-address=127.0.0.1:${nePort}`], { stdio: ['ignore', 'ignore', 'ignore'] });
  const bare = spawn(process.execPath, [...flags, '-e', 'setInterval(() => {}, 1000)'], { stdio: 'ignore', env: { ...agentEnv, PATH: process.env.PATH ?? '/usr/bin:/bin' } });
  const pools: Pool[] = [];
  const unhook = stopChildrenOnSignal([ours, ne, bare], () => fs.rmSync(stateDir, { recursive: true, force: true }));
  try {
    await Promise.all([waitUp(`http://127.0.0.1:${ourPort}/metrics`, ours, 'piswarm'), waitUp(`http://127.0.0.1:${nePort}/metrics`, ne, 'node_exporter')]);
    const mk = (name: string, pid: number, port: number): Target => {
      const pool = new Pool(`http://127.0.0.1:${port}`, { connections: concurrency, pipelining: 1 });
      pools.push(pool);
      return { name, pid, pool };
    };
    const targets = [mk('piswarm', ours.pid as number, ourPort), mk('node_exporter', ne.pid as number, nePort)];
    await sleep(settleS * 1000);
    const idle = targets.map((t) => rssKiB(t.pid).rss);
    const bareIdle = rssKiB(bare.pid as number).rss;

    // Idle CPU: both scraped once per `everyS`, over `idleS`.
    const cpu0 = targets.map((t) => cpuSeconds(t.pid));
    const bareCpu0 = cpuSeconds(bare.pid as number);
    const dockerd = engine !== null ? onlyDockerd() : null;
    const dockerd0 = dockerd !== null ? cpuSeconds(dockerd) : 0;
    const t0 = Date.now();
    while (Date.now() - t0 < idleS * 1000) {
      await Promise.all(targets.map((t) => scrape(t.pool)));
      await sleep(Math.min(everyS * 1000, idleS * 1000 - (Date.now() - t0)));
    }
    const minutes = (Date.now() - t0) / 60_000;
    const idleCpu = targets.map((t, i) => (cpuSeconds(t.pid) - (cpu0[i] as number)) / minutes);
    const bareCpu = (cpuSeconds(bare.pid as number) - bareCpu0) / minutes;
    const dockerdCpu = dockerd !== null ? (cpuSeconds(dockerd) - dockerd0) / minutes : null;

    // Bytes on the wire and CPU per scrape, gzip asked for, one scrape at a time.
    const wire = await Promise.all(targets.map((t) => scrape(t.pool)));
    const perScrapeMs: number[] = [];
    for (const t of targets) {
      const c0 = cpuSeconds(t.pid);
      for (let i = 0; i < perScrape; i++) await scrape(t.pool);
      perScrapeMs.push(((cpuSeconds(t.pid) - c0) * 1000) / perScrape);
    }

    // Memory after a burst.
    const lat = [];
    for (const t of targets) lat.push(await burst(t, burstN, concurrency));
    const after = targets.map((t) => rssKiB(t.pid));

    const a = 0;
    const b = 1;
    const mib = (k: number) => (k / 1024).toFixed(1);
    console.log(`footprint: ${os.cpus().length} CPUs, Node ${process.version}, agent flags ${flags.join(' ')}, environment ${Object.entries(agentEnv).map(([k, v]) => `${k}=${v}`).join(' ')}; every feature on (cluster key, mDNS, gossip, formation, autopilot), engine: ${arg('docker-socket', '') || 'none (socket absent)'}; agent ${agentMain}`);
    console.log(`idle ${settleS} s after start; CPU over ${idleS} s at one gzip scrape per ${everyS} s; CPU per scrape over ${perScrape} sequential gzip scrapes; burst ${burstN} gzip scrapes, ${concurrency} concurrent\n`);
    const rows: Array<[string, string, string, string]> = [
      ['RSS idle MiB', mib(idle[a] as number), `${mib(idle[b] as number)} (bare node ${mib(bareIdle)})`, ((idle[a] as number) / (idle[b] as number)).toFixed(2)],
      ['RSS after burst MiB', mib(after[a]!.rss), mib(after[b]!.rss), (after[a]!.rss / after[b]!.rss).toFixed(2)],
      ['RSS peak MiB', mib(after[a]!.hwm), mib(after[b]!.hwm), (after[a]!.hwm / after[b]!.hwm).toFixed(2)],
      ['idle CPU-s per minute', (idleCpu[a] as number).toFixed(3), `${(idleCpu[b] as number).toFixed(3)} (bare node ${bareCpu.toFixed(3)})`, ((idleCpu[a] as number) / (idleCpu[b] as number)).toFixed(2)],
      ['/metrics bytes (gzip asked)', `${wire[a]!.bytes} (${wire[a]!.encoding ?? 'identity'})`, `${wire[b]!.bytes} (${wire[b]!.encoding ?? 'identity'})`, (wire[a]!.bytes / wire[b]!.bytes).toFixed(2)],
      ['CPU ms per gzip scrape', (perScrapeMs[a] as number).toFixed(2), (perScrapeMs[b] as number).toFixed(2), ((perScrapeMs[a] as number) / (perScrapeMs[b] as number)).toFixed(2)],
      ['burst p50 / p99 ms', `${lat[a]!.p50.toFixed(2)} / ${lat[a]!.p99.toFixed(2)}`, `${lat[b]!.p50.toFixed(2)} / ${lat[b]!.p99.toFixed(2)}`, `${(lat[a]!.p50 / lat[b]!.p50).toFixed(2)} / ${(lat[a]!.p99 / lat[b]!.p99).toFixed(2)}`],
    ];
    // What the agent's engine calls cost the Pi besides its own CPU (node_exporter asks dockerd nothing).
    if (engine !== null) rows.push(['dockerd CPU-s per minute', dockerdCpu !== null ? dockerdCpu.toFixed(3) : 'not measured (not exactly one dockerd here)', '', '']);
    const w = [28, 22, 34, 12];
    const line = (cells: string[]) => console.log(cells.map((c, i) => c.padEnd(w[i] as number)).join(' '));
    line(['', 'piswarm', 'node_exporter', 'ratio']);
    for (const r of rows) line(r);
  } finally {
    unhook();
    await Promise.all(pools.map((p) => p.close()));
    for (const c of [ours, ne, bare]) c.kill('SIGTERM');
    fs.rmSync(stateDir, { recursive: true, force: true });
    if (engine !== null) await leaveSwarm(socket);
  }
}

/** The pid of the one dockerd on this host (its engine is the one given), or null when there are none or several (simulated Pis run theirs). */
function onlyDockerd(): number | null {
  const pids = fs.readdirSync('/proc').filter((d) => /^\d+$/.test(d)).filter((d) => {
    try {
      return fs.readFileSync(`/proc/${d}/comm`, 'utf8').trim() === 'dockerd';
    } catch {
      return false; // gone meanwhile
    }
  });
  return pids.length === 1 ? Number(pids[0]) : null;
}

/** The engine's LocalNodeState: with an engine the agent (formation.expect 1) creates a swarm on it. */
async function engineSwarmState(socket: string): Promise<string> {
  const pool = new Pool('http://docker', { socketPath: socket });
  try {
    const r = await pool.request({ path: '/info', method: 'GET' });
    const info = (await r.body.json()) as { Swarm?: { LocalNodeState?: string } };
    return info.Swarm?.LocalNodeState ?? 'unknown';
  } finally {
    await pool.close();
  }
}

/** Leaves the swarm the agent created on an engine that was in none before the run. */
async function leaveSwarm(socket: string): Promise<void> {
  const pool = new Pool('http://docker', { socketPath: socket });
  try {
    const r = await pool.request({ path: '/swarm/leave?force=true', method: 'POST' });
    await r.body.dump();
    if (r.statusCode === 200) console.log(`footprint: left the swarm the agent created on ${socket}`);
    else if (r.statusCode !== 503) console.error(`footprint: could not leave the swarm on ${socket} (HTTP ${r.statusCode}): docker swarm leave --force`);
  } finally {
    await pool.close();
  }
}

main().catch((err: unknown) => {
  console.error(err);
  process.exitCode = 1;
});
