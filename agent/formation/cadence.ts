import { hostOf } from '../net/address.js';
import type { FormationState } from './state.js';

/**
 * How often formation asks the engine. While anything moves it reads a fresh
 * `docker info` every tick (1 s); once this node has been a member with
 * nothing changing for QUIET_AFTER_MS, it takes the engine monitor's own
 * sample (metrics.intervalMs, 5 s), which is what costs an idle Pi a
 * `docker info` a second (about 1.2 ms of the agent's CPU each, and dockerd's).
 *
 * "Nothing moves": a member or manager, not pinned, not removed, no asker
 * missed, every manager the engine names is this node or a confirmed peer
 * that answered its last hello as a manager, and the engine's swarm and the
 * peers' answers unchanged. A manager lost (power cut, cable) stops
 * answering hellos within confirmIntervalMs: from then on, and until the
 * engine no longer names it, every tick reads the engine again, so healing
 * is not slowed.
 */
export const QUIET_AFTER_MS = 30_000;

export interface Quiet {
  /** What the last tick saw, to tell a change. */
  key: string;
  /** Since when nothing moved (null: something is moving now). */
  since: number | null;
}

/** Why this node is not settled, or null when it is (pure). */
export function unsettled(s: FormationState): string | null {
  if (s.phase !== 'member' && s.phase !== 'manager') return `phase ${s.phase}`;
  if (!s.selfSwarm || !s.info) return 'not in a swarm';
  if (s.pinnedSince !== null) return 'pinned to a lost manager';
  if (s.removedSince !== null) return 'removed from the swarm';
  if (s.missedAt.size > 0) return 'a node asked and is not listed';
  const selfHost = s.address?.address ?? null;
  const answering = new Set([...s.peers.values()].filter((p) => p.lastError === null && p.state?.swarm?.role === 'manager').map((p) => p.addr));
  const lost = s.info.swarm.remoteManagers.find((m) => hostOf(m.addr) !== selfHost && !answering.has(hostOf(m.addr)));
  return lost ? `manager ${lost.addr} does not answer as one` : null;
}

/** What a change looks like: the engine's swarm and each peer's answer. */
export function quietKey(s: FormationState): string {
  const sw = s.info?.swarm;
  const engine = sw ? [sw.state, sw.nodeId, sw.isManager, sw.managers, sw.nodes, sw.remoteManagers.map((m) => m.addr).sort().join(',')].join('|') : 'none';
  const peers = [...s.peers.values()].map((p) => `${p.nodeId}:${p.state?.phase ?? '-'}:${p.state?.swarm?.id ?? '-'}:${p.state?.swarm?.role ?? '-'}:${p.lastError ?? 'ok'}`).sort().join(',');
  return `${engine}#${peers}`;
}

/** The next Quiet after a tick at `now` (pure). */
export function nextQuiet(prev: Quiet, s: FormationState, now: number): Quiet {
  const key = quietKey(s);
  if (unsettled(s) !== null) return { key, since: null };
  return { key, since: key === prev.key && prev.since !== null ? prev.since : now };
}

/** The oldest engine sample formation takes as it is (pure). */
export function engineMaxAgeMs(q: Quiet, now: number, tickMs: number, settledMaxAgeMs: number): number {
  // A tick past the monitor's period, so the monitor's own timer takes the sample.
  return q.since !== null && now - q.since >= QUIET_AFTER_MS ? settledMaxAgeMs + tickMs : tickMs / 2;
}
