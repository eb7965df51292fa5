import { seededRandom } from '../clock.js';
import type { MemberEvent } from '../types.js';
import { SimCluster, type SimClusterOptions, type SimNode } from './cluster.js';

/**
 * The measurements the tests assert and bench/gossip-sim.ts prints, in one
 * place so both measure the same thing.
 */

export interface ExperimentOptions extends Omit<SimClusterOptions, 'onEvent'> {
  /** Simulated warm-up before the first measurement. */
  warmupMs?: number;
}

export interface CrashResult {
  /** Per crash: ms from the crash until every live member has it dead (Infinity if never within maxWaitMs). */
  allKnownMs: number[];
  /** Per (crash, live observer): ms until that observer had it dead. */
  perObserverMs: number[];
  /** Per update: ms until every other live member had the new meta. */
  disseminationMs: number[];
  /** Live members wrongly declared dead (by anyone) during the run. */
  falseDeaths: number;
  simulatedMs: number;
  wallMs: number;
  /** Sent per node per simulated second over the crash and update phases (busy: something to spread). */
  msgsPerNodePerSec: number;
  bytesPerNodePerSec: number;
  /** The same over idleMs of quiet before the first crash (probes and acks only, plus push/pull). */
  idleMsgsPerNodePerSec: number;
  idleBytesPerNodePerSec: number;
  events: number;
}

/**
 * Crashes `crashes` random nodes one after another (each waits until detected
 * by all, or maxWaitMs, then gapMs of quiet), then spreads `updates` meta
 * updates from random live nodes.
 */
export function runCrashAndUpdate(
  opts: ExperimentOptions & { crashes: number; updates: number; maxWaitMs?: number; gapMs?: number; idleMs?: number },
): CrashResult {
  const wall = performance.now();
  const deadSeen = new Map<string, Map<string, number>>();
  const metaSeen = new Map<string, Set<string>>();
  const crashed = new Set<string>();
  let falseDeaths = 0;
  const onEvent = (obs: SimNode, ev: MemberEvent, at: number) => {
    const id = ev.member.id;
    if (ev.type === 'dead') {
      if (!crashed.has(id)) falseDeaths++;
      let m = deadSeen.get(id);
      if (!m) deadSeen.set(id, (m = new Map()));
      if (!m.has(obs.id)) m.set(obs.id, at);
    }
    if ((ev.type === 'updated' || ev.type === 'joined') && typeof ev.member.meta.v === 'number') {
      const k = `${id}#${ev.member.meta.v}`;
      let s = metaSeen.get(k);
      if (!s) metaSeen.set(k, (s = new Set()));
      s.add(obs.id);
    }
  };
  const cluster = new SimCluster({ ...opts, onEvent });
  const pick = seededRandom(opts.seed ^ 0xc0ffee);
  const maxWait = opts.maxWaitMs ?? 60_000;
  const gap = opts.gapMs ?? 2_000;
  cluster.runFor(opts.warmupMs ?? 5_000);
  const idleStart = sumStats(cluster);
  const idleMs = opts.idleMs ?? 20_000;
  cluster.runFor(idleMs);
  const startSent = sumStats(cluster);
  const t0 = cluster.now;

  const allKnownMs: number[] = [];
  const perObserverMs: number[] = [];
  for (let c = 0; c < opts.crashes; c++) {
    const live = cluster.live();
    if (live.length < 3) break;
    const victim = live[Math.floor(pick() * live.length)]!;
    crashed.add(victim.id);
    const at = cluster.now;
    cluster.crash(victim.index);
    const observers = () => cluster.live().length;
    const done = cluster.runUntil(() => (deadSeen.get(victim.id)?.size ?? 0) >= observers(), maxWait, 20);
    allKnownMs.push(done === null ? Infinity : done - at);
    const seen = deadSeen.get(victim.id) ?? new Map<string, number>();
    for (const nd of cluster.live()) {
      const t = seen.get(nd.id);
      perObserverMs.push(t === undefined ? Infinity : t - at);
    }
    cluster.runFor(gap);
  }

  const disseminationMs: number[] = [];
  for (let u = 0; u < opts.updates; u++) {
    const live = cluster.live();
    const src = live[Math.floor(pick() * live.length)]!;
    const v = u + 1;
    const key = `${src.id}#${v}`;
    const at = cluster.now;
    src.membership.updateMeta({ role: 'worker', v });
    const done = cluster.runUntil(() => (metaSeen.get(key)?.size ?? 0) >= cluster.live().length - 1, 30_000, 10);
    disseminationMs.push(done === null ? Infinity : done - at);
    cluster.runFor(gap);
  }

  const end = sumStats(cluster);
  const seconds = (cluster.now - t0) / 1000;
  const liveN = cluster.live().length;
  return {
    allKnownMs,
    perObserverMs,
    disseminationMs,
    falseDeaths,
    simulatedMs: cluster.now,
    wallMs: performance.now() - wall,
    msgsPerNodePerSec: (end.msgs - startSent.msgs) / liveN / seconds,
    bytesPerNodePerSec: (end.bytes - startSent.bytes) / liveN / seconds,
    idleMsgsPerNodePerSec: (startSent.msgs - idleStart.msgs) / opts.n / (idleMs / 1000),
    idleBytesPerNodePerSec: (startSent.bytes - idleStart.bytes) / opts.n / (idleMs / 1000),
    events: cluster.clock.executed,
  };
}

export interface SoakResult {
  falseDeaths: number;
  suspicions: number;
  refutations: number;
  simulatedMs: number;
  wallMs: number;
  healthScoreMax: number;
}

/** No crashes, lossy network, long run: every 'dead' event is a false positive. */
export function runSoak(opts: ExperimentOptions & { durationMs: number }): SoakResult {
  const wall = performance.now();
  let falseDeaths = 0;
  let suspicions = 0;
  const cluster = new SimCluster({
    ...opts,
    onEvent: (_obs, ev) => {
      if (ev.type === 'dead') falseDeaths++;
      if (ev.type === 'suspect') suspicions++;
    },
  });
  let healthScoreMax = 0;
  const step = 10_000;
  for (let t = 0; t < opts.durationMs; t += step) {
    cluster.runFor(step);
    for (const nd of cluster.nodes) healthScoreMax = Math.max(healthScoreMax, nd.membership.stats().healthScore);
  }
  const refutations = cluster.nodes.reduce((a, nd) => a + nd.membership.stats().refutations, 0);
  return { falseDeaths, suspicions, refutations, simulatedMs: cluster.now, wallMs: performance.now() - wall, healthScoreMax };
}

function sumStats(c: SimCluster): { msgs: number; bytes: number } {
  let msgs = 0;
  let bytes = 0;
  for (const nd of c.nodes) {
    const s = nd.membership.stats();
    msgs += s.messagesSent;
    bytes += s.bytesSent;
  }
  return { msgs, bytes };
}
