import type { FormationPhase, FormationStatus, HelloResponse, PeerSwarm, TimelineEntry } from '../../shared/wire/peer.js';
import type { EngineInfo } from '../docker/engine.js';
import type { AddressChoice } from '../net/address.js';
import type { Candidate } from '../discovery/discovery.js';
import type { Decision } from './rule.js';
import type { PersistedFormation } from './store.js';
import type { FormationContext } from './types.js';
import type { Quiet } from './cadence.js';

/** A peer confirmed over authenticated HTTP (its signed hello answer). */
export interface PeerRecord {
  nodeId: string;
  name: string;
  addr: string;
  port: number;
  source: 'mdns' | 'seed' | 'inbound';
  state: HelloResponse | null;
  confirmedAt: number | null;
  /** When this node first saw the peer in its current phase (our clock, not the peer's). */
  phaseSince: number;
  lastError: string | null;
}

/** Hellos to one candidate: when last tried, how many failed in a row. */
export interface Attempt {
  lastTry: number;
  failures: number;
}

/** What the metrics count (telemetry reads them; the parts bump them). */
export interface FormationCounters {
  elections: number;
  inits: number;
  initFailures: number;
  joins: number;
  joinFailures: number;
  leaves: number;
  rejoins: Map<string, number>;
  grantsIssued: number;
  rotations: number;
  splits: number;
  grantsRefused: Map<string, number>;
  authFailures: Map<string, number>;
  helloFailures: number;
  addressLosses: number;
}

/** Everything formation changes as it runs, in one record. */
export interface FormationState {
  persisted: PersistedFormation;
  phase: FormationPhase;
  reason: string;
  phaseSince: number;
  timeline: TimelineEntry[];
  /** Confirmed peers by node id. */
  peers: Map<string, PeerRecord>;
  attempts: Map<string, Attempt>;
  /** Candidate keys that turned out to be this node. */
  selfKeys: Set<string>;
  /** Callers that proved the key, by node id: hints until our own hello to them is answered. */
  inbound: Map<string, Candidate>;
  /** Seed keys (`seed:host:port`) that answered, and the node each turned out to be. */
  resolvedSeeds: Map<string, string>;
  peerSetKey: string;
  stableSince: number;
  address: AddressChoice | null;
  /** Set while `address` is no longer this host's (a DHCP change): what it has now, why, since when. */
  drift: { now: AddressChoice | null; why: string; since: number } | null;
  addressCheckedAt: number;
  /** The engine's last `docker info`, null while it does not answer. */
  info: EngineInfo | null;
  engineError: string | null;
  selfSwarm: PeerSwarm | null;
  createdAtById: Map<string, string>;
  lastDecision: Decision | null;
  /** The last election result, kept after the swarm exists (see FormationStatus.election). */
  lastElection: FormationStatus['election'];
  joinAttempt: number;
  nextJoinAt: number;
  /** swarm init failures in this node's current turn, and when it may try again. */
  initFailures: number;
  nextInitAt: number;
  /** When a manager's node list last showed a node it did not list before (a join). */
  lastJoinSeenAt: number | null;
  /** Whether this node is the Raft leader, from the last node list. */
  selfLeader: boolean;
  pinnedSince: number | null;
  removedSince: number | null;
  /** The swarm node id the engine last named (an engine in error names none). */
  engineNodeId: string | null;
  /** In this spell of engine error, a manager refused this node as removed from the swarm (the engine alternates between that refusal and others). */
  removedRefusal: boolean;
  listedIds: { at: number; ids: Set<string> } | null;
  /** Swarm node ids that asked and were not in the node list, and when first missed. */
  missedAt: Map<string, number>;
  /** Whether anything moved lately (cadence.ts): a settled member reads the engine less often. */
  quiet: Quiet;
  counters: FormationCounters;
}

const TIMELINE_MAX = 64;

export function createFormationState(persisted: PersistedFormation, phase: FormationPhase, reason: string, now: number): FormationState {
  return {
    persisted,
    phase,
    reason,
    phaseSince: now,
    timeline: [],
    peers: new Map(),
    attempts: new Map(),
    selfKeys: new Set(),
    inbound: new Map(),
    resolvedSeeds: new Map(),
    peerSetKey: '',
    stableSince: now,
    address: null,
    drift: null,
    addressCheckedAt: 0,
    info: null,
    engineError: null,
    selfSwarm: null,
    createdAtById: new Map(),
    lastDecision: null,
    lastElection: persisted.election ?? null,
    joinAttempt: 0,
    nextJoinAt: 0,
    initFailures: 0,
    nextInitAt: 0,
    lastJoinSeenAt: null,
    selfLeader: false,
    pinnedSince: null,
    removedSince: null,
    engineNodeId: persisted.joined?.nodeId ?? null,
    removedRefusal: false,
    listedIds: null,
    missedAt: new Map(),
    quiet: { key: '', since: null },
    counters: {
      elections: 0, inits: 0, initFailures: 0, joins: 0, joinFailures: 0, leaves: 0, rejoins: new Map(),
      grantsIssued: 0, rotations: 0, splits: 0, grantsRefused: new Map(), authFailures: new Map(), helloFailures: 0, addressLosses: 0,
    },
  };
}

export const bump = (m: Map<string, number>, k: string): void => {
  m.set(k, (m.get(k) ?? 0) + 1);
};

export function setPhase(ctx: FormationContext, to: FormationPhase, why: string): void {
  const s = ctx.s;
  if (to === s.phase && why === s.reason) return;
  const from = s.phase;
  s.reason = why;
  if (to === s.phase) return;
  s.phase = to;
  s.phaseSince = ctx.clock.now();
  if (to === 'candidate') s.counters.elections++;
  s.timeline.push({ at: new Date(ctx.clock.now()).toISOString(), from, to, reason: why });
  if (s.timeline.length > TIMELINE_MAX) s.timeline.shift();
  ctx.log.info({ from, to, reason: why }, 'formation phase changed');
}

/** Records a swarm of this cluster as seen (and, `joined`, as this node's), persisting only a change. */
export function rememberSwarm(ctx: FormationContext, id: string, createdAt: string | null, joined: boolean, joinAddr: string | null = null): void {
  const p = ctx.s.persisted;
  let changed = false;
  const seen = p.seenSwarms.find((s) => s.id === id);
  if (!seen) {
    p.seenSwarms.push({ id, createdAt, firstSeen: new Date(ctx.clock.now()).toISOString() });
    p.seenSwarms = p.seenSwarms.slice(-16);
    changed = true;
  } else if (!seen.createdAt && createdAt) {
    seen.createdAt = createdAt;
    changed = true;
  }
  if (joined && (p.joined?.id !== id || (joinAddr !== null && p.joined.joinAddr !== joinAddr))) {
    p.joined = { id, createdAt: createdAt ?? (p.joined?.id === id ? p.joined.createdAt : null), joinAddr, nodeId: null };
    changed = true;
  }
  if (changed) ctx.store.save(p);
}
