/**
 * The agent and Debian's prometheus-node-exporter as real processes on this
 * host, side by side, and a strict-enough parser of what they serve.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const ROOT = fileURLToPath(new URL('../../../../', import.meta.url));
export const NODE_EXPORTER = '/usr/bin/prometheus-node-exporter';
export const PROMETHEUS = '/usr/bin/prometheus';

/** Missing reference tools skip outside CI and fail in CI (setup-host.sh installs them). */
export function missingTool(...files: string[]): string | false {
  const missing = files.filter((f) => !fs.existsSync(f));
  if (missing.length === 0) return false;
  if (process.env.CI) throw new Error(`reference tools missing in CI: ${missing.join(', ')} (scripts/setup-host.sh installs them)`);
  return `not installed: ${missing.join(', ')} (Debian packages prometheus, prometheus-node-exporter)`;
}

export async function freePort(): Promise<number> {
  const s = net.createServer();
  await new Promise<void>((r) => s.listen(0, '127.0.0.1', r));
  const port = (s.address() as net.AddressInfo).port;
  await new Promise((r) => s.close(r));
  return port;
}

interface TestLike { teardown(fn: () => unknown): void }

export interface Server { name: string; port: number; proc: ChildProcess; url: string }

export async function waitHttp(url: string, proc: ChildProcess, name: string, ms = 20_000): Promise<void> {
  const deadline = Date.now() + ms;
  for (;;) {
    if (proc.exitCode !== null) throw new Error(`${name} exited with ${proc.exitCode}`);
    try {
      const r = await fetch(url);
      await r.arrayBuffer();
      if (r.ok) return;
    } catch {
      // not listening yet: retry until the deadline
    }
    if (Date.now() > deadline) throw new Error(`${name} did not answer ${url}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

function started(t: TestLike, name: string, port: number, proc: ChildProcess, cleanup?: () => void): Server {
  t.teardown(() => {
    proc.kill('SIGTERM');
    cleanup?.();
  });
  return { name, port, proc, url: `http://127.0.0.1:${port}/metrics` };
}

/** The agent with formation off, sampling every second so its cached values lag node_exporter's by at most that. */
export async function startAgent(t: TestLike, intervalMs = 1000, extraArgs: readonly string[] = []): Promise<Server> {
  const port = await freePort();
  const stateDir = fs.mkdtempSync(path.join(os.tmpdir(), 'piswarm-metrics-'));
  const proc = spawn(process.execPath, [path.join(ROOT, 'dist/agent/main.js'), 'agent', '--http-host', '127.0.0.1', '--port', String(port),
    '--state-dir', stateDir, '--formation-enabled', 'false', '--autopilot-enabled', 'false', '--log-level', 'warn', '--metrics-interval-ms', String(intervalMs), ...extraArgs],
  { stdio: ['ignore', 'ignore', 'inherit'], env: { PATH: process.env.PATH ?? '/usr/bin:/bin', HOME: os.tmpdir() } });
  const s = started(t, 'piswarm', port, proc, () => fs.rmSync(stateDir, { recursive: true, force: true }));
  await waitHttp(s.url, proc, 'piswarm');
  return s;
}

/** Debian's node_exporter with its default collectors. */
export async function startNodeExporter(t: TestLike, extraArgs: readonly string[] = []): Promise<Server> {
  const port = await freePort();
  const proc = spawn(NODE_EXPORTER, [`--web.listen-address=127.0.0.1:${port}`, ...extraArgs], { stdio: 'ignore' });
  const s = started(t, 'node_exporter', port, proc);
  await waitHttp(s.url, proc, 'node_exporter');
  return s;
}

export interface Series { name: string; labels: Record<string, string>; value: number }
export interface Scrape { at: number; types: Map<string, string>; series: Map<string, Series> }

export const seriesKey = (name: string, labels: Record<string, string>) =>
  `${name}{${Object.keys(labels).sort().map((k) => `${k}=${JSON.stringify(labels[k])}`).join(',')}}`;

/** Text exposition 0.0.4 as both servers write it (no timestamps, no exemplars). */
export function parseExposition(text: string): Omit<Scrape, 'at'> {
  const types = new Map<string, string>();
  const series = new Map<string, Series>();
  for (const line of text.split('\n')) {
    const type = /^# TYPE (\S+) (\S+)$/.exec(line);
    if (type) types.set(type[1] as string, type[2] as string);
    if (line === '' || line.startsWith('#')) continue;
    const m = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? (\S+)$/.exec(line);
    if (!m) throw new Error(`unparseable line: ${line}`);
    const labels: Record<string, string> = {};
    for (const l of (m[2] ?? '').matchAll(/([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"/g)) labels[l[1] as string] = JSON.parse(`"${l[2]}"`) as string;
    const value = Number((m[3] as string).replace(/^\+Inf$/, 'Infinity').replace(/^-Inf$/, '-Infinity'));
    series.set(seriesKey(m[1] as string, labels), { name: m[1] as string, labels, value });
  }
  return { types, series };
}

export async function scrape(s: Pick<Server, 'name' | 'url'>): Promise<Scrape> {
  const at = Date.now();
  const r = await fetch(s.url).catch((err: Error & { cause?: Error }) => {
    throw new Error(`${s.name}: GET ${s.url} failed: ${err.message}${err.cause ? ` (${err.cause.message})` : ''}`);
  });
  if (!r.ok) throw new Error(`${s.name}: HTTP ${r.status} from ${s.url}: ${(await r.text()).slice(0, 300)}`);
  return { at, ...parseExposition(await r.text()) };
}
