/**
 * Power-on to joined for a flashed card, on simulated Pis (scripts/sim): a
 * one-node cluster forms its swarm, then a node made from the firstboot image
 * (no engine, no node, no agent) gets a card written by `piswarm flash` and is
 * powered on. Each run is a fresh cluster. Phases are seconds after
 * `docker start`, from systemd's CLOCK_MONOTONIC timestamps inside the node:
 *
 *   systemd   PID 1 running
 *   config    cloud-config.service done (NoCloud seed found, hostname, user pi,
 *             SSH keys, write_files, ntp, timezone)
 *   docker    docker.service active: cloud-final's apt-get update + install
 *             docker.io iw, from the Debian mirror the host uses
 *   agent     piswarm.service active: the first-boot script installed node and
 *             the agent from the card, and the agent sent READY=1
 *   script    how long the first-boot script ran (a duration, whole seconds;
 *             it ends just after agent: apt's remaining packages came before it)
 *   ready     the manager's `docker node ls` shows the node Ready (polled every 250 ms)
 *
 *   npm run build && node dist/bench/firstboot.js [--runs 3]
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import * as sim from '../scripts/sim/cluster.js';
import { ensureFirstbootImage } from '../scripts/sim/images.js';
import { bootFlashed, createClusterFile, type FirstbootPhases } from '../test/integration/flash/firstboot.js';
import { nodeLs } from '../test/integration/healing/swarm.js';

const { values } = parseArgs({ options: { runs: { type: 'string', default: '3' } } });
const runs = Number(values.runs);
const s = (ms: number) => (Number.isFinite(ms) ? (ms / 1000).toFixed(1) : 'n/a').padStart(7);
const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor((xs.length - 1) / 2)]!;
const cols: [string, keyof FirstbootPhases][] = [['systemd', 'systemdMs'], ['config', 'cloudConfigMs'], ['docker', 'dockerMs'], ['agent', 'agentMs'], ['script', 'scriptMs'], ['ready', 'readyMs']];

await ensureFirstbootImage({ root: sim.repoRoot(), log: (m) => console.error(`images: ${m}`) });
console.log(`  run ${cols.map(([c]) => c.padStart(7)).join(' ')}   (seconds after power-on)`);
const all: FirstbootPhases[] = [];
for (let run = 1; run <= runs; run++) {
  const ref = { name: `bench-fb-${run}-${process.pid}` };
  const dir = mkdtempSync(join(tmpdir(), 'piswarm-bench-fb-'));
  try {
    const { path: clusterFile, cluster } = await createClusterFile(dir, ref.name, 2);
    const up = await sim.up({ ...ref, nodes: 1, skipImages: true, clusterKey: cluster.key, timeoutMs: 300_000 });
    const manager = up.nodes[0]!.name;
    await sim.waitFor(async () => (await nodeLs(ref, [manager]))?.length === 1, { timeoutMs: 60_000, what: `${manager} to create its swarm` });
    const { phases } = await bootFlashed(ref, { dir, clusterFile, manager, timeoutMs: 300_000 });
    all.push(phases);
    console.log(`${String(run).padStart(5)} ${cols.map(([, k]) => s(phases[k])).join(' ')}`);
  } finally {
    await sim.down(ref);
    rmSync(dir, { recursive: true, force: true });
  }
}
console.log(`  med ${cols.map(([, k]) => s(median(all.map((p) => p[k])))).join(' ')}`);
console.log(`  max ${cols.map(([, k]) => s(Math.max(...all.map((p) => p[k])))).join(' ')}`);
