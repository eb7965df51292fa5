import type { ClusterDocument, ClusterNode } from '../../shared/wire/cluster.js';

/**
 * The order of a rollout, pure: workers first, then managers, the Raft
 * leader last, so the swarm changes leader at most once and only at the end.
 * Nodes whose agent is not alive in gossip are left out: they catch up when
 * back (agent/upgrade/subsystem.ts).
 */
export interface RolloutNode {
  id: string;
  hostname: string;
  addr: string;
  manager: boolean;
  leader: boolean;
  version: string | null;
}

export function rolloutPlan(nodes: readonly ClusterNode[]): { order: RolloutNode[]; off: string[] } {
  const live: RolloutNode[] = [];
  const off: string[] = [];
  for (const n of nodes) {
    if (!n.addr || (n.gossip?.state !== 'alive' && !n.self)) {
      off.push(n.hostname);
      continue;
    }
    live.push({ id: n.id, hostname: n.hostname, addr: n.addr, manager: n.swarm.role === 'manager', leader: n.swarm.managerStatus === 'Leader', version: n.facts.version });
  }
  const rank = (n: RolloutNode) => (n.leader ? 2 : n.manager ? 1 : 0);
  live.sort((a, b) => rank(a) - rank(b) || (a.hostname < b.hostname ? -1 : a.hostname > b.hostname ? 1 : 0));
  return { order: live, off };
}

/**
 * May a manager's agent be restarted now? Only when every manager is
 * reachable (so the one restarted costs no quorum margin the autopilot
 * counts on) and the view comes from an engine. A worker may always go.
 * Restarting the agent never stops dockerd, but while it restarts the node
 * takes no autopilot step and answers no grant; the rule keeps a rollout
 * from adding that to a swarm that is already short of a manager.
 */
export function managerStepAllowed(doc: Pick<ClusterDocument, 'cluster'>): { ok: boolean; why: string } {
  const c = doc.cluster;
  if (c.source !== 'engine' || c.managersReachable === null) return { ok: false, why: 'no manager\'s view of the swarm yet' };
  if (c.managersReachable < c.managers) return { ok: false, why: `${c.managers - c.managersReachable} of ${c.managers} managers unreachable` };
  return { ok: true, why: `${c.managersReachable} of ${c.managers} managers reachable` };
}
