/**
 * Is a newly installed agent healthy? Pure: the root installer
 * (agent/upgrade/apply.ts) samples the local agent before and after and asks
 * this. Healthy means: the new release answers (READY, /health names its
 * version), /health does not fail (unless it failed before), and the node is
 * back where it was: in the swarm if it was, with gossip peers if it had them.
 */
export interface AgentSample {
  /** systemctl is-active piswarm: active once the agent sent READY=1. */
  active: boolean;
  /** /health's releaseId and status; null when /health did not answer. */
  version: string | null;
  health: 'pass' | 'warn' | 'fail' | null;
  /** /v1/formation's phase. */
  phase: string | null;
  /** piswarm_gossip_members{state="alive"} (itself included). */
  alive: number | null;
}

const IN_SWARM = new Set(['member', 'manager']);

export function probeVerdict(before: AgentSample | null, after: AgentSample, version: string): { ok: boolean; why: string } {
  if (!after.active) return { ok: false, why: 'piswarm.service is not active (no READY from the new agent)' };
  if (after.version === null) return { ok: false, why: '/health does not answer' };
  if (after.version !== version) return { ok: false, why: `/health names release ${after.version}, not ${version}` };
  if (after.health === 'fail' && before?.health !== 'fail') return { ok: false, why: '/health fails' };
  if (before?.phase && IN_SWARM.has(before.phase) && !(after.phase && IN_SWARM.has(after.phase))) return { ok: false, why: `not back in the swarm (phase ${after.phase ?? 'unknown'}, was ${before.phase})` };
  if ((before?.alive ?? 0) >= 2 && (after.alive ?? 0) < 2) return { ok: false, why: 'no gossip peer alive yet' };
  return { ok: true, why: `READY, /health ${after.health}, phase ${after.phase ?? 'unknown'}, ${after.alive ?? 0} alive gossip members` };
}
