/**
 * GET /v1/cluster latency and the dashboard's page weight.
 *
 *   node dist/bench/cluster-view.js [--n 5,100] [--requests 2000] [--url http://NODE:7070]
 *
 * For each N: N real gossip memberships (agent/membership, over the simulated
 * network) converge with every member publishing its facts at full size; the
 * route then answers from member 0's state through a real HTTP server on
 * loopback (buildApp + the cluster routes, as the agent serves them), one
 * request at a time. Printed side by side with GET /livez on the same server
 * (the cheapest route: what the HTTP stack alone costs), and as a ratio.
 * With --url, the same figures against a running agent (e.g. a simulated Pi:
 * `npm run sim -- up --nodes 5`). Then the dashboard's files: bytes and gzip.
 */
import { gzipSync } from 'node:zlib';
import { parseArgs } from 'node:util';
import { request } from 'undici';
import { SimCluster, quantile } from '../agent/membership/sim/cluster.js';
import { fitFacts } from '../agent/cluster/facts.js';
import { FactsLedger } from '../agent/cluster/ledger.js';
import { clusterRoutes } from '../agent/cluster/routes.js';
import { buildClusterView } from '../agent/cluster/view.js';
import { buildApp } from '../agent/http/app.js';
import { loadAssets } from '../agent/dashboard/assets.js';
import { ClusterHistory } from '../agent/dashboard/history.js';
import { HISTORY_INTERVAL_S, HISTORY_MAX_NODES, HISTORY_POINTS } from '../agent/dashboard/subsystem.js';
import { createLogger } from '../agent/log/logger.js';
import { MAX_META_BYTES, metaBytes } from '../shared/wire/gossip.js';

const { values } = parseArgs({ options: { n: { type: 'string', default: '5,100' }, requests: { type: 'string', default: '2000' }, url: { type: 'string' } } });
const REQUESTS = Number(values.requests);

async function time(url: string, n: number): Promise<{ p50: number; p99: number; bytes: number }> {
  const ms: number[] = [];
  let bytes = 0;
  for (let i = 0; i < n + 50; i++) {
    const t0 = process.hrtime.bigint();
    const r = await request(url);
    const body = await r.body.text();
    if (r.statusCode !== 200) throw new Error(`${url}: HTTP ${r.statusCode}`);
    if (i >= 50) ms.push(Number(process.hrtime.bigint() - t0) / 1e6); // 50 warm-up requests
    bytes = Buffer.byteLength(body);
  }
  return { p50: quantile(ms, 0.5), p99: quantile(ms, 0.99), bytes };
}

const f2 = (v: number) => v.toFixed(2);
const row = (cells: (string | number)[]) => console.log(cells.map((c, i) => String(c).padStart(i === 0 ? 8 : 12)).join(' '));

function synthetic(n: number): SimCluster {
  const sim = new SimCluster({ n, seed: n });
  sim.nodes.forEach((nd, i) => {
    const base = { hostname: `pi-rack-${String(i).padStart(3, '0')}`, role: i < 3 ? 'manager' : 'worker', swarmNodeId: `swarmnode${String(i).padStart(16, '0')}`, diskBps: 45_000_000, undervoltage: false, tempC: 48.2 };
    const facts = { seq: 1, version: '0.1.0', health: 'warn' as const, checks: ['docker:ipvs'], cpuPct: 12, memPct: 41, load1: 0.42, throttledNow: false, rootFreePct: 71, uptimeS: 86_400, arch: 'arm64', model: 'Raspberry Pi 4 Model B Rev 1.4', rev: 'c03114', memMb: 3793, storage: 'sd' as const };
    nd.membership.updateMeta({ ...base, ...fitFacts(facts, MAX_META_BYTES - metaBytes(base) - 1) });
  });
  sim.runFor(Math.max(5000, n * 100));
  return sim;
}

console.log(`cluster-view: ${REQUESTS} sequential GETs per row over loopback HTTP, node ${process.version} (a shared 2-core machine: figures are indicative)`);
row(['N', 'route', 'p50 ms', 'p99 ms', 'bytes', '/livez p50', 'ratio p50']);
const log = createLogger({ level: 'silent', journal: false, write: () => {} });
for (const n of values.n.split(',').map(Number)) {
  const sim = synthetic(n);
  const ledger = new FactsLedger();
  const view = () => {
    const members = sim.nodes[0]!.membership.members();
    ledger.observe(members, sim.now);
    return buildClusterView({ now: Date.now(), monoNow: sim.now, clusterName: 'bench', self: { id: 'n0', hostname: 'pi-rack-000' }, members, factsAgeMs: (id) => ledger.ageMs(id, sim.now), publishPeriodMs: 15_000, engine: null, swarmId: 'x', election: null, autopilot: null });
  };
  const alive = view().nodes.filter((x) => x.gossip?.state === 'alive' && x.facts.version !== null).length;
  if (alive !== n) throw new Error(`only ${alive} of ${n} members converged with facts`);
  const app = await buildApp({ log, bodyLimit: 16384, version: '0', health: () => ({ status: 'pass', version: '0', releaseId: '0', serviceId: 'b', description: '', checks: {} }), metrics: () => '', countError: () => {}, plugins: [clusterRoutes({ view, port: 7070 })] });
  const base = await app.listen({ host: '127.0.0.1', port: 0 });
  await time(`${base}/livez`, REQUESTS); // warms the HTTP stack up before anything is compared
  const rows: Array<[string, Awaited<ReturnType<typeof time>>]> = [];
  for (const path of ['/v1/cluster', '/v1/sd/prometheus']) rows.push([path, await time(`${base}${path}`, REQUESTS)]);
  const livez = await time(`${base}/livez`, REQUESTS);
  for (const [path, r] of rows) row([n, path, f2(r.p50), f2(r.p99), r.bytes, f2(livez.p50), `${(r.p50 / livez.p50).toFixed(1)}x`]);
  await app.close();
}
if (values.url) {
  const livez = await time(`${values.url}/livez`, REQUESTS);
  for (const path of ['/v1/cluster', '/v1/sd/prometheus']) {
    const r = await time(`${values.url}${path}`, REQUESTS);
    row([values.url.replace(/^https?:\/\//, ''), path, f2(r.p50), f2(r.p99), r.bytes, f2(livez.p50), `${(r.p50 / livez.p50).toFixed(1)}x`]);
  }
}

// What the dashboard adds to the agent's memory at most: its files, read once, and the
// history full (HISTORY_MAX_NODES nodes would be 2.56 times the N=100 figure).
{
  const sim = synthetic(100);
  const ledger = new FactsLedger();
  const doc = () => {
    const members = sim.nodes[0]!.membership.members();
    ledger.observe(members, sim.now);
    return buildClusterView({ now: Date.now(), monoNow: sim.now, clusterName: 'bench', self: { id: 'n0', hostname: 'pi-rack-000' }, members, factsAgeMs: (id) => ledger.ageMs(id, sim.now), publishPeriodMs: 15_000, engine: null, swarmId: 'x', election: null, autopilot: null });
  };
  const gc = (globalThis as { gc?: () => void }).gc;
  gc?.();
  const before = process.memoryUsage().heapUsed;
  const h = new ClusterHistory({ points: HISTORY_POINTS, maxNodes: HISTORY_MAX_NODES, intervalS: HISTORY_INTERVAL_S });
  for (let i = 0; i < HISTORY_POINTS; i++) h.record(doc(), i * 10);
  const assets = await loadAssets();
  gc?.();
  const after = process.memoryUsage().heapUsed;
  const files = [...assets.values()].reduce((a, x) => a + x.body.length, 0);
  console.log(`dashboard memory: history of 100 nodes x ${HISTORY_POINTS} points + files = ${((after - before) / 1024).toFixed(0)} KiB of heap${gc ? '' : ' (run with --expose-gc for a steadier figure)'} (files ${files} bytes)`);
}

let raw = 0;
let gz = 0;
const files = await loadAssets();
for (const { body } of files.values()) {
  raw += body.length;
  gz += gzipSync(body, { level: 9 }).length;
}
console.log(`dashboard page weight: ${files.size} files, ${raw} bytes (${gz} gzipped); it then polls /v1/cluster every 2 s and /v1/cluster/history every 10 s`);
