/**
 * What the healing tests and bench/heal.ts read from a simulated cluster:
 * the swarm's node list as a manager's engine prints it.
 */
import * as sim from '../../../scripts/sim/cluster.js';

export interface SwarmRow {
  id: string;
  hostname: string;
  /** Ready | Down | Unknown */
  status: string;
  availability: string;
  /** Leader | Reachable | Unreachable | '' (worker) */
  manager: string;
}

/** Short timers so a test sees promotion, replacement and pruning within minutes. */
export const FAST_AUTOPILOT = {
  PISWARM_FORMATION_HOLD_OFF_MS: '2000',
  PISWARM_DISCOVERY_CONFIRM_INTERVAL_MS: '1000',
  PISWARM_AUTOPILOT_INTERVAL_MS: '1000',
  PISWARM_AUTOPILOT_STABILIZATION_MS: '5000',
  PISWARM_AUTOPILOT_DEAD_MANAGER_GRACE_MS: '15000',
  PISWARM_AUTOPILOT_DEAD_NODE_TTL_MS: '60000',
  PISWARM_AUTOPILOT_MANAGER_AVAILABILITY: 'never',
};

let lastNodeLs: { at: number; rows: SwarmRow[] } | null = null;

/** `docker node ls` on the first running node whose engine answers as a manager. */
export async function nodeLs(ref: sim.ClusterRef, names: readonly string[]): Promise<SwarmRow[] | null> {
  for (const name of names) {
    const r = await sim.exec(ref, name, ['docker', 'node', 'ls', '--format', '{{.ID}}|{{.Hostname}}|{{.Status}}|{{.Availability}}|{{.ManagerStatus}}'], { timeoutMs: 10_000 }).catch(() => null);
    if (r && r.code === 0) {
      const rows = r.stdout.trim().split('\n').filter(Boolean).map((l) => {
        const [id, hostname, status, availability, manager] = l.split('|');
        return { id: id!, hostname: hostname!, status: status!, availability: availability!, manager: manager ?? '' };
      });
      lastNodeLs = { at: Date.now(), rows };
      return rows;
    }
  }
  return null;
}

export const managers = (ls: SwarmRow[]) => ls.filter((x) => x.manager !== '');
export const reachableManagers = (ls: SwarmRow[]) => ls.filter((x) => x.manager === 'Leader' || x.manager === 'Reachable').length;
export const quorumOf = (m: number) => Math.floor(m / 2) + 1;

/**
 * Polls `fn` until it returns something truthy. On timeout the error carries
 * the last `docker node ls` any poll of this module read, so a CI log shows
 * the swarm as it was, not only that a wait ran out.
 */
export async function until<T>(what: string, fn: () => Promise<T | null | false | undefined>, ms: number, everyMs = 500): Promise<T> {
  const t0 = Date.now();
  for (;;) {
    const v = await fn().catch(() => null);
    if (v) return v;
    if (Date.now() - t0 > ms) {
      const seen = lastNodeLs ? `; last docker node ls (${new Date(lastNodeLs.at).toISOString()}):\n${lastNodeLs.rows.map((r) => `  ${r.id} ${r.hostname} ${r.status} ${r.availability} ${r.manager || '-'}`).join('\n')}` : '';
      throw new Error(`timed out after ${ms} ms waiting for ${what}${seen}`);
    }
    await new Promise((r) => setTimeout(r, everyMs));
  }
}
