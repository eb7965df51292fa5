import { PiswarmError } from '../../shared/errors.js';
import type { MetricFamily, MetricSample } from './types.js';

/**
 * Prometheus text exposition format 0.0.4
 * (prometheus.io/docs/instrumenting/exposition_formats). Families come out in
 * registration order, samples in the order collectors produced them.
 */

const METRIC_NAME = /^[a-zA-Z_:][a-zA-Z0-9_:]*$/;
const LABEL_NAME = /^[a-zA-Z_][a-zA-Z0-9_]*$/;

export function escapeHelp(s: string): string {
  return s.replace(/\\/g, '\\\\').replace(/\n/g, '\\n');
}

export function escapeLabelValue(s: string): string {
  return s.replace(/\\/g, '\\\\').replace(/"/g, '\\"').replace(/\n/g, '\\n');
}

/** Go's ParseFloat spellings for the specials; integers never in exponent form while exact. */
export function formatValue(v: number): string {
  if (Number.isNaN(v)) return 'NaN';
  if (v === Infinity) return '+Inf';
  if (v === -Infinity) return '-Inf';
  if (Number.isSafeInteger(v)) return v === 0 ? '0' : String(v); // also turns -0 into 0
  return String(v);
}

/**
 * Identity of a series within its family: suffix plus labels in name order, each value
 * length-prefixed so no value can imitate a separator. Runs for every sample of every
 * scrape, so no sort for the common single label and no JSON.stringify.
 */
function sampleKey(s: MetricSample): string {
  const labels = s.labels;
  let key = `${s.suffix ?? ''}{`;
  if (!labels) return key;
  const names = Object.keys(labels);
  if (names.length > 1) names.sort();
  for (const n of names) {
    const v = labels[n] as string;
    key += `${n}=${v.length}:${v},`;
  }
  return key;
}

export interface NormalizeResult {
  families: MetricFamily[];
  /** One line per dropped family or sample, with the reason. */
  problems: string[];
}

/**
 * Merges families that share a name and type (two collectors may both contribute to
 * e.g. piswarm_collector_success), drops invalid names, type conflicts and duplicate
 * series. A scrape must never fail because one subsystem emitted something odd, so
 * this reports problems instead of throwing; renderFamilies() is the strict variant.
 */
export function normalizeFamilies(input: readonly MetricFamily[]): NormalizeResult {
  const problems: string[] = [];
  const byName = new Map<string, { family: MetricFamily; keys: Set<string> }>();
  for (const f of input) {
    if (!METRIC_NAME.test(f.name)) {
      problems.push(`invalid metric name ${JSON.stringify(f.name)}`);
      continue;
    }
    let entry = byName.get(f.name);
    if (entry && entry.family.type !== f.type) {
      problems.push(`metric ${f.name} registered as ${entry.family.type} and ${f.type}`);
      continue;
    }
    if (!entry) {
      entry = { family: { name: f.name, help: f.help, type: f.type, samples: [] }, keys: new Set() };
      byName.set(f.name, entry);
    }
    for (const s of f.samples) {
      const bad = Object.keys(s.labels ?? {}).find((k) => !LABEL_NAME.test(k) || k.startsWith('__'));
      if (bad !== undefined) {
        problems.push(`metric ${f.name}: invalid label name ${JSON.stringify(bad)}`);
        continue;
      }
      if (s.suffix !== undefined && !/^[a-zA-Z0-9_:]*$/.test(s.suffix)) {
        problems.push(`metric ${f.name}: invalid suffix ${JSON.stringify(s.suffix)}`);
        continue;
      }
      const key = sampleKey(s);
      if (entry.keys.has(key)) {
        problems.push(`metric ${f.name}: duplicate series ${key}`);
        continue;
      }
      entry.keys.add(key);
      entry.family.samples.push(s);
    }
  }
  return { families: [...byName.values()].map((e) => e.family), problems };
}

/** Formats already-normalized families. */
export function formatFamilies(families: readonly MetricFamily[]): string {
  const out: string[] = [];
  for (const f of families) {
    out.push(`# HELP ${f.name} ${escapeHelp(f.help)}`, `# TYPE ${f.name} ${f.type}`);
    for (const s of f.samples) {
      const labels = Object.entries(s.labels ?? {});
      const l = labels.length === 0 ? '' : `{${labels.map(([k, v]) => `${k}="${escapeLabelValue(v)}"`).join(',')}}`;
      out.push(`${f.name}${s.suffix ?? ''}${l} ${formatValue(s.value)}`);
    }
  }
  return out.length === 0 ? '' : out.join('\n') + '\n';
}

/**
 * Strict: throws PISWARM_ERR_COLLECTOR on anything normalizeFamilies would drop,
 * so a test sees a bad family instead of a silently shorter scrape.
 */
export function renderFamilies(families: readonly MetricFamily[]): string {
  const { families: merged, problems } = normalizeFamilies(families);
  if (problems.length > 0) {
    throw new PiswarmError('PISWARM_ERR_COLLECTOR', `invalid metric families: ${problems.join('; ')}`, { details: { problems } });
  }
  return formatFamilies(merged);
}
