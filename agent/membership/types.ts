import type { Meta } from '../../shared/wire/gossip.js';

export type { Meta };

export type MemberState = 'alive' | 'suspect' | 'dead' | 'left';

/** Where a peer's gossip port is. */
export interface PeerAddress {
  readonly addr: string;
  readonly port: number;
}

/** A datagram transport. `send` never throws (errors go to the adapter's error callback). */
export interface Transport {
  send(to: PeerAddress, data: Uint8Array): void;
  /** One handler; a second call replaces the first. */
  onMessage(handler: (data: Uint8Array, from: PeerAddress) => void): void;
}

/** The agent's one clock (agent/lifecycle/clock.ts): membership's is monotonic; the simulator supplies a virtual one. */
export type { Clock, TimerHandle } from '../lifecycle/clock.js';

/** Uniform in [0, 1); seeded in simulations so runs repeat exactly. */
export type Random = () => number;

/** The subset of pino's Logger the membership uses. */
export interface MembershipLog {
  debug(obj: object, msg: string): void;
  info(obj: object, msg: string): void;
  warn(obj: object, msg: string): void;
  error(obj: object, msg: string): void;
}

export interface Member {
  readonly id: string;
  readonly addr: string;
  readonly port: number;
  readonly incarnation: number;
  readonly state: MemberState;
  readonly meta: Meta;
  /** Clock time (ms) of the last state change as seen here. */
  readonly stateChangedAt: number;
  readonly self: boolean;
}

export type MemberEventType = 'joined' | 'updated' | 'suspect' | 'alive' | 'dead' | 'left';

/**
 * joined: a new member, or one that was dead/left is alive again.
 * updated: an alive member changed its meta or address.
 * suspect: a member failed a probe; alive: a suspect member refuted.
 * dead: the suspicion timed out; left: a member said goodbye.
 */
export interface MemberEvent {
  readonly type: MemberEventType;
  readonly member: Member;
  readonly previous: MemberState | null;
}

export interface MembershipOptions {
  probeIntervalMs: number;
  probeTimeoutMs: number;
  indirectChecks: number;
  suspicionMult: number;
  suspicionMaxTimeoutMult: number;
  gossipNodes: number;
  gossipIntervalMs: number;
  retransmitMult: number;
  /** Full-state exchange with one random peer; scaled up above 32 members like memberlist's pushPullScale. */
  pushPullIntervalMs: number;
  /** Keep gossiping to members this long after they died, so a wrongly-declared node learns it and refutes. */
  gossipToTheDeadMs: number;
  /** Dead/left members stay listed this long (a restarted node learns its old state and refutes it). */
  deadRetainMs: number;
  /** Lifeguard local health: timeouts are scaled by (score + 1), score in [0, max - 1]. */
  awarenessMaxMultiplier: number;
  joinTimeoutMs: number;
  leaveTimeoutMs: number;
}

export interface MembershipStats {
  probesSent: number;
  probesFailed: number;
  acksReceived: number;
  acksSent: number;
  nacksSent: number;
  nacksReceived: number;
  indirectProbesSent: number;
  indirectProbesRelayed: number;
  suspicionsRaised: number;
  suspicionsReceived: number;
  refutations: number;
  deathsDeclared: number;
  gossipMessagesSent: number;
  pushPulls: number;
  reconnectAttempts: number;
  messagesSent: number;
  bytesSent: number;
  messagesReceived: number;
  bytesReceived: number;
  /** Datagrams refused, by reason. */
  dropped: { oversize: number; truncated: number; version: number; wrongCluster: number; auth: number; malformed: number; misdirected: number; unsendable: number; rateLimited: number };
  /** Lifeguard local health score, 0 = healthy. */
  healthScore: number;
  incarnation: number;
  members: { alive: number; suspect: number; dead: number; left: number };
  broadcastQueue: number;
  rtt: { count: number; sumMs: number; recentMs: number[] };
}
