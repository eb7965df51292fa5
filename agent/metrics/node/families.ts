import type { SampledCollector } from '../sampler.js';
import type { MetricFamily, MetricSample, MetricType } from '../types.js';

export const family = (type: MetricType) => (name: string, help: string, samples: MetricSample[]): MetricFamily => ({ name, help, type, samples });
export const gauge = family('gauge');
export const counter = family('counter');
export const untyped = family('untyped');

/** A family with one unlabelled sample, or nothing when the value is unknown (absent, never zero). */
export function single(type: MetricType, name: string, help: string, value: number | null | undefined): MetricFamily[] {
  return value === null || value === undefined ? [] : [family(type)(name, help, [{ value }])];
}

/**
 * The cached-sample shape every node collector shares: sample() reads and
 * parses (clearing the old value first, so a failure drops it), collect() only
 * formats. A null sample means "not on this host": no series, not a failure.
 */
export function sampled<T>(name: string, read: () => T | null, format: (value: T) => MetricFamily[]): SampledCollector {
  let value: T | null = null;
  return {
    name,
    sample() {
      value = null;
      value = read();
    },
    collect: () => (value === null ? [] : format(value)),
  };
}

/** Parses a file that may not exist on this kernel (no CONFIG_..., no IPv6): null when it does not. */
export const orNull = <T>(text: string | null, parse: (t: string) => T): T | null => (text === null ? null : parse(text));
