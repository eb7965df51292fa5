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
  /** Since when it has been up, ms on the campaign's clock. */
  upSince: number;
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

/** Violations at one sample. `stuckAfterMs`: an up node not Ready in the swarm for this long is stuck. */
export function violations(at: number, nodes: readonly NodeSample[], rows: readonly SwarmRow[] | null, stuckAfterMs: number): string[] {
  const out: string[] = [];
  const swarms = new Set(nodes.map((n) => n.swarmId).filter((x): x is string => x !== null));
  if (swarms.size > 1) out.push(`two swarms: ${[...swarms].sort().join(' vs ')}`);
  for (const n of nodes) {
    if (n.agentRestarts !== null && n.agentRestarts > 0) out.push(`${n.name}: the agent restarted ${n.agentRestarts} time(s) in this boot`);
    if (!n.up || !rows || at - n.upSince < stuckAfterMs) continue;
    if (!rows.some((r) => r.hostname === n.name && r.status === 'Ready')) out.push(`${n.name}: up for ${Math.round((at - n.upSince) / 1000)} s and not Ready in the swarm`);
  }
  return out;
}
