/**
 * How long the simulated cluster takes from `up` to every agent answering
 * /health from the host, for N = 1, 3, 5 nodes, split into phases:
 *   images     engine check, base image, release tarball, `docker build`
 *              (the first one on its own line; then within every `up`, cached)
 *   create     network and containers, up to the first `docker start`
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
// The first preparation may build; it is reported on its own. Every `up` below
// then includes its own (cached) image check, as a user's `npm run sim -- up` does.
const t0 = performance.now();
const img = await ensureImages({ root, noCache: values.cold });
const imagesMs = performance.now() - t0;
console.log(`first image preparation${values.cold ? ' (cold)' : ''}: ${s(imagesMs)} s  = engine ${s(img.engineMs)} + base ${s(img.baseMs)} + release ${s(img.releaseMs)} + docker build ${s(img.buildMs)}`);
console.log('');
console.log('nodes |  up total | images | create |  container (med/max) |    dockerd (med/max) |      agent (med/max) |  health (last)');
for (const n of sizes) {
  const name = `bench-boot-${n}`;
  await sim.down({ name });
  try {
    const called = performance.now();
    const up = await sim.up({ name, nodes: n, timeoutMs: 300_000 });
    const totalMs = performance.now() - called;
    const i = up.images;
    const imgMs = i ? i.engineMs + i.baseMs + i.releaseMs + i.buildMs : NaN;
    const phases = await Promise.all(up.nodes.map((node) => sim.bootPhases({ name }, node.name, up.startedAtUs)));
    const col = (k: 'containerMs' | 'dockerdMs' | 'agentMs') => {
      const xs = phases.map((p) => p[k]);
      return `${s(median(xs))} / ${s(Math.max(...xs))}`;
    };
    // create = what `up` spent between the image check and the first `docker start` (network, containers).
    const createMs = totalMs - imgMs - up.bootMs;
    console.log(`${String(n).padStart(5)} | ${s(totalMs)}    | ${s(imgMs)} | ${s(createMs)} | ${col('containerMs')}      | ${col('dockerdMs')}      | ${col('agentMs')}      | ${s(up.bootMs)}`);
  } finally {
    await sim.down({ name });
  }
}
console.log('\n(seconds; container, dockerd, agent and health are counted from the first `docker start`:');
console.log(' systemd up, the node\'s docker.service active, piswarm.service active (READY=1), the host\'s first /health answer from the last node)');
