import { createNodeFiles } from '../../host/node/files.js';
import type { SampledCollector } from '../sampler.js';
import { coolingCollector, cpufreqCollector } from './cpufreq.js';
import { hwmonCollector } from './hwmon.js';
import { kernelCollectors } from './kernel.js';
import { netclassCollector } from './netclass.js';
import { networkCollectors } from './network.js';

/**
 * The rest of node_exporter's default Linux collectors (beyond cpu, loadavg,
 * meminfo, filesystem, diskstats, netdev, thermal and uname in
 * host-collectors.ts), each sampled on the interval and formatted on a scrape.
 */
export function createNodeCollectors(procRoot: string, sysRoot: string): SampledCollector[] {
  const f = createNodeFiles(procRoot, sysRoot);
  return [...kernelCollectors(f), ...networkCollectors(f), netclassCollector(f), hwmonCollector(f), cpufreqCollector(f), coolingCollector(f)];
}
