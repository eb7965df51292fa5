import type { AutopilotConfig, ClusterView, NodeView } from './view.js';
import { hostOf } from '../net/address.js';

export type ActionKind = 'promote' | 'demote' | 'remove' | 'drain' | 'activate';
export type StepKind = ActionKind | 'wait';

/** Low-cardinality reasons: they become the `reason` label of the counters. */
export type ActionReason =
  | 'grow' // fewer reachable managers than the target
  | 'shrink' // more reachable managers than the target
  | 'replace-dead-manager' // a worker promoted to take a dead manager's seat
  | 'dead-manager' // a manager unreachable past the grace period
  | 'reimaged' // a down node whose hostname a ready node now carries
  | 'dead-node-ttl' // a worker down past the TTL
  | 'drain-managers' // managerAvailability always, or auto with enough workers
  | 'workers-lost' // auto: too few workers left, managers take tasks again
  | 'availability-never' // managerAvailability never: undo our own drains
  | 'demoted-manager'; // a node we drained as a manager is a worker now

export type WaitReason =
  | 'not-leader'
  | 'quorum-lost'
  | 'manager-settling' // a manager is not reachable (yet), inside the grace period
  | 'waiting-candidates' // below target, not enough stable healthy workers
  | 'quorum-guard' // the step would leave the managers without quorum
  | 'backoff' // the engine refused the step recently
  | 'node-not-down'; // removal wanted but the engine does not say down

export interface ActionStep {
  kind: ActionKind;
  nodeId: string;
  hostname: string;
  /** The node's engine state when planned; the executor removes only 'down' nodes. */
  nodeState: string;
  reason: ActionReason;
  detail: string;
}

export interface WaitStep {
  kind: 'wait';
  reason: WaitReason;
  detail: string;
  nodeId?: string;
  /** When this wait ends by the clock alone (a grace, settle, stabilisation or backoff running out); the autopilot looks again then. */
  until?: number;
}

export type Step = ActionStep | WaitStep;

/** Votes needed for a Raft group of `members`. */
export const quorum = (members: number): number => Math.floor(members / 2) + 1;
const largestOddAtMost = (n: number): number => (n < 1 ? 0 : n % 2 === 1 ? n : n - 1);

/** Managers wanted for `healthy` nodes: 1, 3, 5 or 7 by the thresholds, odd, capped by maxManagers. */
export function targetManagers(healthy: number, c: Pick<AutopilotConfig, 'threeManagersAt' | 'fiveManagersAt' | 'sevenManagersAt' | 'maxManagers'>): number {
  const t = healthy >= c.sevenManagersAt ? 7 : healthy >= c.fiveManagersAt ? 5 : healthy >= c.threeManagersAt ? 3 : 1;
  return Math.max(1, Math.min(t, largestOddAtMost(c.maxManagers)));
}

export const stepKey = (kind: ActionKind, nodeId: string): string => `${kind}:${nodeId}`;

/** Best manager first: highest score (unpublished counts as 0), then oldest, then id. */
function byRank(a: NodeView, b: NodeView): number {
  const sa = a.score ?? 0;
  const sb = b.score ?? 0;
  if (sa !== sb) return sb - sa;
  if (a.createdAt !== b.createdAt) return a.createdAt < b.createdAt ? -1 : 1;
  return a.id < b.id ? -1 : a.id > b.id ? 1 : 0;
}

/** Numbers the planner worked from; the facade exports them as metrics. */
export interface Assessment {
  managers: number;
  reachable: number;
  quorum: number;
  /** Nodes counted for the target: healthy, or unhealthy for less than the grace period. */
  counted: number;
  target: number;
  /** Hostnames (or ids) of staleRaftMembers: workers the Raft group still counts, not reachable, for deadManagerGraceMs and more. */
  staleMembers: string[];
}

/**
 * Nodes whose spec says worker while the Raft group still lists them as a
 * member that is not reachable. Seen once in the fault campaign on Docker
 * 20.10 (2026-12-07, fault 7): a manager demoted while its cable was out,
 * then rebooted, ran as a Ready worker while the swarm kept it as an
 * Unreachable Raft member for 5 minutes and more; the next leader power cut
 * left 2 of 4 members, and quorum was lost. Reported (metric, /health,
 * journal), not repaired: the planner counts managers by spec, and a repair
 * (swarmkit's role manager evicts the Raft member of a node that is removed,
 * so `docker node rm --force` should) was not tried on an engine.
 */
export function staleRaftMembers(view: ClusterView, now: number, forMs: number): NodeView[] {
  // Only once it has lasted: a dead manager just demoted keeps its Raft
  // status for a moment while the engine removes the member (seen in every
  // leader power cut of bench/heal on 20.10).
  return view.nodes.filter((n) => n.role === 'worker' && n.raftReachability !== null && n.raftReachability !== 'reachable' && now - n.reachSince >= forMs);
}

/**
 * The older of two entries for one hostname is the stale one of a node that
 * left and joined again (or was re-imaged): the engine may list it Ready for
 * a while, but it is no node of its own.
 */
export function isSuperseded(n: NodeView, nodes: readonly NodeView[]): boolean {
  return n.hostname !== '' && nodes.some((o) => o.id !== n.id && o.hostname === n.hostname && o.createdAt > n.createdAt);
}

export function assess(view: ClusterView, c: AutopilotConfig, now: number): Assessment {
  // Raft's own members: a promoted node that never joined Raft is no voter.
  const managers = view.nodes.filter((n) => n.role === 'manager' && n.raftMember);
  const reachable = managers.filter((n) => n.reachable).length;
  // A node that just went down is presumed to come back within the grace
  // period: counting it keeps the target (and so the manager set) still
  // through reboots, flaps and a whole-cluster power cycle.
  // A superseded entry is not a node: counting it made 4 managers of a
  // 5-node cluster whose workers had just re-joined (target 5 for "8 nodes").
  const counted = view.nodes.filter((n) => (n.healthy || now - n.since < c.deadManagerGraceMs) && !isSuperseded(n, view.nodes)).length;
  const staleMembers = staleRaftMembers(view, now, c.deadManagerGraceMs).map((n) => n.hostname || n.id);
  return { managers: managers.length, reachable, quorum: quorum(managers.length), counted, target: targetManagers(counted, c), staleMembers };
}

/** How long promotions wait after a manager was lost (see plan()). */
export const MANAGER_LOSS_SETTLE_MS = 20_000;

/**
 * When the last manager was lost, after `step` ran: demoting or removing a
 * dead manager (or a re-imaged node's stale one) is no new loss, the loss was
 * when it stopped answering (`reachSince`), or leadership moved, so the
 * settle of plan() is not started over by the demotion itself. Before, a
 * leader's power cut waited the settle again from the demotion: 20 s of the
 * 41 s past the grace measured on Docker 26.1.
 */
export function lossAfterStep(prev: number, step: Step, view: ClusterView): number {
  if ((step.kind !== 'demote' && step.kind !== 'remove') || (step.reason !== 'dead-manager' && step.reason !== 'reimaged')) return prev;
  const n = view.nodes.find((x) => x.id === step.nodeId);
  if (!n || n.role !== 'manager') return prev;
  return Math.max(prev, n.reachSince);
}

/**
 * When this node's agent becomes the deciding one (its engine the Raft
 * leader): a manager the Raft group lists as unreachable was lost, at the
 * time it stopped answering (gossip's death, see view.ts unreachableSince).
 * Leadership that moved with every manager reachable (a restart, a transfer)
 * is no loss. Before, the settle of plan() ran from the moment leadership was
 * noticed here, 10-20 s after the loss, and a leader's power cut waited it
 * out past the grace (20 s of the 36 s past the grace measured on Docker 26.1
 * in one round of bench/heal, none in a round where the engine had not
 * answered just before, the same cut).
 */
export function lossOnLeadership(prev: number, view: ClusterView): number {
  let lost = prev;
  for (const n of view.nodes) {
    if (n.id !== view.selfId && n.role === 'manager' && n.raftMember && !n.reachable) lost = Math.max(lost, n.reachSince);
  }
  return lost;
}

/**
 * One step per tick, or null when the swarm is as it should be. Pure and
 * deterministic: the same view, config and time give the same step.
 *
 * Rules, in priority order; the first action wins, and when no rule can act
 * the first wait explains why:
 *  1. only the Raft leader's agent decides; nothing when quorum is lost
 *     (never force a new cluster: that is an operator's decision);
 *  2. a down node whose hostname a ready node carries (a re-imaged Pi) is
 *     demoted if it was a manager, then removed;
 *  3. a manager unreachable past deadManagerGraceMs is replaced: a stable
 *     worker promoted first when below target and quorum holds even if the
 *     newcomer never becomes reachable (5 managers), else the dead one is
 *     demoted first and rule 5 promotes (3 managers);
 *  4. while a manager is settling (unreachable inside the grace period, e.g.
 *     just promoted) the manager set does not change further;
 *  5. grow toward the target, one promotion at a time, only with stable
 *     candidates and only toward an odd count that can be reached;
 *  6. shrink when above the target, the weakest non-leader manager first;
 *  7. workers down past deadNodeTtlMs are removed;
 *  8. manager availability (drain/activate) by managerAvailability.
 * Every membership change checks quorum for the size after the step.
 */
export function plan(view: ClusterView, c: AutopilotConfig, now: number): Step | null {
  const self = view.nodes.find((n) => n.id === view.selfId);
  if (!self || !self.leader) return { kind: 'wait', reason: 'not-leader', detail: 'only the Raft leader\'s agent decides' };
  const a = assess(view, c, now);
  if (a.reachable < a.quorum) {
    return { kind: 'wait', reason: 'quorum-lost', detail: `${a.reachable} of ${a.managers} managers reachable, ${a.quorum} needed; restore managers or force a new cluster by hand` };
  }
  const waits: WaitStep[] = [];
  const blocked = (kind: ActionKind, n: NodeView) => (view.blocked[stepKey(kind, n.id)] ?? 0) > now;
  const act = (kind: ActionKind, n: NodeView, reason: ActionReason, detail: string): ActionStep | null => {
    if (blocked(kind, n)) {
      const until = view.blocked[stepKey(kind, n.id)]!;
      waits.push({ kind: 'wait', reason: 'backoff', nodeId: n.id, until, detail: `${kind} ${n.hostname} was refused by the engine; retrying after ${new Date(until).toISOString()}` });
      return null;
    }
    return { kind, nodeId: n.id, hostname: n.hostname, nodeState: n.state, reason, detail };
  };
  /** Quorum holds after a step that changes the managers by `dm` and the reachable ones by `dr`. */
  const safe = (dm: number, dr: number) => a.managers + dm >= 1 && a.reachable + dr >= quorum(a.managers + dm);
  const guard = (what: string, n: NodeView, dm: number, dr: number) =>
    waits.push({
      kind: 'wait',
      reason: 'quorum-guard',
      nodeId: n.id,
      detail: `${what} ${n.hostname} would leave ${a.reachable + dr} of ${a.managers + dm} managers reachable, below quorum ${quorum(a.managers + dm)}`,
    });

  const stable = (n: NodeView) => n.healthy && now - n.since >= c.stabilizationMs;
  // A worker learns the managers' addresses from its dispatcher session; for a
  // while after a manager is lost it may know only the dead one, and promoted
  // then it cannot join Raft ("can't initialize raft node ... no route to
  // host", seen on the simulated cluster) and is stuck half-manager: the
  // engine then refuses to demote it ("can't find manager in raft memberlist").
  const lostAgo = now - view.managerLostAt;
  const promotionsSettled = lostAgo >= MANAGER_LOSS_SETTLE_MS;
  const lossWait = (): WaitStep => ({
    kind: 'wait',
    reason: 'manager-settling',
    until: view.managerLostAt + MANAGER_LOSS_SETTLE_MS,
    detail: `a manager was lost ${Math.round(lostAgo / 1000)} s ago; promotions wait ${MANAGER_LOSS_SETTLE_MS / 1000} s so workers learn the surviving managers' addresses`,
  });
  const managers = view.nodes.filter((n) => n.role === 'manager');
  const readyHostnames = new Set(view.nodes.filter((n) => n.state === 'ready').map((n) => n.hostname));
  const isGhost = (n: NodeView) => n.state !== 'ready' && !n.healthy && n.hostname !== '' && readyHostnames.has(n.hostname);
  const dead = managers.filter((n) => !n.reachable && now - n.reachSince >= c.deadManagerGraceMs);
  // A ghost is known dead and handled by its own rule; it must not hold the others back.
  const settling = managers.filter((n) => !n.reachable && now - n.reachSince < c.deadManagerGraceMs && !isGhost(n));
  const settlingWait = (): WaitStep => {
    const s = settling[0]!;
    const until = Math.min(...settling.map((m) => m.reachSince + c.deadManagerGraceMs));
    return { kind: 'wait', reason: 'manager-settling', nodeId: s.id, until, detail: `manager ${s.hostname} is ${s.state} and not reachable yet; no other manager change until it is` };
  };
  // A worker whose engine would dial only the manager it joined through
  // (Docker < 27, gossip `joinAddr`) cannot join Raft when that manager is
  // gone: it re-joins through a live one first (agent/formation/rule.ts) and
  // is a candidate again as a new node.
  const liveManagerHosts = new Set(managers.filter((n) => n.reachable && n.managerAddr).map((n) => hostOf(n.managerAddr!)));
  const pinnedAway = (n: NodeView) => n.joinAddr !== null && !liveManagerHosts.has(hostOf(n.joinAddr));
  // An operator's drained worker is under maintenance: never promote it.
  // A superseded entry is never a candidate, even before the engine marks it down.
  const eligible = view.nodes
    .filter((n) => n.role === 'worker' && n.state === 'ready' && stable(n) && !isSuperseded(n, view.nodes) && (n.availability === 'active' || (n.availability === 'drain' && n.autopilotDrained)));
  const pinned = eligible.filter(pinnedAway);
  const candidates = eligible.filter((n) => !pinnedAway(n)).sort(byRank);

  // 2. re-imaged nodes leave ghosts under their old id
  for (const g of view.nodes) {
    if (!isGhost(g)) continue;
    if (now - g.since < c.stabilizationMs) continue; // let a racing restart settle first
    const detail = `${g.hostname} came back as another node; ${g.id} is its stale entry`;
    if (g.role === 'manager' && g.raftMember) {
      if (g.reachable) continue;
      if (settling.length > 0) { waits.push(settlingWait()); continue; }
      if (!safe(-1, 0)) { guard('demoting stale', g, -1, 0); continue; }
      const s = act('demote', g, 'reimaged', detail);
      if (s) return s;
    } else if (g.state === 'down') {
      const s = act('remove', g, 'reimaged', detail);
      if (s) return s;
    } else {
      waits.push({ kind: 'wait', reason: 'node-not-down', nodeId: g.id, detail: `stale ${g.hostname} is ${g.state}, not down; removal waits` });
    }
  }

  // 3. dead managers: promote a replacement first where that is safe, then demote the dead
  // (4.) and nothing while a manager is settling, e.g. the replacement itself
  for (const d of settling.length > 0 ? [] : dead) {
    const detail = `manager ${d.hostname} unreachable for ${Math.round((now - d.reachSince) / 1000)} s`;
    if (!d.raftMember) {
      // Promoted but never in Raft: no vote to lose, and the engine refuses
      // to demote it. Down, it is removed; up, it is still trying to join.
      if (d.state !== 'down') {
        waits.push({ kind: 'wait', reason: 'node-not-down', nodeId: d.id, detail: `${d.hostname} was promoted but never joined Raft and is ${d.state}; removal waits until it is down` });
        continue;
      }
      const s = act('remove', d, 'dead-manager', `${detail}, never joined Raft`);
      if (s) return s;
      continue;
    }
    if (a.reachable < a.target) {
      const cand = candidates.find((n) => !blocked('promote', n));
      // The replacement counts as unreachable until it proves otherwise: on a
      // real engine a worker promoted while a manager is dead can fail to join
      // Raft (seen in the simulated cluster: 3 managers, 1 dead, the promoted
      // worker went to swarm state "error" and left 2 of 4 reachable, quorum
      // lost). So promotion comes first only where quorum survives without the
      // newcomer (5 managers, 1 dead); with 3 managers the dead one is demoted
      // first and the grow step below promotes on a healthy 2-manager set.
      if (cand && !promotionsSettled) waits.push(lossWait());
      else if (cand) {
        if (safe(+1, 0)) {
          const s = act('promote', cand, 'replace-dead-manager', `replacing ${d.hostname}: ${detail}`);
          if (s) return s;
        } else guard('promoting', cand, +1, 0);
      }
    }
    if (!safe(-1, 0)) { guard('demoting dead', d, -1, 0); continue; }
    const s = act('demote', d, 'dead-manager', detail);
    if (s) return s;
  }

  // 4-6. the size of the manager set
  if (settling.length > 0) {
    waits.push(settlingWait());
  } else if (dead.length === 0) {
    // Only an odd count that stable candidates can actually reach: never
    // stop at an even count on the way to a target we cannot make.
    const reachableTarget = Math.min(a.target, largestOddAtMost(a.reachable + candidates.length));
    // Shrinking for want of candidates waits for the workers on their way to
    // being candidates: pinned ones about to re-join, and healthy ones still
    // stabilising (a re-joined worker is a new node). Otherwise a re-join
    // would cost a demotion and two promotions.
    const arrivingNodes = view.nodes.filter((n) => n.role === 'worker' && n.healthy && n.availability === 'active' && !stable(n));
    const arriving = arrivingNodes.length;
    const keepTarget = Math.min(a.target, largestOddAtMost(a.reachable + candidates.length + pinned.length + arriving));
    if (a.reachable < a.target && a.reachable >= reachableTarget) {
      const rejoining = pinned.length > 0 ? `; ${pinned.length} more joined through a manager that is gone and re-join first (${pinned.map((n) => n.hostname).join(', ')})` : '';
      waits.push({
        kind: 'wait',
        reason: 'waiting-candidates',
        ...(arriving > 0 ? { until: Math.min(...arrivingNodes.map((n) => n.since + c.stabilizationMs)) } : {}),
        detail: `${a.reachable} managers, target ${a.target}; ${candidates.length} worker(s) healthy for ${c.stabilizationMs} ms${rejoining}`,
      });
    }
    if (a.reachable < reachableTarget && !promotionsSettled && candidates.length > 0) {
      waits.push(lossWait());
    } else if (a.reachable < reachableTarget) {
      for (const cand of candidates) {
        if (!safe(+1, +1)) { guard('promoting', cand, +1, +1); break; }
        const s = act('promote', cand, 'grow', `${a.reachable} managers, target ${a.target} for ${a.counted} nodes`);
        if (s) return s;
      }
    } else if (a.reachable > keepTarget) {
      const victims = managers.filter((n) => n.id !== view.selfId && !n.leader).sort(byRank).reverse();
      for (const v of victims) {
        if (!safe(-1, -1)) { guard('demoting', v, -1, -1); break; }
        const s = act('demote', v, 'shrink', `${a.reachable} managers, target ${keepTarget} for ${a.counted} nodes`);
        if (s) return s;
      }
    }
  }

  // 7. dead workers
  for (const n of view.nodes) {
    if (n.role !== 'worker' || n.healthy || now - n.since < c.deadNodeTtlMs) continue;
    if (n.state !== 'down') {
      waits.push({ kind: 'wait', reason: 'node-not-down', nodeId: n.id, detail: `${n.hostname} is ${n.state}, not down; removal waits` });
      continue;
    }
    const s = act('remove', n, 'dead-node-ttl', `${n.hostname} down for ${Math.round((now - n.since) / 1000)} s`);
    if (s) return s;
  }

  // 8. manager availability
  const liveManagers = managers.filter((n) => n.healthy);
  const activeWorkers = view.nodes.filter((n) => n.role === 'worker' && n.availability === 'active');
  const stableWorkers = activeWorkers.filter(stable).length;
  // A worker gone for less than the stabilisation period still counts, so a
  // flapping worker neither drains nor activates the managers.
  const presentWorkers = activeWorkers.filter((n) => n.healthy || now - n.since < c.stabilizationMs).length;
  const mode = c.managerAvailability;
  const drainWanted = mode === 'always' || (mode === 'auto' && stableWorkers >= c.drainMinWorkers);
  const undrainWanted = mode === 'never' || (mode === 'auto' && presentWorkers < c.drainMinWorkers);
  for (const m of liveManagers) {
    if (drainWanted && m.availability === 'active') {
      const why = mode === 'always' ? 'managerAvailability is always' : `${stableWorkers} stable active workers`;
      const s = act('drain', m, 'drain-managers', `${m.hostname} is a manager; ${why}`);
      if (s) return s;
    } else if (undrainWanted && m.availability === 'drain' && m.autopilotDrained) {
      const reason = mode === 'never' ? 'availability-never' : 'workers-lost';
      const s = act('activate', m, reason, mode === 'never' ? 'managerAvailability is never' : `only ${presentWorkers} active worker(s) left`);
      if (s) return s;
    }
  }
  for (const w of view.nodes) {
    if (w.role === 'worker' && w.healthy && w.availability === 'drain' && w.autopilotDrained) {
      const s = act('activate', w, 'demoted-manager', `${w.hostname} was drained as a manager and is a worker now`);
      if (s) return s;
    }
  }
  return waits[0] ?? null;
}
