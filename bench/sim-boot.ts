/**
 * How long the simulated cluster takes from `up` to every agent answering
 * /health from the host, for N = 1, 3, 5 nodes, split into phases:
 *   images     engine check, base image, release tarball, `docker build` (once)
 *   container  `docker start` -> systemd (PID 1) running
 *   dockerd    -> docker.service active (the node's own engine sent READY=1)
 *   agent      -> piswarm.service active (the agent sent READY=1)
 *   health     -> the host got an answer from /health over the bridge
 * Phase times come from systemd's CLOCK_MONOTONIC timestamps inside each node,
 * which share the host's clock, so measuring costs no polling during the boot.
 *
 *   npm run build && node dist/bench/sim-boot.js [--nodes 1,3,5] [--cold]
 *
 * --cold builds the simulated-Pi image without Docker's layer cache and
 * reinstalls the production dependencies (not the debootstrap base:
 * `time scripts/build-base.sh --force` measures that one).
 */
import { parseArgs } from 'node:util';
import { rm } from 'node:fs/promises';
import { join } from 'node:path';
import * as sim from '../scripts/sim/cluster.js';
import { ensureImages } from '../scripts/sim/images.js';

const { values } = parseArgs({
  options: {
    nodes: { type: 'string', default: '1,3,5' },
    cold: { type: 'boolean', default: false },
  },
});
const sizes = values.nodes.split(',').map(Number).filter((n) => Number.isInteger(n) && n > 0);
const root = sim.repoRoot();
const s = (ms: number) => (Number.isFinite(ms) ? (ms / 1000).toFixed(2).padStart(6) : '   n/a');
const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor((xs.length - 1) / 2)]!;

if (values.cold) await rm(join(root, 'release/.cache'), { recursive: true, force: true });
const t0 = performance.now();
const img = await ensureImages({ root, noCache: values.cold });
const imagesMs = performance.now() - t0;
console.log(`images${values.cold ? ' (cold)' : ''}: ${s(imagesMs)} s  = engine ${s(img.engineMs)} + base ${s(img.baseMs)} + release ${s(img.releaseMs)} + docker build ${s(img.buildMs)}`);
console.log('');
console.log('nodes | up->all healthy |  container (med/max) |    dockerd (med/max) |      agent (med/max) | seconds after docker start');
for (const n of sizes) {
  const name = `bench-boot-${n}`;
  await sim.down({ name });
  try {
    const up = await sim.up({ name, nodes: n, skipImages: true, timeoutMs: 300_000 });
    const phases = await Promise.all(up.nodes.map((node) => sim.bootPhases({ name }, node.name, up.startedAtUs)));
    const col = (k: 'containerMs' | 'dockerdMs' | 'agentMs') => {
      const xs = phases.map((p) => p[k]);
      return `${s(median(xs))} / ${s(Math.max(...xs))}`;
    };
    console.log(`${String(n).padStart(5)} | ${s(up.bootMs)}          | ${col('containerMs')}      | ${col('dockerdMs')}      | ${col('agentMs')}      |`);
  } finally {
    await sim.down({ name });
  }
}
console.log('\n(health = "up->all healthy": the host\'s first /health answer from the last node)');
