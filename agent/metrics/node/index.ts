import { createNodeFiles } from '../../host/node/files.js';
import type { SampledCollector } from '../sampler.js';
import { coolingCollector, cpufreqCollector } from './cpufreq.js';
import { hwmonCollector } from './hwmon.js';
import { kernelCollectors } from './kernel.js';
import { netclassCollector } from './netclass.js';
import { timexCollector } from './timex.js';
import type { TimexReading } from '../../host/node/timex.js';
import { networkCollectors } from './network.js';

/** How old the adjtimex reading may be (it costs a python3 process; see agent/host/node/timex.ts). */
export const TIMEX_MIN_AGE_MS = 60_000;

/**
 * The rest of node_exporter's default Linux collectors (beyond cpu, loadavg,
 * meminfo, filesystem, diskstats, netdev, thermal and uname in
 * host-collectors.ts), each sampled on the interval and formatted on a scrape.
 * timex reads the live host's clock (given only when procRoot is /proc).
 */
export function createNodeCollectors(procRoot: string, sysRoot: string, opts: { timex?: () => Promise<TimexReading | null> } = {}): SampledCollector[] {
  const f = createNodeFiles(procRoot, sysRoot);
  const timex = opts.timex ? [timexCollector(opts.timex, TIMEX_MIN_AGE_MS)] : [];
  return [...kernelCollectors(f), ...networkCollectors(f), netclassCollector(f), hwmonCollector(f), cpufreqCollector(f), coolingCollector(f), ...timex];
}
