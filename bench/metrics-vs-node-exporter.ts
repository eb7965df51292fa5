/**
 * The agent's /metrics against Debian's prometheus-node-exporter on the same
 * machine, in one run, under the same bounded concurrent load. Prints a table;
 * asserts nothing.
 *
 *   node dist/bench/metrics-vs-node-exporter.js [--requests 2000] [--concurrency 8]
 *
 * It runs the real agent (`dist/agent/main.js agent`, the whole HTTP app and
 * every collector) with the V8 flags of the ExecStart line of
 * systemd/piswarm.service, so the memory figure is the agent's as deployed.
 * Formation and the autopilot are switched off (no cluster key, nothing to
 * form on this host's engine); the Docker monitor samples the host's engine
 * if one answers.
 */
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { Pool } from 'undici';
import { cpuSeconds, rssKiB, stopChildrenOnSignal, unitNodeFlags, waitUp } from './lib/process.js';


const NODE_EXPORTER = '/usr/bin/prometheus-node-exporter';
const ROOT = fileURLToPath(new URL('../../', import.meta.url));

function arg(name: string, def: number): number {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 ? Number(process.argv[i + 1]) : def;
}

interface Result { body: string; name: string; cpuMsPerScrape: number; idleKiB: number; p50: number; p99: number; rps: number; bytes: number; series: number; rssKiB: number; hwmKiB: number }

async function load(name: string, origin: string, pid: number, requests: number, concurrency: number): Promise<Result> {
  const idleKiB = rssKiB(pid).rss; // after start-up and the first scrapes of waitUp, before the load
  const pool = new Pool(origin, { connections: concurrency, pipelining: 1 });
  const one = async () => {
    const t0 = performance.now();
    const r = await pool.request({ path: '/metrics', method: 'GET' });
    const body = await r.body.text();
    if (r.statusCode !== 200) throw new Error(`${name}: HTTP ${r.statusCode}`);
    return { ms: performance.now() - t0, body };
  };
  for (let i = 0; i < 50; i++) await one(); // warm-up: JIT, connections, node_exporter's first scrape
  const lat: number[] = [];
  let body = '';
  const cpu0 = cpuSeconds(pid);
  let next = 0;
  const t0 = performance.now();
  await Promise.all(Array.from({ length: concurrency }, async () => {
    while (next < requests) {
      next++;
      const r = await one();
      lat.push(r.ms);
      body = r.body;
    }
  }));
  const secs = (performance.now() - t0) / 1000;
  const cpuMsPerScrape = ((cpuSeconds(pid) - cpu0) * 1000) / lat.length;
  await pool.close();
  lat.sort((a, b) => a - b);
  const q = (p: number) => lat[Math.min(lat.length - 1, Math.floor(p * lat.length))] as number;
  const mem = rssKiB(pid);
  return {
    body, name, cpuMsPerScrape, idleKiB, p50: q(0.5), p99: q(0.99), rps: lat.length / secs, bytes: Buffer.byteLength(body),
    series: body.split('\n').filter((l) => l !== '' && !l.startsWith('#')).length, rssKiB: mem.rss, hwmKiB: mem.hwm,
  };
}

async function main(): Promise<void> {
  const requests = arg('requests', 2000);
  const concurrency = arg('concurrency', 8);
  const ourPort = 19101 + Math.floor(Math.random() * 500);
  const nePort = ourPort + 1000;
  if (!fs.existsSync(NODE_EXPORTER)) {
    console.log(`node_exporter not installed (${NODE_EXPORTER}): apt-get install prometheus-node-exporter`);
    process.exitCode = 1;
    return;
  }
  const flags = unitNodeFlags(fs.readFileSync(path.join(ROOT, 'systemd/piswarm.service'), 'utf8'));
  const stateDir = fs.mkdtempSync(path.join(os.tmpdir(), 'piswarm-bench-state-'));
  const ours = spawn(process.execPath, [...flags, path.join(ROOT, 'dist/agent/main.js'), 'agent', '--http-host', '127.0.0.1', '--port', String(ourPort),
    '--state-dir', stateDir, '--formation-enabled', 'false', '--autopilot-enabled', 'false', '--log-level', 'warn'],
  { stdio: ['ignore', 'ignore', 'inherit'], env: { PATH: process.env.PATH ?? '/usr/bin:/bin' } });
  const ne = spawn(NODE_EXPORTER, [`--web.listen-address=127.0.0.1:${nePort}`], { stdio: ['ignore', 'ignore', 'ignore'] });
  const unhook = stopChildrenOnSignal([ours, ne]);
  try {
    await Promise.all([waitUp(`http://127.0.0.1:${ourPort}/metrics`, ours, 'piswarm'), waitUp(`http://127.0.0.1:${nePort}/metrics`, ne, 'node_exporter')]);
    const a = await load('piswarm', `http://127.0.0.1:${ourPort}`, ours.pid as number, requests, concurrency);
    const b = await load('node_exporter', `http://127.0.0.1:${nePort}`, ne.pid as number, requests, concurrency);
    console.log(`${requests} GET /metrics per server, ${concurrency} concurrent (undici Pool), loopback, ${os.cpus().length} CPUs, Node ${process.version}, agent flags: ${flags.join(' ') || '(none)'}`);
    const row = (cells: Array<string | number>) => console.log(cells.map((c, i) => String(c).padStart(i === 0 ? 14 : 12)).join(' '));
    row(['', 'p50 ms', 'p99 ms', 'req/s', 'CPU ms/scr', 'bytes', 'series', 'idle RSS', 'RSS MiB', 'peak MiB']);
    for (const r of [a, b]) row([r.name, r.p50.toFixed(2), r.p99.toFixed(2), r.rps.toFixed(0), r.cpuMsPerScrape.toFixed(2), r.bytes, r.series, (r.idleKiB / 1024).toFixed(1), (r.rssKiB / 1024).toFixed(1), (r.hwmKiB / 1024).toFixed(1)]);
    // The agent's work happens off the scrape: one sample of every collector per interval.
    const sampleMs = a.body.split('\n').filter((l) => l.startsWith('node_scrape_collector_duration_seconds{'))
      .reduce((sum, l) => sum + Number(l.split(' ')[1]) * 1000, 0);
    console.log(`piswarm: one sample of all host collectors took ${sampleMs.toFixed(1)} ms (once per metrics.intervalMs, default 5 s)`);
    // What Node.js alone costs with the same flags: the floor under any agent written in it.
    const bare = spawn(process.execPath, [...flags, '-e', 'setInterval(() => {}, 1000)'], { stdio: 'ignore' });
    await new Promise((r) => setTimeout(r, 1500));
    const bareKiB = rssKiB(bare.pid as number).rss;
    bare.kill('SIGTERM');
    row(['bare node', '', '', '', '', '', '', (bareKiB / 1024).toFixed(1), '', '']);
    row(['ratio p/ne', (a.p50 / b.p50).toFixed(2), (a.p99 / b.p99).toFixed(2), (a.rps / b.rps).toFixed(2), (a.cpuMsPerScrape / b.cpuMsPerScrape).toFixed(2), (a.bytes / b.bytes).toFixed(2), (a.series / b.series).toFixed(2), (a.idleKiB / b.idleKiB).toFixed(2), (a.rssKiB / b.rssKiB).toFixed(2), (a.hwmKiB / b.hwmKiB).toFixed(2)]);
  } finally {
    unhook();
    ours.kill('SIGTERM');
    ne.kill('SIGTERM');
  }
}

main().catch((err: unknown) => {
  console.error(err);
  process.exitCode = 1;
});
