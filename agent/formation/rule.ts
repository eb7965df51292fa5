import type { FormationPhase, PeerSwarm } from '../../shared/wire/peer.js';
import { hostOf } from '../net/address.js';

/**
 * THE FIRST-MANAGER RULE (README text)
 * ====================================
 * Every node decides alone, from the same inputs, so no vote is needed:
 *
 * 1. A node that is already in a swarm (`docker info` says so) never inits
 *    and never re-joins: a reboot or an agent restart changes nothing. One
 *    exception: a worker whose engine pins the address it joined through
 *    (engines where agent/docker/engine-recovery.ts pinsJoinAddress is true: 20.10 and any version not checked; 26.1.5+ and 27+ do not pin)
 *    while that address is no longer a manager could never be promoted, so
 *    it gets a grant from a live manager, leaves and joins again through it
 *    (the engine's own workaround; the old entry is pruned as a ghost).
 *    Likewise a node the managers no longer list (removed while away: its
 *    engine still says "active" and cannot notice) joins again.
 * 2. If any confirmed peer is in a swarm (or is initialising or joining one),
 *    join that swarm. Never create one.
 * 3. Once a node has seen a swarm of this cluster it remembers it
 *    (`stateDir/formation.json`) and never creates another, even when no
 *    member is reachable; it waits, and /health says what to do.
 * 4. Otherwise wait until the set of confirmed peers (peers that proved over
 *    HTTP that they hold the cluster key) has been unchanged for
 *    `formation.holdOffMs` and counts at least `formation.expect` nodes,
 *    self included. Then rank the nodes by node id (lowest first): rank 0
 *    creates the swarm, everyone else waits and joins it. If no swarm appears
 *    within `formation.initDeadlineMs`, rank 1 takes over, after another
 *    deadline rank 2, and so on (after the last, rank 0 again). Each node
 *    tries only in its own turn, so a winner whose `swarm init` keeps failing
 *    stops when its deadline is over. A peer that says it is creating the
 *    swarm holds the others off for one deadline at most, counted from when
 *    they first saw it say so (their own clocks: a Pi has no RTC). Any change
 *    of the peer set restarts the hold-off.
 *
 * THE SPLIT RULE
 * ==============
 * A partition during boot can still produce two swarms. A node sees it when
 * its confirmed peers report two swarm ids. The winner is the swarm with the
 * most nodes, then the older one (CreatedAt), then the lower swarm id. A node
 * of a losing swarm that runs no user service gets a join grant from the
 * winner first, then leaves (`docker swarm leave --force`) and joins the
 * winner. A node that runs user services stays where it is and its /health
 * warns (`swarm:formation`) with what to do: move the services to the
 * winning swarm, then `docker swarm leave --force` on that node; the agent
 * joins it to the winner by itself.
 */

/**
 * The hold-off when none is configured. With expect = 1 nothing but the
 * hold-off keeps two Pis that boot a few seconds apart from each creating a
 * swarm, so it is long; with expect >= 2 a node alone can never create one, and
 * the boot-order property test (test/unit/agent/formation/rule.test.ts, 500
 * orders, boots spread over 3 s, discovery up to 1.5 s) shows one creator every
 * time at 2 s, which is what keeps 5-node formation under 10 s.
 */
export function effectiveHoldOffMs(f: { expect: number; holdOffMs?: number | undefined }): number {
  return f.holdOffMs ?? (f.expect > 1 ? 2000 : 5000);
}

export interface PeerState {
  nodeId: string;
  addr: string;
  port: number;
  phase: FormationPhase;
  /**
   * When this node first saw the peer in `phase`, on this node's clock.
   * Unknown (absent): an `initialising` peer holds the others off for good.
   */
  phaseSince?: number;
  swarm: PeerSwarm | null;
  seenSwarms: readonly string[];
}

export interface SelfState {
  nodeId: string;
  /** Engine swarm state from `docker info`. */
  engine: 'inactive' | 'pending' | 'active' | 'error' | 'locked';
  swarm: PeerSwarm | null;
  seenSwarms: readonly string[];
  /**
   * A worker only: the address it joined through, when its engine pins that
   * address and it has not been one of the swarm's managers for a while.
   */
  pinnedTo?: string | null;
  /** A manager of its swarm (one with a working Raft) has said for a while that it no longer lists this node. */
  unlisted?: boolean;
  /** While the engine is pending or in error: the swarm it last joined or created (formation.json), null when unknown. */
  lastSwarm?: string | null;
  /** The engine is in error because a manager refused it as removed from the swarm (its own node id in the refusal). */
  removedByEngine?: boolean;
}

export interface ElectionInput {
  self: SelfState;
  peers: readonly PeerState[];
  now: number;
  /** When the confirmed peer set last changed. */
  stableSince: number;
  expect: number;
  holdOffMs: number;
  initDeadlineMs: number;
}

export interface JoinTarget {
  nodeId: string | null;
  addr: string;
  port: number;
}

export interface SplitInfo {
  swarms: string[];
  winner: string;
}

export type Decision =
  | { action: 'member'; phase: 'manager' | 'member' | 'degraded'; reason: string; split: SplitInfo | null }
  | { action: 'join'; phase: 'joining'; swarmId: string; via: JoinTarget[]; leaveFirst: boolean; reason: string; split: SplitInfo | null; rejoin?: RejoinReason }
  | { action: 'init'; phase: 'initialising'; rank: string[]; reason: string; takeover: boolean }
  | { action: 'wait'; phase: 'discovering' | 'candidate' | 'waiting' | 'joining' | 'degraded'; reason: string; rank: string[] | null; winner: string | null };

/** Why a node leaves its own swarm to join it again (the `reason` label of piswarm_formation_rejoins_total). */
export type RejoinReason = 'join-manager-gone' | 'pruned';

export interface SwarmSummary {
  id: string;
  nodes: number;
  createdAt: string | null;
}

/** Orders swarms by the split rule: more nodes, then older, then lower id. */
export function compareSwarms(a: SwarmSummary, b: SwarmSummary): number {
  if (a.nodes !== b.nodes) return b.nodes - a.nodes;
  const ta = a.createdAt ? Date.parse(a.createdAt) : Number.POSITIVE_INFINITY;
  const tb = b.createdAt ? Date.parse(b.createdAt) : Number.POSITIVE_INFINITY;
  const na = Number.isNaN(ta) ? Number.POSITIVE_INFINITY : ta;
  const nb = Number.isNaN(tb) ? Number.POSITIVE_INFINITY : tb;
  if (na !== nb) return na < nb ? -1 : 1;
  return a.id < b.id ? -1 : a.id > b.id ? 1 : 0;
}

/** Builds per-swarm summaries from what self and peers report. */
export function summarizeSwarms(members: ReadonlyArray<{ swarm: PeerSwarm | null }>): SwarmSummary[] {
  const by = new Map<string, { seen: number; reported: number; createdAt: string | null }>();
  for (const m of members) {
    if (!m.swarm) continue;
    const s = by.get(m.swarm.id) ?? { seen: 0, reported: 0, createdAt: null };
    s.seen++;
    if (m.swarm.nodes !== null) s.reported = Math.max(s.reported, m.swarm.nodes);
    if (m.swarm.createdAt && (!s.createdAt || Date.parse(m.swarm.createdAt) < Date.parse(s.createdAt))) s.createdAt = m.swarm.createdAt;
    by.set(m.swarm.id, s);
  }
  return [...by.entries()].map(([id, s]) => ({ id, nodes: Math.max(s.seen, s.reported), createdAt: s.createdAt }));
}

export function splitWinner(summaries: readonly SwarmSummary[]): SwarmSummary | null {
  return [...summaries].sort(compareSwarms)[0] ?? null;
}


/** Why a node in its own swarm should leave and join it again, and which manager host not to join through. */
function rejoinWhy(self: SelfState): { kind: RejoinReason; avoid: string | null; reason: string } | null {
  if (!self.swarm) return null;
  if (self.unlisted) {
    return { kind: 'pruned', avoid: null, reason: `re-joining: the managers of swarm ${self.swarm.id} no longer list this node (removed while it was away); its engine cannot notice by itself` };
  }
  if (self.swarm.role === 'worker' && self.pinnedTo) {
    return { kind: 'join-manager-gone', avoid: hostOf(self.pinnedTo), reason: `re-joining: this worker joined through ${self.pinnedTo}, no longer a manager, and its engine would dial only that address if promoted (moby PR #47854)` };
  }
  return null;
}

function joinTargets(peers: readonly PeerState[], swarmId: string, port: number): JoinTarget[] {
  const members = peers.filter((p) => p.swarm?.id === swarmId);
  const managers = members.filter((p) => p.swarm?.role === 'manager').map((p) => ({ nodeId: p.nodeId, addr: p.addr, port: p.port }));
  if (managers.length > 0) return managers;
  // Only workers of that swarm are confirmed: ask the managers they name, on
  // the same API port (one cluster runs one port).
  const seen = new Set<string>();
  const out: JoinTarget[] = [];
  for (const w of members) {
    for (const a of w.swarm?.managerAddrs ?? []) {
      const host = hostOf(a);
      if (!seen.has(host)) {
        seen.add(host);
        out.push({ nodeId: null, addr: host, port });
      }
    }
  }
  return out;
}

/**
 * A pending engine is joining a swarm, or is stuck trying to reach one that
 * removed it while it was off (a manager demoted and removed by the
 * autopilot, a worker pruned as dead): such an engine stays pending for good,
 * retrying its Raft votes or sessions and logging "node ... was removed from
 * swarm". Only a manager of that swarm, with a working Raft, can say so
 * (`unlisted`); then the node gets a grant from a live manager, leaves and
 * joins again. Otherwise it waits: a pending engine is also what a whole
 * swarm's power-on looks like until its Raft has a leader again.
 */
function decidePending(self: SelfState, peers: readonly PeerState[], selfApiPort: number): Decision {
  if (self.unlisted && self.lastSwarm) {
    const via = joinTargets(peers, self.lastSwarm, selfApiPort);
    if (via.length > 0) {
      const reason = `re-joining: the managers of swarm ${self.lastSwarm} no longer list this node (removed while it was away); its engine stays pending and cannot notice by itself`;
      return { action: 'join', phase: 'joining', swarmId: self.lastSwarm, via, leaveFirst: true, reason, split: null, rejoin: 'pruned' };
    }
  }
  return { action: 'wait', phase: 'joining', reason: 'the engine is joining a swarm', rank: null, winner: null };
}

/**
 * An engine in error waits for a person, except when a manager refused it as
 * removed from the swarm: a manager demoted while it was away and removed as
 * dead before it got its worker certificate. That engine restarts its swarm
 * node every few seconds and gets the same refusal for good; the refusal
 * came from a manager's store, so it is authoritative. The node leaves and
 * joins again through a live manager of the swarm it was in.
 */
function decideError(self: SelfState, peers: readonly PeerState[], selfApiPort: number): Decision {
  if (!self.removedByEngine) return { action: 'wait', phase: 'degraded', reason: 'the engine reports a swarm error', rank: null, winner: null };
  const via = self.lastSwarm ? joinTargets(peers, self.lastSwarm, selfApiPort) : [];
  if (via.length === 0) {
    const reason = `the swarm${self.lastSwarm ? ` ${self.lastSwarm}` : ''} removed this node; waiting for one of its managers to answer so it can join again (a node revoked, or left out of a cluster key rotation, waits here for good: it needs a card with the cluster's new key)`;
    return { action: 'wait', phase: 'degraded', reason, rank: null, winner: null };
  }
  const reason = `re-joining: a manager of swarm ${self.lastSwarm} refuses this node as removed from the swarm (engine in error since)`;
  return { action: 'join', phase: 'joining', swarmId: self.lastSwarm!, via, leaveFirst: true, reason, split: null, rejoin: 'pruned' };
}

/** The whole rule as one pure function. */
export function decide(input: ElectionInput, selfApiPort: number): Decision {
  const { self, peers } = input;
  if (self.engine === 'pending') return decidePending(self, peers, selfApiPort);
  if (self.engine === 'locked') return { action: 'wait', phase: 'degraded', reason: 'the swarm is locked: run `docker swarm unlock` on this node', rank: null, winner: null };
  if (self.engine === 'error') return decideError(self, peers, selfApiPort);

  const summaries = summarizeSwarms([{ swarm: self.swarm }, ...peers]);
  const winner = splitWinner(summaries);
  const split: SplitInfo | null = summaries.length > 1 && winner ? { swarms: summaries.map((s) => s.id).sort(), winner: winner.id } : null;

  if (self.engine === 'active' && self.swarm) {
    const phase = self.swarm.role === 'manager' ? 'manager' : 'member';
    if (!split || split.winner === self.swarm.id) {
      const r = rejoinWhy(self);
      const via = r ? joinTargets(peers, self.swarm.id, selfApiPort).filter((v) => v.addr !== r.avoid) : [];
      if (r && via.length > 0) return { action: 'join', phase: 'joining', swarmId: self.swarm.id, via, leaveFirst: true, reason: r.reason, split, rejoin: r.kind };
      return { action: 'member', phase, reason: split ? `split: this swarm wins (${split.swarms.join(' vs ')})` : `member of swarm ${self.swarm.id}`, split };
    }
    if (self.swarm.runningTasks === null || self.swarm.runningTasks > 0) {
      return {
        action: 'member',
        phase: 'degraded',
        reason: `split: swarm ${split.winner} wins over ours (${self.swarm.id}) but this node runs user services (${self.swarm.runningTasks ?? 'unknown'}); move them to the winning swarm, then run \`docker swarm leave --force\` here and the agent joins it`,
        split,
      };
    }
    const via = joinTargets(peers, split.winner, selfApiPort);
    if (via.length === 0) return { action: 'member', phase: 'degraded', reason: `split: swarm ${split.winner} wins but none of its managers is reachable yet`, split };
    return { action: 'join', phase: 'joining', swarmId: split.winner, via, leaveFirst: true, reason: `split: leaving losing swarm ${self.swarm.id} (no user services) for ${split.winner}`, split };
  }
  if (self.engine === 'active') {
    // Active but we could not describe the swarm (e.g. a worker whose swarm id
    // is not known yet): still a member, never init.
    return { action: 'member', phase: 'member', reason: 'member of a swarm', split: null };
  }

  if (winner) {
    const via = joinTargets(peers, winner.id, selfApiPort);
    if (via.length === 0) return { action: 'wait', phase: 'waiting', reason: `swarm ${winner.id} exists but none of its managers is reachable yet`, rank: null, winner: null };
    return { action: 'join', phase: 'joining', swarmId: winner.id, via, leaveFirst: false, reason: `confirmed peers are in swarm ${winner.id}`, split };
  }
  // A peer creating the swarm holds the others off, for one deadline at most.
  const creating = (p: PeerState) => p.phase === 'initialising' && (p.phaseSince === undefined || input.now - p.phaseSince < input.initDeadlineMs);
  const busy = peers.find((p) => creating(p) || p.phase === 'joining');
  if (busy) return { action: 'wait', phase: 'waiting', reason: `peer ${busy.nodeId} is ${busy.phase === 'initialising' ? 'creating' : 'joining'} a swarm`, rank: null, winner: busy.phase === 'initialising' ? busy.nodeId : null };
  // A peer that is in a swarm it cannot name yet (a worker before it learnt
  // the id) still means a swarm exists: wait, never create.
  const member = peers.find((p) => p.phase === 'member' || p.phase === 'manager');
  if (member) return { action: 'wait', phase: 'waiting', reason: `peer ${member.nodeId} is in a swarm it cannot name yet`, rank: null, winner: null };
  const seen = [...new Set([...self.seenSwarms, ...peers.flatMap((p) => p.seenSwarms)])];
  if (seen.length > 0) {
    return {
      action: 'wait',
      phase: 'waiting',
      reason: `swarm ${seen.join(', ')} of this cluster exists but no member is reachable; a new swarm is never created (if that swarm is gone for good, delete formation.json in the state dir on every node)`,
      rank: null,
      winner: null,
    };
  }

  const rank = [self.nodeId, ...peers.map((p) => p.nodeId)].sort();
  if (rank.length < input.expect) {
    return { action: 'wait', phase: 'discovering', reason: `${rank.length} of ${input.expect} expected nodes confirmed`, rank, winner: null };
  }
  const stableFor = input.now - input.stableSince;
  if (stableFor < input.holdOffMs) {
    return { action: 'wait', phase: 'candidate', reason: `peer set stable for ${stableFor} of ${input.holdOffMs} ms`, rank, winner: rank[0]! };
  }
  // One deadline-long turn per rank, round and round: only the node whose turn it is tries.
  const slot = Math.floor((stableFor - input.holdOffMs) / input.initDeadlineMs);
  const turn = slot % rank.length;
  const mine = rank.indexOf(self.nodeId);
  if (mine === turn) {
    const why =
      slot === 0
        ? 'lowest node id among confirmed peers'
        : slot < rank.length
          ? `takeover: ${rank.slice(0, mine).join(', ')} did not create the swarm within ${input.initDeadlineMs} ms each`
          : `takeover: no node created the swarm in ${slot} turns of ${input.initDeadlineMs} ms; trying again`;
    return { action: 'init', phase: 'initialising', rank, reason: why, takeover: slot > 0 };
  }
  const w = rank[turn]!;
  return { action: 'wait', phase: 'waiting', reason: `waiting for ${w} (rank ${turn}) to create the swarm`, rank, winner: w };
}
