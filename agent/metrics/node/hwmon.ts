import path from 'node:path';
import type { NodeFiles } from '../../host/node/files.js';
import type { SampledCollector } from '../sampler.js';
import type { MetricFamily, MetricType } from '../types.js';
import { family, sampled } from './families.js';

// collector/hwmon_linux.go: sensor files are <type><id>_<property>.
const FILENAME = /^([^0-9]+)([0-9]*)?(?:_(.+))?$/;
const SENSOR_TYPES = new Set(['vrm', 'beep_enable', 'update_interval', 'in', 'cpu', 'fan', 'pwm', 'temp', 'curr', 'power', 'energy', 'humidity', 'intrusion']);

export const cleanMetricName = (s: string) => s.trim().toLowerCase().replace(/[^a-z0-9:_]/g, '_').replace(/^_+|_+$/g, '');

interface Chip { chip: string; chipName: string | null; sensors: Map<string, Map<string, string>> }

/** hwmonName(): the device's parent and name (stable across module load order), else the name file, else hwmonN. */
export function chipId(f: NodeFiles, dir: string): string {
  const dev = f.realpath(path.join(dir, 'device'));
  if (dev !== null) {
    const name = cleanMetricName(path.basename(dev));
    const type = cleanMetricName(path.basename(path.dirname(dev)));
    if (type !== '' && name !== '') return `${type}_${name}`;
    if (name !== '') return name;
  }
  const named = cleanMetricName(f.attr(path.join(dir, 'name')) ?? '');
  return named !== '' ? named : cleanMetricName(path.basename(f.realpath(dir) ?? dir));
}

function readChip(f: NodeFiles, dir: string): Chip {
  const sensors = new Map<string, Map<string, string>>();
  // Older drivers keep their sensor files under device/; node_exporter reads both.
  for (const d of [path.join(dir, 'device'), dir]) {
    for (const file of f.list(d) ?? []) {
      const m = FILENAME.exec(file);
      if (!m || !SENSOR_TYPES.has(m[1] as string)) continue;
      const value = f.attr(path.join(d, file));
      if (value === null) continue;
      const sensor = `${m[1]}${Number(m[2] ?? '0')}`;
      if (!sensors.has(sensor)) sensors.set(sensor, new Map());
      sensors.get(sensor)?.set(m[3] ?? '', value);
    }
  }
  const name = f.attr(path.join(dir, 'name'));
  return { chip: chipId(f, dir), chipName: name === null || name === '' ? null : name, sensors };
}

/** The name, type, help and scale node_exporter gives one sensor element; null for what it does not export this way. */
export function elementMetric(type: string, element: string, hasBare: boolean): { name: string; type: MetricType; scale: number } | null {
  let name = `node_hwmon_${type}`;
  if (element === 'input') name += hasBare ? '_input' : '';
  else if (element !== '') name += `_${cleanMetricName(element)}`;
  if (element === 'fault' || element === 'alarm') return { name, type: 'gauge', scale: 1 };
  if (element === 'beep') return { name: `${name}_enabled`, type: 'gauge', scale: 1 };
  if (type === 'in' || type === 'cpu') return { name: `${name}_volts`, type: 'gauge', scale: 0.001 };
  if (type === 'temp' && element !== 'type') return { name: `${name}_celsius`, type: 'gauge', scale: 0.001 };
  if (type === 'curr') return { name: `${name}_amps`, type: 'gauge', scale: 0.001 };
  if (type === 'energy') return { name: `${name}_joule_total`, type: 'counter', scale: 1e-6 };
  if (type === 'power' && element === 'accuracy') return { name, type: 'gauge', scale: 1e-6 };
  if (type === 'power' && /^average_interval(_min|_max)?$/.test(element)) return { name: `${name}_seconds`, type: 'gauge', scale: 0.001 };
  if (type === 'power') return { name: `${name}_watt`, type: 'gauge', scale: 1e-6 };
  if (type === 'humidity') return { name, type: 'gauge', scale: 1e-6 };
  if (type === 'fan' && ['input', 'min', 'max', 'target'].includes(element)) return { name: `${name}_rpm`, type: 'gauge', scale: 1 };
  if (['vrm', 'beep_enable', 'update_interval', 'intrusion'].includes(type)) return null; // node_exporter's special cases; not seen on a Pi
  return { name, type: 'gauge', scale: 1 };
}

export function hwmonFamilies(chips: readonly Chip[]): MetricFamily[] {
  const byName = new Map<string, MetricFamily>();
  const push = (name: string, type: MetricType, help: string, labels: Record<string, string>, value: number) => {
    let fam = byName.get(name);
    if (!fam) byName.set(name, (fam = family(type)(name, help, [])));
    fam.samples.push({ labels, value });
  };
  for (const c of chips) {
    if (c.chipName !== null) push('node_hwmon_chip_names', 'gauge', 'Annotation metric for human-readable chip names', { chip: c.chip, chip_name: c.chipName }, 1);
    for (const [sensor, elements] of [...c.sensors].sort(([a], [b]) => (a < b ? -1 : 1))) {
      const type = (FILENAME.exec(sensor) as RegExpExecArray)[1] as string;
      const label = elements.get('label');
      if (label !== undefined) push('node_hwmon_sensor_label', 'gauge', 'Label for given chip and sensor', { chip: c.chip, sensor, label }, 1);
      for (const [element, raw] of elements) {
        const m = element === 'label' ? null : elementMetric(type, element, elements.has(''));
        const v = Number(raw);
        if (m === null || raw === '' || !Number.isFinite(v)) continue;
        push(m.name, m.type, `Hardware monitor ${type} element ${element || 'input'}`, { chip: c.chip, sensor }, v * m.scale);
      }
    }
  }
  return [...byName.values()];
}

export function hwmonCollector(f: NodeFiles): SampledCollector {
  const base = f.sys('class', 'hwmon');
  return sampled('hwmon', () => {
    const names = f.list(base);
    return names === null ? null : names.sort().map((n) => readChip(f, path.join(base, n)));
  }, hwmonFamilies);
}
