/**
 * A seeded fault campaign on a simulated cluster (issue 10, item 5):
 *
 *   node dist/bench/chaos.js [--minutes 30] [--seed N] [--nodes 5] [--ttl-ms 60000]
 *        [--grace-ms 15000] [--min-off-ms 5000] [--max-off-ms 2*ttl] [--long-share 0.3]
 *        [--journals DIR]
 *
 * One fault at a time, chosen by bench/chaos/plan.ts from the seed: a power
 * cut of any node or of the leader, a reboot, a clean stop, a cable pull, or
 * two nodes at once (never two managers). Each stays off for a random time,
 * about `--long-share` of them past the dead-node TTL, so the autopilot has
 * removed them when they come back. After each, the time until the cluster
 * is whole again (every node Ready in one swarm, one entry per hostname,
 * the managers at target and reachable). Sampled every few seconds
 * throughout: never two swarms, no node up and not Ready for long (stuck),
 * no agent restart; at the end no join token and no cluster key in any
 * journal. It prints the seed, each fault, each recovery and every
 * violation; it asserts nothing (exit 0 either way). With `--journals DIR`,
 * a fault that never heals leaves each node's journal (agent and engine)
 * and `docker info` in DIR before the cluster is removed.
 */
import fs from 'node:fs';
import path from 'node:path';
import { parseArgs } from 'node:util';
import * as sim from '../scripts/sim/cluster.js';
import { ensureImages } from '../scripts/sim/images.js';
import { FAST_AUTOPILOT, nodeLs } from '../test/integration/healing/swarm.js';
import { nextFault, seededRandom, type Fault, type NodeRole } from './chaos/plan.js';
import { notReadySince, violations, whole, type NodeSample } from './chaos/invariants.js';

const { values } = parseArgs({
  options: {
    minutes: { type: 'string', default: '30' },
    seed: { type: 'string' },
    nodes: { type: 'string', default: '5' },
    'ttl-ms': { type: 'string', default: '60000' },
    'grace-ms': { type: 'string', default: '15000' },
    'min-off-ms': { type: 'string', default: '5000' },
    'max-off-ms': { type: 'string' },
    'long-share': { type: 'string', default: '0.3' },
    'settle-timeout-ms': { type: 'string', default: '300000' },
    'stuck-after-ms': { type: 'string', default: '240000' },
    journals: { type: 'string' },
  },
});
const seed = values.seed !== undefined ? Number(values.seed) : Math.floor(Math.random() * 2 ** 31);
const n = Number(values.nodes);
const ttl = Number(values['ttl-ms']);
const settleTimeout = Number(values['settle-timeout-ms']);
const stuckAfter = Number(values['stuck-after-ms']);
const plan = { minOffMs: Number(values['min-off-ms']), maxOffMs: Number(values['max-off-ms'] ?? 2 * ttl), longShare: Number(values['long-share']), longOffMs: ttl };
const TARGET_MANAGERS = n >= 3 ? 3 : 1;
const random = seededRandom(seed);
const s = (ms: number) => (ms / 1000).toFixed(1);
const t0 = Date.now();
const at = () => Date.now() - t0;

console.log(`chaos: seed ${seed}, ${n} nodes, ${values.minutes} min, dead-node TTL ${s(ttl)} s, dead-manager grace ${s(Number(values['grace-ms']))} s, off ${s(plan.minOffMs)}-${s(plan.maxOffMs)} s (${plan.longShare * 100} % past the TTL)`);
await ensureImages({ root: sim.repoRoot(), log: (m) => console.error(`images: ${m}`) });
const ref = { name: `bench-chaos-${process.pid}` };
const env = {
  ...FAST_AUTOPILOT,
  PISWARM_FORMATION_EXPECT: String(n),
  PISWARM_AUTOPILOT_DEAD_NODE_TTL_MS: String(ttl),
  PISWARM_AUTOPILOT_DEAD_MANAGER_GRACE_MS: String(values['grace-ms']),
};
const state = new Map<string, { up: boolean }>();
const notReady = new Map<string, number>();
const found: Array<{ at: number; what: string }> = [];
const rows: string[] = [];

function note(list: string[]): void {
  for (const v of list) {
    if (found.some((f) => f.what === v)) continue;
    found.push({ at: at(), what: v });
    console.log(`  VIOLATION at ${s(at())} s: ${v}`);
  }
}

async function sample(names: readonly string[], withRestarts: boolean): Promise<Awaited<ReturnType<typeof nodeLs>>> {
  const ls = await nodeLs(ref, names.filter((x) => state.get(x)?.up));
  const nodes: NodeSample[] = [];
  const statuses = await sim.status(ref);
  for (const name of names) {
    const st = state.get(name)!;
    let swarmId: string | null = null;
    let agentRestarts: number | null = null;
    if (st.up) {
      const node = statuses.find((x) => x.name === name);
      const f = node ? await fetch(`${node.apiUrl}/v1/formation`, { signal: AbortSignal.timeout(2000) }).then((r) => r.json() as Promise<{ swarm: { id: string } | null }>).catch(() => null) : null;
      swarmId = f?.swarm?.id ?? null;
      if (withRestarts) {
        const r = await sim.exec(ref, name, ['systemctl', 'show', 'piswarm', '-p', 'NRestarts', '--value'], { timeoutMs: 5000 });
        agentRestarts = r.code === 0 ? Number(r.stdout.trim()) : null;
      }
    }
    const since = notReadySince(notReady, at(), name, st.up, ls);
    if (since === null) notReady.delete(name);
    else notReady.set(name, since);
    nodes.push({ name, up: st.up, notReadySince: since, swarmId, agentRestarts });
  }
  note(violations(at(), nodes, ls, stuckAfter));
  return ls;
}

/** Samples until the cluster is whole or `ms` pass; returns when it was whole, or null. */
async function untilWhole(names: readonly string[], ms: number): Promise<number | null> {
  const start = Date.now();
  for (let i = 0; Date.now() - start < ms; i++) {
    const ls = await sample(names, i % 5 === 0);
    if (whole(ls, names, TARGET_MANAGERS)) return Date.now();
    await new Promise((r) => setTimeout(r, 2000));
  }
  return null;
}

async function takeOut(f: Fault): Promise<void> {
  for (const tg of f.targets) {
    if (tg.method === 'kill') await sim.kill(ref, tg.name);
    else if (tg.method === 'stop') await sim.stop(ref, tg.name);
    else if (tg.method === 'disconnect') await sim.disconnect(ref, tg.name);
    else await sim.restart({ ...ref, wait: false }, tg.name);
    state.set(tg.name, { up: tg.method === 'restart' });
  }
}

async function bringBack(f: Fault): Promise<void> {
  await Promise.all(
    f.targets.map(async (tg) => {
      if (tg.method === 'kill' || tg.method === 'stop') await sim.start({ ...ref, wait: false }, tg.name);
      else if (tg.method === 'disconnect') await sim.connect(ref, tg.name);
      state.set(tg.name, { up: true });
    }),
  );
}

/** Each running node's journal and engine view, kept for a fault that never healed. */
async function keepJournals(dir: string, names: readonly string[]): Promise<void> {
  fs.mkdirSync(dir, { recursive: true });
  for (const name of names.filter((x) => state.get(x)?.up)) {
    const j = await sim.exec(ref, name, ['journalctl', '--no-pager', '-o', 'short-iso-precise', '-u', 'piswarm', '-u', 'docker'], { timeoutMs: 60_000 });
    const info = await sim.exec(ref, name, ['docker', 'info', '--format', '{{json .Swarm}}'], { timeoutMs: 10_000 });
    fs.writeFileSync(path.join(dir, `${name}.journal`), `${j.stdout}\n--- docker info .Swarm\n${info.stdout}${info.stderr}`);
  }
  console.log(`  journals of the running nodes in ${dir}`);
}

try {
  const up = await sim.up({ ...ref, nodes: n, skipImages: true, timeoutMs: 300_000, env });
  const names = up.nodes.map((x) => x.name);
  for (const x of names) state.set(x, { up: true });
  const formed = await untilWhole(names, settleTimeout);
  console.log(formed ? `formed and whole ${s(formed - t0)} s after start` : 'never whole after start');
  console.log(' #   at_s  fault             targets                                   off_s  back->whole_s  fault->whole_s');
  const deadline = t0 + Number(values.minutes) * 60_000;
  for (let i = 1; formed && Date.now() < deadline; i++) {
    const ls = await nodeLs(ref, names);
    const roles: NodeRole[] = names.map((name) => {
      const r = ls?.find((x) => x.hostname === name);
      return { name, manager: !!r && r.manager !== '', leader: r?.manager === 'Leader' };
    });
    const f = nextFault(random, roles, plan);
    const faultAt = Date.now();
    await takeOut(f);
    const offUntil = Date.now() + f.offMs;
    while (Date.now() < offUntil) {
      await sample(names, false);
      await new Promise((r) => setTimeout(r, Math.min(3000, Math.max(0, offUntil - Date.now()))));
    }
    const backAt = Date.now();
    await bringBack(f);
    const wholeAt = await untilWhole(names, settleTimeout);
    const targets = f.targets.map((tg) => `${tg.name.replace(`${ref.name}-`, 'pi-')}(${tg.method}${roles.find((r) => r.name === tg.name)?.manager ? ',mgr' : ''})`).join(' ');
    const row = `${String(i).padStart(2)}  ${s(faultAt - t0).padStart(5)}  ${f.kind.padEnd(16)}  ${targets.padEnd(40)}  ${s(f.offMs).padStart(5)}  ${(wholeAt ? s(wholeAt - backAt) : 'NEVER').padStart(13)}  ${(wholeAt ? s(wholeAt - faultAt) : 'NEVER').padStart(14)}`;
    rows.push(row);
    console.log(row);
    if (!wholeAt) {
      note([`fault ${i} (${f.kind}): not whole within ${s(settleTimeout)} s of bringing the nodes back`]);
      if (values.journals) await keepJournals(values.journals, names);
      break;
    }
  }
  const key = await sim.clusterKey(ref);
  for (const name of names) {
    const j = await sim.exec(ref, name, ['journalctl', '--no-pager', '-o', 'cat'], { timeoutMs: 60_000 });
    if (j.stdout.includes('SWMTKN')) note([`${name}: a join token in the journal`]);
    if (j.stdout.includes(key)) note([`${name}: the cluster key in the journal`]);
  }
} finally {
  console.log(`\nseed ${seed}: ${rows.length} faults in ${s(at())} s, ${found.length} violation(s)`);
  for (const v of found) console.log(`  at ${s(v.at)} s: ${v.what}`);
  await sim.down(ref);
}
