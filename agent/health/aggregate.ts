import type { CheckResult, HealthCheck, HealthStatus } from './types.js';

export interface HealthDocument {
  status: HealthStatus;
  version: string;
  releaseId: string;
  serviceId: string;
  description: string;
  checks: Record<string, CheckResult[]>;
}

const RANK: Record<HealthStatus, number> = { pass: 0, warn: 1, fail: 2 };

/** The worst status wins; no checks at all is a pass (the agent itself answers). */
export function worst(statuses: Iterable<HealthStatus>): HealthStatus {
  let out: HealthStatus = 'pass';
  for (const s of statuses) if (RANK[s] > RANK[out]) out = s;
  return out;
}

/**
 * Runs every check over cached state. A check that throws is a bug in that
 * check, not a fact about the host: it reports `fail` with a fixed output
 * (the error goes to the log through onCheckError, never to the response).
 */
export function evaluate(
  checks: readonly HealthCheck[],
  meta: { version: string; serviceId: string },
  onCheckError: (name: string, err: unknown) => void,
): HealthDocument {
  const results: Record<string, CheckResult[]> = {};
  for (const check of checks) {
    let rs: CheckResult[];
    try {
      rs = check.run();
    } catch (err) {
      onCheckError(check.name, err);
      rs = [{ status: 'fail', output: 'the check itself failed; see the agent journal' }];
    }
    results[check.name] = [...(results[check.name] ?? []), ...rs];
  }
  return {
    status: worst(Object.values(results).flat().map((r) => r.status)),
    version: meta.version.split('.')[0] ?? meta.version,
    releaseId: meta.version,
    serviceId: meta.serviceId,
    description: 'piswarm agent',
    checks: results,
  };
}

export const httpStatusFor = (s: HealthStatus): number => (s === 'fail' ? 503 : 200);
