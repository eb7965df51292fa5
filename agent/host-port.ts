import type { Config } from '../shared/config-schema.js';
import type { Logger } from './log/logger.js';
import type { HostPort } from './agent.js';
import { createHostMetrics } from './metrics/host-metrics.js';
import { hostChecks } from './health/host-checks.js';
import type { HealthCheck } from './health/types.js';

/** Adapts the host metrics sampler, host checks and disk benchmark to what the agent needs. */
export function createHostPort(config: Readonly<Config>, log: Logger, version: string): HostPort {
  const host = createHostMetrics({ config, log, version });
  // One check per health key, each reading the same cached snapshot.
  const names = Object.keys(hostChecks(host.snapshot(), config.health));
  const checks: HealthCheck[] = names.map((name) => ({ name, run: () => hostChecks(host.snapshot(), config.health)[name] ?? [] }));
  return {
    start: () => host.start(),
    stop: () => host.stop(),
    render: (extra) => host.render(extra),
    checks,
    diskBench: () => host.runDiskBench(),
  };
}
