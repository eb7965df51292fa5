import type { Config } from '../shared/config-schema.js';
import type { Logger } from './log/logger.js';
import type { HostPort } from './agent.js';
import { createHostMetrics } from './metrics/host-metrics.js';
import { hostChecks } from './health/host-checks.js';
import type { HealthCheck } from './health/types.js';
import { loadDiskBenchResult } from './disk-bench/disk-bench.js';
import type { HostFacts } from './membership/subsystem.js';
import type { HostSnapshot } from './host/types.js';

/**
 * Gossip facts (temperature, under-voltage) may be this old: they are read from
 * the last sample and, when it is older, a new one is taken in the background
 * for the next round, so an unscraped agent samples once a minute, not on a timer.
 */
const FACTS_MAX_AGE_MS = 60_000;

/** Adapts the host metrics sampler, host checks and disk benchmark to what the agent needs. */
export function createHostPort(config: Readonly<Config>, log: Logger, version: string): HostPort & { facts: () => HostFacts; snapshot: () => HostSnapshot } {
  const host = createHostMetrics({ config, log, version });
  // One check per health key; the results are computed once per sample, not once per key.
  let cached: { at: number; results: ReturnType<typeof hostChecks> } | null = null;
  const results = () => {
    const snap = host.snapshot();
    if (cached?.at !== snap.at) cached = { at: snap.at, results: hostChecks(snap, config.health) };
    return cached.results;
  };
  const checks: HealthCheck[] = Object.keys(results()).map((name) => ({ name, run: () => results()[name] ?? [] }));
  // The last benchmark is read once at start and replaced after each run.
  let benchBps: number | undefined;
  return {
    start: async () => {
      try {
        benchBps = loadDiskBenchResult(config.stateDir)?.bytesPerSecond;
      } catch (err) {
        // A broken result file costs the last figure, never the agent: the
        // disk_bench collector reports the same error as a failed sample.
        log.warn({ err }, 'last disk benchmark result unreadable; run `piswarm bench-disk` again');
      }
      await host.start();
    },
    stop: () => host.stop(),
    fresh: () => host.fresh(),
    render: (extra) => host.render(extra),
    snapshot: () => host.snapshot(),
    checks,
    diskBench: async () => {
      const r = await host.runDiskBench();
      benchBps = r.bytesPerSecond;
      return r;
    },
    facts: () => {
      void host.fresh(FACTS_MAX_AGE_MS);
      const snap = host.snapshot();
      const f: HostFacts = {};
      if (benchBps !== undefined) f.diskBps = benchBps;
      if (snap.throttling) f.undervoltage = snap.throttling.now.under_voltage || (snap.throttling.sinceBoot?.under_voltage ?? false);
      if (snap.maxTemperatureCelsius !== null) f.tempC = snap.maxTemperatureCelsius;
      return f;
    },
  };
}
