/**
 * The metrics contract every subsystem speaks. A collector turns its cached
 * state into metric families; the exposition formatter (format.ts) turns
 * families into Prometheus text. Collectors must not do I/O in collect():
 * sampling happens on an interval elsewhere, a scrape only formats.
 */
export type MetricType = 'counter' | 'gauge' | 'untyped';

export interface MetricSample {
  labels?: Readonly<Record<string, string>>;
  value: number;
  /** Appended to the family name for histogram/summary parts, e.g. '_bucket'. */
  suffix?: string;
}

export interface MetricFamily {
  name: string;
  help: string;
  type: MetricType | 'histogram' | 'summary';
  samples: MetricSample[];
}

export interface Collector {
  /** Short name, used as the `collector` label of piswarm_collector_* series. */
  readonly name: string;
  collect(): MetricFamily[];
}
