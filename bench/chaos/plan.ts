/**
 * The fault campaign's choices, pure and seeded: the same seed and the same
 * cluster give the same faults, so a violation can be replayed.
 */

export { seededRandom } from '../../agent/membership/clock.js';

export const FAULT_KINDS = ['power-cut', 'leader-power-cut', 'reboot', 'clean-stop', 'cable-pull', 'two-at-once'] as const;
export type FaultKind = (typeof FAULT_KINDS)[number];

/** How a node is taken out and brought back. */
export type Method = 'kill' | 'stop' | 'restart' | 'disconnect';

export interface NodeRole {
  name: string;
  manager: boolean;
  leader: boolean;
}

export interface Fault {
  kind: FaultKind;
  targets: Array<{ name: string; method: Method }>;
  /** How long the targets stay off (0 for a reboot, which comes back by itself). */
  offMs: number;
}

export interface PlanOptions {
  minOffMs: number;
  maxOffMs: number;
  /** Off times are drawn so that about this share exceeds `longOffMs` (the TTL under test). */
  longShare: number;
  longOffMs: number;
}

const pick = <T>(r: () => number, xs: readonly T[]): T => xs[Math.floor(r() * xs.length)]!;

const METHOD: Record<Exclude<FaultKind, 'two-at-once'>, Method> = {
  'power-cut': 'kill',
  'leader-power-cut': 'kill',
  reboot: 'restart',
  'clean-stop': 'stop',
  'cable-pull': 'disconnect',
};

/**
 * The next fault for a cluster whose roles are `nodes`. Never a majority of
 * the managers at once: two at once takes at most one manager.
 */
export function nextFault(r: () => number, nodes: readonly NodeRole[], o: PlanOptions): Fault {
  const kind = pick(r, FAULT_KINDS);
  const offMs = r() < o.longShare ? o.longOffMs + Math.floor(r() * Math.max(1, o.maxOffMs - o.longOffMs)) : o.minOffMs + Math.floor(r() * Math.max(1, Math.min(o.maxOffMs, o.longOffMs) - o.minOffMs));
  if (kind === 'leader-power-cut') {
    const leader = nodes.find((n) => n.leader) ?? pick(r, nodes);
    return { kind, targets: [{ name: leader.name, method: 'kill' }], offMs };
  }
  if (kind === 'two-at-once') {
    const first = pick(r, nodes);
    // One manager at most: a second manager out of three would lose quorum.
    const rest = nodes.filter((n) => n.name !== first.name && !(first.manager && n.manager));
    const targets = rest.length > 0 ? [first, pick(r, rest)] : [first];
    const methods: Method[] = ['kill', 'stop', 'disconnect'];
    return { kind, targets: targets.map((n) => ({ name: n.name, method: pick(r, methods) })), offMs };
  }
  const target = pick(r, nodes);
  return { kind, targets: [{ name: target.name, method: METHOD[kind] }], offMs: kind === 'reboot' ? 0 : offMs };
}
