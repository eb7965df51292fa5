import type { MetricFamily } from './types.js';

/** The metric-family helpers every collector uses: one sample, or one per label value. */

export const counter = (name: string, help: string, value: number): MetricFamily => ({ name, help, type: 'counter', samples: [{ value }] });

export const gauge = (name: string, help: string, value: number): MetricFamily => ({ name, help, type: 'gauge', samples: [{ value }] });

/** A counter with one sample per entry of `m`, labelled `label`. */
export const countersBy = (name: string, help: string, m: ReadonlyMap<string, number>, label: string): MetricFamily =>
  ({ name, help, type: 'counter', samples: [...m.entries()].map(([k, v]) => ({ labels: { [label]: k }, value: v })) });
