/**
 * Gossip membership in simulation: the real core (agent/membership/core.ts)
 * N times over a virtual clock and a lossy virtual network.
 *
 *   node dist/bench/gossip-sim.js [--n 10,50,200,1000] [--loss 0.01] [--seed 1]
 *
 * For each N: time from a crash until every live member has it dead (median,
 * p99 over several crashes, one after another), time for a meta update to
 * reach every member (median, p99), traffic per node, and the wall-clock cost.
 * All times but "wall" are simulated. Defaults are the shipped config.
 */
import { parseArgs } from 'node:util';
import { quantile } from '../agent/membership/sim/cluster.js';
import { runCrashAndUpdate } from '../agent/membership/sim/experiments.js';

const { values } = parseArgs({
  options: {
    n: { type: 'string', default: '10,50,200,1000' },
    loss: { type: 'string', default: '0.01' },
    seed: { type: 'string', default: '1' },
  },
});
const sizes = values.n.split(',').map(Number);
const loss = Number(values.loss);
const seed = Number(values.seed);

const s = (ms: number) => (Number.isFinite(ms) ? (ms / 1000).toFixed(2) : 'never');
const row = (cells: (string | number)[]) => console.log(cells.map((c, i) => String(c).padStart(i === 0 ? 5 : 11)).join(' '));

console.log(`gossip-sim: loss ${loss * 100}%, one-way delay 1-5 ms, seed ${seed}, node ${process.version}`);
row(['N', 'crashes', 'det.med s', 'det.p99 s', 'obs.p99 s', 'updates', 'dis.med s', 'dis.p99 s', 'idle msg/s', 'idle B/s', 'busy msg/s', 'busy B/s', 'false dead', 'sim s', 'wall s', 'cpu s']);
for (const n of sizes) {
  // 1000 nodes: keep it to about two simulated minutes.
  const big = n >= 500;
  const crashes = big ? 5 : n <= 10 ? 6 : 10;
  const updates = big ? 6 : 20;
  const cpu0 = process.cpuUsage();
  const r = runCrashAndUpdate({ n, seed: seed * 1009 + n, network: { loss }, crashes, updates, gapMs: big ? 1000 : 2000, idleMs: big ? 10_000 : 20_000 });
  const cpu = process.cpuUsage(cpu0);
  row([
    n,
    r.allKnownMs.length,
    s(quantile(r.allKnownMs, 0.5)),
    s(quantile(r.allKnownMs, 0.99)),
    s(quantile(r.perObserverMs, 0.99)),
    r.disseminationMs.length,
    s(quantile(r.disseminationMs, 0.5)),
    s(quantile(r.disseminationMs, 0.99)),
    r.idleMsgsPerNodePerSec.toFixed(2),
    r.idleBytesPerNodePerSec.toFixed(0),
    r.msgsPerNodePerSec.toFixed(2),
    r.bytesPerNodePerSec.toFixed(0),
    r.falseDeaths,
    (r.simulatedMs / 1000).toFixed(0),
    (r.wallMs / 1000).toFixed(1),
    // CPU time as well: on a shared machine wall time mostly measures the neighbours.
    ((cpu.user + cpu.system) / 1e6).toFixed(1),
  ]);
}
console.log('det = crash until every live member has it dead; obs = per observer; dis = meta update until every member has it;');
console.log('idle = datagrams sent per node over 20 s (10 s for N >= 500) without changes; busy = during the crash and update phases.');
