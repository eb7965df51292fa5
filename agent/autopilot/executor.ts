import { PiswarmError, isPiswarmError } from '../../shared/errors.js';
import type { DockerEngine } from '../docker/engine.js';
import { stepKey, type ActionStep } from './planner.js';
import { LABEL_AUTOPILOT_DRAINED } from './view.js';

/** Why the engine (or our own guard) did not carry out a step: the `reason` label of the refusal counter. */
export type RefusalReason =
  | 'quorum' // the engine's own Raft guard: the step would lose quorum
  | 'cannot-remove' // e.g. a manager must be demoted first, or the node is not down
  | 'not-found' // the node left or was removed meanwhile
  | 'conflict' // node spec changed under us (update out of sequence)
  | 'not-manager' // we lost our manager role mid-step
  | 'unreachable' // dockerd did not answer
  | 'unsafe' // our own last-moment guard
  | 'engine-error'; // anything else the engine said

export interface Refusal {
  reason: RefusalReason;
  code: string;
  statusCode: number | null;
  engineMessage: string;
}

export function classifyRefusal(err: unknown): Refusal {
  const code = isPiswarmError(err) ? err.code : 'PISWARM_ERR_INTERNAL';
  const details = (isPiswarmError(err) ? err.details : null) as { statusCode?: number | null; engineMessage?: string } | null;
  const statusCode = details?.statusCode ?? null;
  const engineMessage = String(details?.engineMessage ?? (err as Error)?.message ?? err);
  const m = engineMessage.toLowerCase();
  let reason: RefusalReason;
  if (code === 'PISWARM_ERR_AUTOPILOT_UNSAFE') reason = 'unsafe';
  else if (code === 'PISWARM_ERR_NOT_MANAGER') reason = 'not-manager';
  else if (code === 'PISWARM_ERR_DOCKER_UNREACHABLE') reason = 'unreachable';
  else if (/quorum|does not have a leader/.test(m)) reason = 'quorum';
  else if (statusCode === 404 || /not found|no such node/.test(m)) reason = 'not-found';
  else if (/out of sequence|update conflict|version/.test(m)) reason = 'conflict';
  else if (/can't remove|cannot remove|must be demoted|is a cluster manager|is not down|rpc error.*remove/.test(m)) reason = 'cannot-remove';
  else reason = 'engine-error';
  return { reason, code, statusCode, engineMessage };
}

/** Runs one step through the engine; throws what the engine threw (a PiswarmError). */
export async function executeStep(docker: DockerEngine, step: ActionStep): Promise<void> {
  switch (step.kind) {
    case 'promote':
      return docker.updateNode(step.nodeId, { role: 'manager' });
    case 'demote':
      return docker.updateNode(step.nodeId, { role: 'worker' });
    case 'remove':
      // A forced removal of a live node cuts it off from a working swarm:
      // only a node the engine itself reports down is ever removed.
      if (step.nodeState !== 'down') {
        throw new PiswarmError('PISWARM_ERR_AUTOPILOT_UNSAFE', `refusing to remove ${step.hostname}: it is ${step.nodeState}, not down`, {
          details: { nodeId: step.nodeId, state: step.nodeState },
        });
      }
      return docker.removeNode(step.nodeId, true);
    case 'drain':
      return docker.updateNode(step.nodeId, { availability: 'drain', labels: { [LABEL_AUTOPILOT_DRAINED]: 'true' } });
    case 'activate':
      return docker.updateNode(step.nodeId, { availability: 'active', labels: { [LABEL_AUTOPILOT_DRAINED]: 'false' } });
  }
}

/**
 * Capped exponential backoff with jitter per step key: a refused step is not
 * planned again until its time passes, so one refusal neither spins in a
 * loop nor blocks unrelated steps (the planner picks the next one).
 */
export class RefusalBackoff {
  private readonly entries = new Map<string, { failures: number; until: number }>();

  constructor(
    private readonly baseMs: number,
    private readonly maxMs: number,
    private readonly random: () => number = Math.random,
  ) {}

  /** Records a refusal; returns the time until which the step is held back. */
  refused(step: ActionStep, now: number): number {
    const key = stepKey(step.kind, step.nodeId);
    const failures = (this.entries.get(key)?.failures ?? 0) + 1;
    const full = Math.min(this.maxMs, this.baseMs * 2 ** Math.min(failures - 1, 30));
    // "Equal jitter": at least half the delay, so retries stay spaced out.
    const until = now + Math.round(full / 2 + (full / 2) * this.random());
    this.entries.set(key, { failures, until });
    return until;
  }

  succeeded(step: ActionStep): void {
    this.entries.delete(stepKey(step.kind, step.nodeId));
  }

  /** Held-back steps for the planner, forgetting the ones long expired. */
  blocked(now: number): Record<string, number> {
    const out: Record<string, number> = {};
    for (const [key, e] of this.entries) {
      // Keep the failure count for a while after expiry so a step refused
      // again doubles its wait instead of starting over.
      if (now > e.until + this.maxMs) this.entries.delete(key);
      else if (e.until > now) out[key] = e.until;
    }
    return out;
  }
}
