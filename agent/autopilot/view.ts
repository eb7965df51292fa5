import type { Config } from '../../shared/config-schema.js';
import type { NodeAvailability, NodeRole, SwarmNode } from '../docker/engine.js';
import type { Member, MemberState, Meta } from '../membership/types.js';

export type AutopilotConfig = Config['autopilot'];

/**
 * Node labels the autopilot reads to rank promotion candidates. Agents (or an
 * operator, `docker node update --label-add`) publish them; the same values
 * may come as gossip metadata (`diskBps`, `undervoltage`, `tempC`). Absent
 * everywhere, candidates rank by age (the oldest ready node first).
 */
export const LABEL_DISK_BPS = 'piswarm.disk-bps';
export const LABEL_UNDERVOLTAGE = 'piswarm.undervoltage';
export const LABEL_TEMP = 'piswarm.temp';
/**
 * Set to "true" on every node the autopilot drains and to "false" when it
 * activates one, so it never undoes a drain an operator made by hand (the
 * engine merges labels, so the key cannot be deleted, only overwritten).
 */
export const LABEL_AUTOPILOT_DRAINED = 'piswarm.autopilot-drained';

/** Where a node's health stands, as this agent has watched it. */
export interface Observation {
  healthy: boolean;
  /** When `healthy` last changed (or when this agent first saw the node). */
  since: number;
  reachable: boolean;
  /** When `reachable` (or the role) last changed. */
  reachSince: number;
  role: NodeRole;
}

/** Observations by swarm node id; a plain value so the planner stays pure. */
export type Tracker = ReadonlyMap<string, Observation>;

export interface NodeView {
  id: string;
  hostname: string;
  role: NodeRole;
  availability: NodeAvailability;
  /** The engine's node state: ready | down | unknown | disconnected. */
  state: string;
  leader: boolean;
  /** Managers: reachability === 'reachable'. Workers: false. */
  reachable: boolean;
  /**
   * A manager the engine lists with a Raft status (reachable, unreachable
   * or unknown). A node promoted that never joined Raft has none: it does
   * not count toward quorum, cannot be demoted ("can't find manager in raft
   * memberlist") and, once down, is removed instead.
   */
  raftMember: boolean;
  /**
   * The Raft status the engine lists (ManagerStatus reachability), whatever
   * the spec role: a worker with one is still a Raft member (see
   * staleRaftMembers in planner.ts).
   */
  raftReachability: string | null;
  reachSince: number;
  /** Swarm says ready and gossip (when present) does not say otherwise. */
  healthy: boolean;
  since: number;
  /** Gossip state of the matching member, null without gossip or without a match. */
  gossip: MemberState | null;
  /** Higher is a better manager; null when nothing was published. */
  score: number | null;
  createdAt: string;
  autopilotDrained: boolean;
  /**
   * Workers on engines before Docker 27: the manager address the engine
   * joined through and would dial to join Raft if promoted (gossip
   * `joinAddr`). Null when not published.
   */
  joinAddr: string | null;
  /** Managers: the Raft address (`ip:2377`). */
  managerAddr: string | null;
}

export interface ClusterView {
  /** This engine's swarm node id. */
  selfId: string;
  /** Sorted by id, so every decision is deterministic. */
  nodes: NodeView[];
  /** Step keys (`kind:nodeId`) the engine refused, with the time until which they are not retried. */
  blocked: Readonly<Record<string, number>>;
  /**
   * When a manager was last lost: leadership moved to this node, or the
   * autopilot demoted or removed a dead manager. -Infinity when never.
   */
  managerLostAt: number;
}

function num(v: unknown): number | undefined {
  if (typeof v === 'number') return Number.isFinite(v) ? v : undefined;
  if (typeof v === 'string' && v.trim() !== '') {
    const n = Number(v.trim());
    return Number.isFinite(n) ? n : undefined;
  }
  return undefined;
}

function flag(v: unknown): boolean | undefined {
  if (typeof v === 'boolean') return v;
  if (typeof v === 'number') return Number.isFinite(v) ? v > 0 : undefined;
  if (typeof v === 'string') {
    const s = v.trim().toLowerCase();
    if (['true', 'yes', '1', 'on'].includes(s)) return true;
    if (['false', 'no', '0', 'off', ''].includes(s)) return false;
    const n = Number(s);
    if (Number.isFinite(n)) return n > 0;
  }
  return undefined;
}

/**
 * How good a manager a node would make. A manager's Raft log lives on its
 * disk and a brown-out takes a vote away, so power dominates, then heat, then
 * storage speed:
 *   disk:    + min(50, bytes per second / 4 MB)  (an SD card ~5, a USB SSD 50)
 *   power:   - 100 when under-voltage was seen (`piswarm.undervoltage` true or a count > 0)
 *   thermal: - 40 at 80 °C or more, - 15 at 70 °C or more (`piswarm.temp`, °C)
 * Labels win over gossip metadata. Malformed values count as absent.
 */
export function nodeScore(labels: Readonly<Record<string, string>>, meta: Meta | null): number | null {
  const m = (meta ?? {}) as Record<string, unknown>;
  const disk = num(labels[LABEL_DISK_BPS]) ?? num(m.diskBps);
  const under = flag(labels[LABEL_UNDERVOLTAGE]) ?? flag(m.undervoltage);
  const temp = num(labels[LABEL_TEMP]) ?? num(m.tempC);
  if (disk === undefined && under === undefined && temp === undefined) return null;
  let score = 0;
  if (disk !== undefined && disk > 0) score += Math.min(50, disk / 4e6);
  if (under) score -= 100;
  if (temp !== undefined) score -= temp >= 80 ? 40 : temp >= 70 ? 15 : 0;
  return Math.round(score * 100) / 100;
}

/**
 * The gossip member that speaks for a swarm node: its metadata names the
 * swarm node id (`swarmNodeId`), or else the hostname (`hostname`, or a
 * member id equal to the hostname). A down ghost sharing a hostname with a
 * re-imaged node may match the new node's member; the swarm's own "down"
 * still makes it unhealthy.
 */
export function matchMember(node: SwarmNode, members: readonly Member[]): Member | null {
  const meta = (mb: Member) => (mb.meta ?? {}) as Record<string, unknown>;
  return (
    members.find((mb) => meta(mb).swarmNodeId === node.id) ??
    members.find((mb) => meta(mb).swarmNodeId === undefined && (meta(mb).hostname === node.hostname || mb.id === node.hostname)) ??
    null
  );
}

function isHealthy(node: SwarmNode, gossip: MemberState | null): boolean {
  // Suspect counts as unhealthy: it resets stabilisation, which is the point
  // of stabilisation (a flapping node never qualifies). "unknown" with a live
  // gossip member is not: a new Raft leader's dispatcher marks every node
  // unknown until its session registers again (a few seconds), and counting
  // that against every worker made a leader's loss cost a whole
  // stabilisation period before any replacement. The planner still promotes
  // only a node the engine says is ready.
  const engineOk = node.state === 'ready' || (node.state === 'unknown' && gossip === 'alive');
  return engineOk && (gossip === null || gossip === 'alive');
}

/**
 * Folds one node list (and gossip members) into the observations. Pure: the
 * same inputs give the same tracker. A node seen for the first time gets
 * `since = now`, so after an agent restart every timer starts over
 * (conservative: nothing is declared dead or stable on a guess).
 */
export function observe(prev: Tracker, nodes: readonly SwarmNode[], members: readonly Member[], now: number): Map<string, Observation> {
  const next = new Map<string, Observation>();
  for (const n of nodes) {
    const member = matchMember(n, members);
    const healthy = isHealthy(n, member?.state ?? null);
    const reachable = n.role === 'manager' && n.reachability === 'reachable';
    const p = prev.get(n.id);
    next.set(n.id, {
      healthy,
      since: p ? (p.healthy === healthy ? p.since : now) : firstSeenSince(n, member, healthy, now),
      reachable,
      reachSince: p && p.reachable === reachable && p.role === n.role ? p.reachSince : unreachableSince(n, member, now),
      role: n.role,
    });
  }
  return next;
}

/**
 * How long a node this agent lists for the first time has been healthy. A
 * manager's agent observes from when its node became a manager (or the agent
 * started), so a manager promoted a moment before the leader's power cut used
 * to take over with every worker "healthy for 0 s", and promoted nobody until
 * the workers' stabilisation had run again (30 s at the defaults, seen in
 * bench/heal on Docker 26.1: promoted 30 s after the demotion). Gossip has
 * watched every member meanwhile: a healthy node's member alive since an
 * earlier time counts from then, but never from before the swarm created the
 * node (a worker that just joined or re-joined is a new node). `createdAt` is
 * the engine's wall clock, so it is trusted only when not after `now` (the
 * autopilot's clock is the wall clock on a Pi); else `now`, as before.
 */
function firstSeenSince(n: SwarmNode, member: Member | null, healthy: boolean, now: number): number {
  if (!healthy || !member || member.state !== 'alive') return now;
  const created = Date.parse(n.createdAt);
  if (!Number.isFinite(created) || created > now) return now;
  return Math.min(now, Math.max(member.stateChangedAt, created));
}

/**
 * When a manager the engine has just listed as unreachable stopped
 * answering. Usually now; but a lost leader is first listed by the next
 * leader, 10-20 s after the loss (no node list without a leader), while
 * gossip declared its agent dead earlier: that is when it was lost. Only a
 * dead or departed member counts, never a suspect one, and `members` must be
 * on the caller's clock.
 */
function unreachableSince(n: SwarmNode, member: Member | null, now: number): number {
  if (n.role !== 'manager' || n.reachability === 'reachable' || !member || (member.state !== 'dead' && member.state !== 'left')) return now;
  return Math.min(now, member.stateChangedAt);
}

/** The planner's input: the node list joined with the observations. */
export function buildView(args: {
  selfId: string;
  nodes: readonly SwarmNode[];
  members?: readonly Member[];
  tracker: Tracker;
  blocked?: Readonly<Record<string, number>>;
  managerLostAt?: number;
  now: number;
}): ClusterView {
  const members = args.members ?? [];
  const nodes = [...args.nodes]
    .sort((a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0))
    .map((n): NodeView => {
      const member = matchMember(n, members);
      const gossip = member?.state ?? null;
      const o = args.tracker.get(n.id);
      const healthy = isHealthy(n, gossip);
      const reachable = n.role === 'manager' && n.reachability === 'reachable';
      return {
        id: n.id,
        hostname: n.hostname,
        role: n.role,
        availability: n.availability,
        state: n.state,
        leader: n.leader,
        reachable,
        raftMember: n.role === 'manager' && n.reachability !== null,
        raftReachability: n.reachability,
        reachSince: o && o.reachable === reachable && o.role === n.role ? o.reachSince : unreachableSince(n, member, args.now),
        healthy,
        since: o ? (o.healthy === healthy ? o.since : args.now) : firstSeenSince(n, member, healthy, args.now),
        gossip,
        score: nodeScore(n.labels, member?.meta ?? null),
        createdAt: n.createdAt,
        autopilotDrained: n.labels[LABEL_AUTOPILOT_DRAINED] === 'true',
        joinAddr: typeof member?.meta?.joinAddr === 'string' && member.meta.joinAddr !== '' ? member.meta.joinAddr : null,
        managerAddr: n.managerAddr ?? null,
      };
    });
  return { selfId: args.selfId, nodes, blocked: args.blocked ?? {}, managerLostAt: args.managerLostAt ?? -Infinity };
}
