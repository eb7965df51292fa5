/**
 * What the fault campaign requires of the cluster at every sample, pure:
 * given what the nodes and a manager said, the violations (empty when all hold).
 */

export interface SwarmRow {
  id: string;
  hostname: string;
  status: string;
  manager: string;
}

export interface NodeSample {
  name: string;
  /** Powered on and connected (the campaign's own record). */
  up: boolean;
  /** Since when it has been up and, in every sample since, not Ready in the swarm (ms on the campaign's clock); null while Ready or off. */
  notReadySince: number | null;
  /** The swarm id its agent reports (/v1/formation), null when none or unreachable. */
  swarmId: string | null;
  /** systemd's NRestarts of piswarm.service in this boot, null when unknown. */
  agentRestarts: number | null;
}

/** Whole: every node Ready in one swarm, one entry per hostname, the managers at target and all reachable. */
export function whole(rows: readonly SwarmRow[] | null, nodes: readonly string[], targetManagers: number): boolean {
  if (!rows) return false;
  const hosts = new Set(rows.map((r) => r.hostname));
  const managers = rows.filter((r) => r.manager !== '');
  return (
    rows.length === nodes.length &&
    hosts.size === nodes.length &&
    nodes.every((n) => hosts.has(n)) &&
    rows.every((r) => r.status === 'Ready') &&
    managers.length === targetManagers &&
    managers.every((r) => r.manager === 'Leader' || r.manager === 'Reachable')
  );
}

/**
 * Tracks, per node, since when it has been up and not Ready without a break
 * (a node is briefly Unknown or Down in a new leader's list: that is no
 * violation; being so for `stuckAfterMs` is).
 */
export function notReadySince(prev: ReadonlyMap<string, number>, at: number, name: string, up: boolean, rows: readonly SwarmRow[] | null): number | null {
  if (!up || !rows) return up ? prev.get(name) ?? null : null;
  if (rows.some((r) => r.hostname === name && r.status === 'Ready')) return null;
  return prev.get(name) ?? at;
}

/** Violations at one sample. `stuckAfterMs`: a node up and not Ready in the swarm for this long without a break is stuck. */
export function violations(at: number, nodes: readonly NodeSample[], rows: readonly SwarmRow[] | null, stuckAfterMs: number): string[] {
  const out: string[] = [];
  const swarms = new Set(nodes.map((n) => n.swarmId).filter((x): x is string => x !== null));
  if (swarms.size > 1) out.push(`two swarms: ${[...swarms].sort().join(' vs ')}`);
  for (const n of nodes) {
    if (n.agentRestarts !== null && n.agentRestarts > 0) out.push(`${n.name}: the agent restarted ${n.agentRestarts} time(s) in this boot`);
    if (n.up && n.notReadySince !== null && at - n.notReadySince >= stuckAfterMs) out.push(`${n.name}: stuck (up and not Ready in the swarm for ${Math.round(stuckAfterMs / 1000)} s and more)`);
  }
  return out;
}
