/**
 * Time from power-on to every node Ready in `docker node ls`, on simulated
 * Pis (scripts/sim), split into phases:
 *
 *   node dist/bench/formation.js [--n 3,5,8] [--hold-off-ms MS] [--rounds 1] [--os trixie,bookworm]
 *
 * Each OS of --os in turn (default both: Docker 26.1 and 20.10 side by side).
 * engine   `docker start` -> the last node's docker.service active (systemd's own timestamps)
 * agent    -> the last agent READY=1
 * discover -> the election could start: the last node entered `candidate` (peer set big enough)
 * elect    -> the winner entered `initialising` (includes formation.holdOffMs)
 * init     -> "created the swarm"
 * joins    -> the last "joined the swarm"
 * ready    -> all N Ready in `docker node ls` (polled from the host every 250 ms)
 * The goal is measured as "ready - last engine ready" (target < 10 s for N = 5).
 */
import { parseArgs } from 'node:util';
import * as sim from '../scripts/sim/cluster.js';
import { ensureImages, simOs, SIM_OSES, type SimOs } from '../scripts/sim/images.js';

const { values } = parseArgs({
  options: {
    n: { type: 'string', default: '3,5,8' },
    'hold-off-ms': { type: 'string', default: '' }, // empty: the shipped default for the expect used
    rounds: { type: 'string', default: '1' },
    os: { type: 'string', default: SIM_OSES.join(',') },
  },
});
const sizes = values.n.split(',').map(Number);
const holdOff = values['hold-off-ms'];
const rounds = Number(values.rounds);
const monoUs = () => Number(process.hrtime.bigint() / 1000n);
const s = (ms: number) => (Number.isFinite(ms) ? (ms / 1000).toFixed(2) : '-');

interface Line { time?: string; msg?: string; to?: string }

function journalEvents(text: string): Line[] {
  const out: Line[] = [];
  for (const raw of text.split('\n')) {
    const i = raw.indexOf('{"level"');
    if (i < 0) continue;
    try {
      out.push(JSON.parse(raw.slice(i)) as Line);
    } catch {
      // a line cut by journald's line limit: not one of ours to time
    }
  }
  return out;
}

async function readyCount(ref: sim.ClusterRef, names: string[]): Promise<number> {
  for (const name of names) {
    const r = await sim.exec(ref, name, ['docker', 'node', 'ls', '--format', '{{.Status}}'], { timeoutMs: 5000 });
    if (r.code === 0) return r.stdout.split('\n').filter((l) => l.trim() === 'Ready').length;
  }
  return 0;
}

async function one(os: SimOs, n: number, round: number): Promise<string[]> {
  const ref = { name: `bench-form-${os}-${n}-${round}-${process.pid}` };
  try {
    const up = sim.up({ ...ref, os, nodes: n, skipImages: true, timeoutMs: 300_000, env: { PISWARM_FORMATION_EXPECT: String(n), ...(holdOff ? { PISWARM_FORMATION_HOLD_OFF_MS: holdOff } : {}) } });
    // Poll for Ready while `up` still waits for the agents' /health.
    let readyAtUs = NaN;
    let names: string[] = [];
    const poll = (async () => {
      for (let i = 0; i < 2400 && !Number.isFinite(readyAtUs); i++) {
        if (names.length < n) names = (await sim.status(ref).catch(() => [])).map((x) => x.name);
        if (names.length === n && (await readyCount(ref, names)) === n) readyAtUs = monoUs();
        else await new Promise((r) => setTimeout(r, 250));
      }
    })();
    const res = await up;
    await poll;
    const start = res.startedAtUs;
    const wallStart = Date.now() - (monoUs() - start) / 1000;
    const phases = await Promise.all(res.nodes.map((x) => sim.bootPhases(ref, x.name, start)));
    const engine = Math.max(...phases.map((p) => p.dockerdMs));
    const agent = Math.max(...phases.map((p) => p.agentMs));
    const events = (await Promise.all(res.nodes.map((x) => sim.logs(ref, x.name)))).map(journalEvents);
    const at = (pred: (l: Line) => boolean, agg: (xs: number[]) => number) => {
      const xs = events.flatMap((ev) => ev.filter(pred).slice(0, 1)).map((l) => Date.parse(l.time ?? '') - wallStart).filter(Number.isFinite);
      return xs.length ? agg(xs) : NaN;
    };
    const discover = at((l) => l.msg === 'formation phase changed' && l.to === 'candidate', (xs) => Math.max(...xs));
    const elect = at((l) => l.msg === 'formation phase changed' && l.to === 'initialising', (xs) => Math.min(...xs));
    const init = at((l) => l.msg === 'created the swarm', (xs) => Math.min(...xs));
    const joins = at((l) => l.msg === 'joined the swarm', (xs) => Math.max(...xs));
    const inits = events.flat().filter((l) => l.msg === 'created the swarm').length;
    const ready = (readyAtUs - start) / 1000;
    return [os, res.nodes[0]!.engine ?? '?', String(n), String(round), s(engine), s(agent), s(discover), s(elect), s(init), s(joins), s(ready), s(ready - engine), String(inits)];
  } finally {
    await sim.down(ref);
  }
}

console.log(`formation bench: hold-off ${holdOff ? `${holdOff} ms` : 'default (2000 ms for expect > 1)'}, expect = N, times in seconds from \`docker start\` of all nodes, node ${process.version}`);
const oses = values.os.split(',').map((o) => simOs(o));
for (const os of oses) await ensureImages({ root: sim.repoRoot(), log: (m) => console.log(`# ${m}`), os });
const head = ['os', 'engine', 'N', 'round', 'engine', 'agent', 'discover', 'elect', 'init', 'joins', 'ready', 'ready-eng', 'inits'];
const cols = (cells: string[]) => cells.map((c, i) => (i === 1 ? c.padStart(14) : c.padStart(9))).join(' ');
console.log(cols(head));
for (const os of oses) for (const n of sizes) for (let r = 1; r <= rounds; r++) console.log(cols(await one(os, n, r)));
