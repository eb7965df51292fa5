import type { NodeFiles } from '../../host/node/files.js';
import type { SampledCollector } from '../sampler.js';
import type { MetricFamily } from '../types.js';
import { gauge, sampled } from './families.js';

// collector/cpufreq_linux.go: kHz files under /sys/devices/system/cpu/cpuN/cpufreq, exported in Hz.
const FILES: ReadonlyArray<[file: string, metric: string, help: string]> = [
  ['cpuinfo_cur_freq', 'node_cpu_frequency_hertz', 'Current CPU thread frequency in hertz.'],
  ['cpuinfo_max_freq', 'node_cpu_frequency_max_hertz', 'Maximum CPU thread frequency in hertz.'],
  ['cpuinfo_min_freq', 'node_cpu_frequency_min_hertz', 'Minimum CPU thread frequency in hertz.'],
  ['scaling_cur_freq', 'node_cpu_scaling_frequency_hertz', 'Current scaled CPU thread frequency in hertz.'],
  ['scaling_max_freq', 'node_cpu_scaling_frequency_max_hertz', 'Maximum scaled CPU thread frequency in hertz.'],
  ['scaling_min_freq', 'node_cpu_scaling_frequency_min_hertz', 'Minimum scaled CPU thread frequency in hertz.'],
];

export function cpufreqCollector(f: NodeFiles): SampledCollector {
  const base = f.sys('devices', 'system', 'cpu');
  return sampled('cpufreq', () => {
    const cpus = (f.list(base) ?? []).filter((d) => /^cpu\d+$/.test(d)).sort((a, b) => Number(a.slice(3)) - Number(b.slice(3)));
    const rows = cpus.map((d) => ({ cpu: d.slice(3), kHz: FILES.map(([file]) => Number(f.attr(`${base}/${d}/cpufreq/${file}`) ?? NaN)) }));
    return rows.some((r) => r.kHz.some(Number.isFinite)) ? rows : null;
  }, (rows) => FILES.map(([, metric, help], i): MetricFamily => gauge(metric, help,
    rows.filter((r) => Number.isFinite(r.kHz[i])).map((r) => ({ labels: { cpu: r.cpu }, value: (r.kHz[i] as number) * 1000 }))))
    .filter((x) => x.samples.length > 0));
}

/** collector/thermal_zone_linux.go's cooling devices (a Pi's cpufreq cooling, a fan). */
export function coolingCollector(f: NodeFiles): SampledCollector {
  const base = f.sys('class', 'thermal');
  return sampled('cooling_device', () => {
    const devs = (f.list(base) ?? []).filter((d) => /^cooling_device\d+$/.test(d)).sort();
    const rows = devs.map((d) => ({
      name: d.slice('cooling_device'.length), type: f.attr(`${base}/${d}/type`) ?? '',
      cur: Number(f.attr(`${base}/${d}/cur_state`) ?? NaN), max: Number(f.attr(`${base}/${d}/max_state`) ?? NaN),
    })).filter((r) => Number.isFinite(r.cur) && Number.isFinite(r.max));
    return rows.length === 0 ? null : rows;
  }, (rows) => [
    gauge('node_cooling_device_cur_state', 'Current throttle state of the cooling device', rows.map((r) => ({ labels: { name: r.name, type: r.type }, value: r.cur }))),
    gauge('node_cooling_device_max_state', 'Maximum throttle state of the cooling device', rows.map((r) => ({ labels: { name: r.name, type: r.type }, value: r.max }))),
  ]);
}
