import { execFile } from 'node:child_process';
import fs from 'node:fs';
import { promisify } from 'node:util';
import type { Config } from '../../shared/config-schema.js';
import { createDiskBenchCollector, runDiskBench, type DiskBenchResult } from '../disk-bench/disk-bench.js';
import { createHostReader, type FsSpace } from '../host/reader.js';
import type { HostSnapshot } from '../host/types.js';
import type { Logger } from '../log/logger.js';
import { PiswarmError } from '../../shared/errors.js';
import { createHostCollectors } from './host-collectors.js';
import { createNodeCollectors } from './node/index.js';
import { createTextfileCollector } from './textfile/collector.js';
import { readInventory, type HostInventory } from '../host/inventory.js';
import { readTimex, type TimexReading } from '../host/node/timex.js';
import { createSampler, type SamplerClock } from './sampler.js';
import type { Collector } from './types.js';

export interface HostMetricsOptions {
  config: Pick<Config, 'metrics' | 'diskBench' | 'stateDir'>;
  log: Pick<Logger, 'debug' | 'warn' | 'info'>;
  /** Fake clock for tests; defaults to Date.now + unref'd setInterval. */
  clock?: SamplerClock;
  /** Agent version for piswarm_build_info (defaults to package.json's). */
  version?: string;
  /** Test seams over recorded procfs/sysfs: statfs and the timesyncd flag file. */
  statfs?: (mountpoint: string) => FsSpace;
  timesyncFile?: string;
  machine?: () => string;
  /** Asks timedated whether the clock is synchronised; null for never. Default: timedatectl when procRoot is /proc. */
  timedated?: (() => Promise<string>) | null;
  /** Board/OS inventory; null for none. Default: systeminformation when procRoot is /proc. */
  inventory?: (() => Promise<HostInventory>) | null;
  /** Reads adjtimex(2) for the timex series; null for never. Default: through python3 when procRoot is /proc. */
  timex?: (() => Promise<TimexReading | null>) | null;
}

const execFileP = promisify(execFile);

/** timedated over D-Bus, through its own client; bounded so a wedged bus costs 3 s per ask (at most every 5 min). */
async function askTimedatectl(): Promise<string> {
  const { stdout } = await execFileP('timedatectl', ['show', '-p', 'NTPSynchronized', '--value'], { timeout: 3000, env: { PATH: '/usr/bin:/bin', LC_ALL: 'C' } });
  return stdout;
}

/** The package.json two levels above dist/agent/metrics (or agent/metrics when run from source). */
function packageVersion(): string {
  for (const rel of ['../../../package.json', '../../package.json']) {
    try {
      const pkg = JSON.parse(fs.readFileSync(new URL(rel, import.meta.url), 'utf8')) as { name?: string; version?: string };
      if (pkg.name === 'piswarm' && typeof pkg.version === 'string') return pkg.version;
    } catch {
      // Not at this depth: try the next candidate; 'unknown' below if none matches.
      continue;
    }
  }
  return 'unknown';
}

/**
 * Host metrics and the HostSnapshot for health checks. start() takes the first
 * sample; after that the host is sampled on demand: fresh() samples again when
 * the last sample is older than config.metrics.intervalMs (a scrape, a health
 * request), never on a timer, so an idle agent reads nothing. render(extra)
 * formats the cached host families followed by other subsystems' collectors.
 */
export function createHostMetrics(opts: HostMetricsOptions) {
  const reader = createHostReader({
    procRoot: opts.config.metrics.procRoot,
    sysRoot: opts.config.metrics.sysRoot,
    ...(opts.statfs ? { statfs: opts.statfs } : {}),
    ...(opts.timesyncFile ? { timesyncFile: opts.timesyncFile } : {}),
    ...(opts.machine ? { machine: opts.machine } : {}),
  });
  // systeminformation, timedatectl and adjtimex read the live host, not procRoot: only there.
  const live = opts.config.metrics.procRoot === '/proc';
  const inventory = opts.inventory !== undefined ? opts.inventory ?? undefined : live ? readInventory : undefined;
  const timedated = opts.timedated !== undefined ? opts.timedated ?? undefined : live ? askTimedatectl : undefined;
  const host = createHostCollectors({ reader, inventory, timedated, configuredDiskDevice: opts.config.diskBench.device, version: opts.version ?? packageVersion() });
  const bench = createDiskBenchCollector(opts.config.stateDir);
  const timex = opts.timex !== undefined ? opts.timex ?? undefined : live ? () => readTimex() : undefined;
  const node = createNodeCollectors(opts.config.metrics.procRoot, opts.config.metrics.sysRoot, timex ? { timex } : {});
  const own = [...host.collectors, ...node, bench];
  // The names the agent's own collectors served in their last output (piswarm_* are all ours anyway).
  const ownNames = () => new Set(own.flatMap((c) => c.collect().map((f) => f.name)));
  const textfile = createTextfileCollector({ dir: opts.config.metrics.textfileDir, log: opts.log, ownNames });
  const collectors = [...own, textfile];
  const sampler = createSampler({
    intervalMs: opts.config.metrics.intervalMs, log: opts.log, collectors, afterSample: host.sampled, ...(opts.clock ? { clock: opts.clock } : {}),
  });

  return {
    sampler,
    collectors: collectors as Collector[],
    snapshot: (): HostSnapshot => host.snapshot(),
    start: () => sampler.sampleOnce(),
    /** Samples again if the last sample is older than maxAgeMs (default: metrics.intervalMs). */
    fresh: (maxAgeMs = opts.config.metrics.intervalMs): Promise<void> => sampler.fresh(maxAgeMs),
    stop(): void {
      sampler.stop();
      host.stop();
    },
    render: (extra: readonly Collector[] = []): string => sampler.render(extra),
    /**
     * Benchmarks config.diskBench.device, or the boot disk of the last sample, with
     * the configured bounds; persists and exports the result. Rejects with
     * PISWARM_ERR_BUSY while another run is in progress.
     */
    async runDiskBench(): Promise<DiskBenchResult> {
      const device = opts.config.diskBench.device ?? host.snapshot().bootDisk?.device;
      if (!device) throw new PiswarmError('PISWARM_ERR_DISK_BENCH', 'no boot disk found and diskBench.device is not set');
      const result = await runDiskBench({
        device, maxBytes: opts.config.diskBench.maxBytes, maxSeconds: opts.config.diskBench.maxSeconds, stateDir: opts.config.stateDir,
      });
      bench.update(result);
      opts.log.info({ device: result.device, bytesPerSecond: Math.round(result.bytesPerSecond), seconds: result.seconds }, 'disk benchmark finished');
      return result;
    },
  };
}

export type HostMetrics = ReturnType<typeof createHostMetrics>;
