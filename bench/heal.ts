/**
 * Time from a Raft leader's power cut to three reachable managers again, on
 * simulated Pis (scripts/sim) running the autopilot:
 *
 *   node dist/bench/heal.js [--nodes 5] [--grace-ms 15000] [--rounds 1] [--os trixie,bookworm] [--fast] [--journals DIR]
 *
 * The autopilot runs at its default settings except the grace (issue 11's
 * goal is stated so: 30 s stabilisation, a tick every 5 s); --fast uses the
 * integration tests' short timers (test/integration/healing/swarm.ts) instead.
 * Each OS of --os in turn (default both: Docker 26.1 and 20.10 side by side).
 * leader   kill -> another node reports Leader in `docker node ls`
 * healed   kill -> 3 managers reachable and the dead one no longer a manager
 * The heal time is bounded below by autopilot.deadManagerGraceMs (printed
 * beside it): the figure that matters is healed - grace.
 * With --journals DIR each round keeps the survivors' piswarm and docker
 * journals there and prints, in seconds from the cut, when the new leader's
 * engine was elected and its agent took over, demoted and promoted.
 */
import fs from 'node:fs';
import path from 'node:path';
import { parseArgs } from 'node:util';
import * as sim from '../scripts/sim/cluster.js';
import { ensureImages, simOs, SIM_OSES } from '../scripts/sim/images.js';
import { FAST_AUTOPILOT, managers, nodeLs, reachableManagers, until } from '../test/integration/healing/swarm.js';

const { values } = parseArgs({
  options: {
    nodes: { type: 'string', default: '5' },
    'grace-ms': { type: 'string', default: '15000' },
    rounds: { type: 'string', default: '1' },
    os: { type: 'string', default: SIM_OSES.join(',') },
    fast: { type: 'boolean', default: false },
    journals: { type: 'string' },
  },
});
const n = Number(values.nodes);
const grace = Number(values['grace-ms']);
const s = (ms: number) => (ms / 1000).toFixed(1);

/** What the journals say happened, in seconds from the cut (wall clock `cutAt`). */
function timeline(journal: string, cutAt: number): string {
  const marks: Array<[RegExp, string]> = [
    [/became leader at term/, 'elected'],
    [/autopilot decides on this node/, 'takeover'],
    [/"step":"demote"/, 'demote'],
    [/"step":"promote"/, 'promote'],
  ];
  const out: string[] = [];
  for (const line of journal.split('\n')) {
    const at = Date.parse(line.slice(0, line.indexOf(' ')));
    if (!Number.isFinite(at) || at < cutAt) continue;
    const m = marks.find(([re]) => re.test(line));
    if (m) out.push(`${m[1]} ${((at - cutAt) / 1000).toFixed(1)}`);
  }
  return out.join(', ');
}

async function keepJournals(dir: string, ref: sim.ClusterRef, names: readonly string[], round: string, cutAt: number): Promise<void> {
  fs.mkdirSync(dir, { recursive: true });
  for (const name of names) {
    const j = await sim.exec(ref, name, ['journalctl', '--no-pager', '--utc', '-o', 'short-iso-precise', '-u', 'piswarm', '-u', 'docker'], { timeoutMs: 60_000 });
    fs.writeFileSync(path.join(dir, `${round}-${name}.journal`), j.stdout);
    const tl = timeline(j.stdout, cutAt);
    if (tl) console.log(`  ${name}: ${tl}`);
  }
}

const oses = values.os.split(',').map((o) => simOs(o));
for (const os of oses) await ensureImages({ root: sim.repoRoot(), log: (m) => console.error(`images: ${m}`), os });

console.log(`autopilot settings: ${values.fast ? 'the tests\' short timers (--fast)' : 'defaults'}, grace ${s(grace)} s`);
console.log('os        engine          nodes  round  grace_s  leader_s  healed_s  healed-grace_s');
for (const os of oses) for (let round = 1; round <= Number(values.rounds); round++) {
  const ref = { name: `bench-heal-${os}-${n}-${round}-${process.pid}` };
  try {
    const env = { ...(values.fast ? FAST_AUTOPILOT : {}), PISWARM_AUTOPILOT_DEAD_MANAGER_GRACE_MS: String(grace), PISWARM_FORMATION_EXPECT: String(n) };
    const up = await sim.up({ ...ref, nodes: n, skipImages: true, timeoutMs: 300_000, env, os });
    const names = up.nodes.map((x) => x.name);
    const ls = await until('the swarm to settle with 3 reachable managers', async () => {
      const l = await nodeLs(ref, names);
      return l && l.length === n && l.every((x) => x.status === 'Ready') && reachableManagers(l) === 3 && l;
    }, 300_000);
    const leader = ls.find((x) => x.manager === 'Leader')!;
    const alive = names.filter((x) => x !== leader.hostname);
    const t0 = performance.now();
    const cutAt = Date.now();
    await sim.kill(ref, leader.hostname);
    await until('a new leader', async () => (await nodeLs(ref, alive))?.some((x) => x.manager === 'Leader'), 120_000, 250);
    const leaderMs = performance.now() - t0;
    await until('3 reachable managers', async () => {
      const l = await nodeLs(ref, alive);
      return l && reachableManagers(l) === 3 && !managers(l).some((x) => x.id === leader.id);
    }, 300_000, 250);
    const healedMs = performance.now() - t0;
    console.log(`${os.padEnd(8)}  ${(up.nodes[0]!.engine ?? '?').padEnd(14)}  ${String(n).padStart(5)}  ${String(round).padStart(5)}  ${s(grace).padStart(7)}  ${s(leaderMs).padStart(8)}  ${s(healedMs).padStart(8)}  ${s(healedMs - grace).padStart(14)}`);
    if (values.journals) await keepJournals(values.journals, ref, alive, `${os}-${round}`, cutAt);
  } finally {
    await sim.down(ref);
  }
}
