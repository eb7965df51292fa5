import type { Logger } from '../log/logger.js';
import type { Clock } from '../lifecycle/clock.js';
import { formatFamilies, normalizeFamilies } from './format.js';
import type { Collector, MetricFamily } from './types.js';

/**
 * A collector whose I/O happens in sample(), on the sampler's interval. collect()
 * only turns the cached result into families, so a scrape costs formatting only.
 */
export interface SampledCollector extends Collector {
  sample?(now: number): void | Promise<void>;
}

/** The agent's clock (agent/lifecycle/clock.ts), with an interval timer instead of a one-shot one. */
export interface SamplerClock extends Pick<Clock, 'now'> {
  setInterval(fn: () => void, ms: number): unknown;
  clearInterval(handle: unknown): void;
}

export const systemClock: SamplerClock = {
  now: () => Date.now(),
  setInterval: (fn, ms) => {
    const h = setInterval(fn, ms);
    // The sampler must never keep the process alive on its own: shutdown closes the server and exits.
    h.unref();
    return h;
  },
  clearInterval: (h) => clearInterval(h as NodeJS.Timeout),
};

interface CollectorState {
  ok: boolean;
  durationSeconds: number;
  errors: number;
}

export interface SamplerOptions {
  intervalMs: number;
  clock?: SamplerClock;
  log: Pick<Logger, 'debug' | 'warn'>;
  collectors: SampledCollector[];
  /** Runs after each complete sample (e.g. to stamp a snapshot). */
  afterSample?: (now: number) => void;
}

function errorCode(err: unknown): string {
  const code = (err as { code?: unknown } | null)?.code;
  return typeof code === 'string' ? code : 'PISWARM_ERR_COLLECTOR';
}

/**
 * Samples every collector once per interval, never overlapping (a tick that finds
 * the previous sample still running is skipped and counted). A collector whose
 * sample() throws is reported with piswarm_collector_success 0 and its values are
 * DROPPED until it samples successfully again: stale numbers presented as current
 * would be worse than a gap, and that is what node_exporter does too.
 */
export function createSampler(opts: SamplerOptions) {
  const clock = opts.clock ?? systemClock;
  const state = new Map<string, CollectorState>();
  let running: Promise<void> | null = null;
  let handle: unknown = null;
  let overruns = 0;
  let samples = 0;
  let lastAt = -Infinity;

  const stateOf = (name: string): CollectorState => {
    let s = state.get(name);
    if (!s) {
      s = { ok: false, durationSeconds: 0, errors: 0 };
      state.set(name, s);
    }
    return s;
  };

  const fail = (name: string, s: CollectorState, err: unknown, phase: string) => {
    s.ok = false;
    s.errors++;
    opts.log.debug({ collector: name, phase, code: errorCode(err), err: (err as Error)?.message }, 'collector failed');
  };

  async function sampleOnce(): Promise<void> {
    if (running) {
      overruns++;
      return running;
    }
    running = (async () => {
      for (const c of opts.collectors) {
        const s = stateOf(c.name);
        if (!c.sample) {
          s.ok = true;
          continue;
        }
        const t0 = performance.now();
        try {
          await c.sample(clock.now());
          s.ok = true;
        } catch (err) {
          fail(c.name, s, err, 'sample');
        }
        s.durationSeconds = (performance.now() - t0) / 1000;
      }
      samples++;
      lastAt = clock.now();
      opts.afterSample?.(lastAt);
    })();
    try {
      await running;
    } finally {
      running = null;
    }
  }

  function collectOne(c: Collector, out: MetricFamily[], timed: boolean): void {
    const s = stateOf(c.name);
    if (!timed && !s.ok) return; // a failed sample: its values are dropped (see above)
    const t0 = performance.now();
    try {
      out.push(...c.collect());
      if (timed) s.ok = true;
    } catch (err) {
      fail(c.name, s, err, 'collect');
    }
    if (timed) s.durationSeconds = (performance.now() - t0) / 1000;
  }

  function families(extra: readonly Collector[] = []): MetricFamily[] {
    const out: MetricFamily[] = [];
    for (const c of opts.collectors) collectOne(c, out, false);
    // Collectors of other subsystems have no sample phase here: their collect() is what we time.
    for (const c of extra) collectOne(c, out, true);
    const names = [...opts.collectors, ...extra].map((c) => c.name);
    const unique = [...new Set(names)];
    out.push(
      {
        name: 'piswarm_collector_success', type: 'gauge', help: 'Whether the collector\'s last sample succeeded (1) or failed (0)',
        samples: unique.map((n) => ({ labels: { collector: n }, value: stateOf(n).ok ? 1 : 0 })),
      },
      {
        name: 'piswarm_collector_duration_seconds', type: 'gauge', help: 'How long the collector\'s last sample took',
        samples: unique.map((n) => ({ labels: { collector: n }, value: stateOf(n).durationSeconds })),
      },
      {
        name: 'piswarm_collector_errors_total', type: 'counter', help: 'Failed samples per collector since the agent started',
        samples: unique.map((n) => ({ labels: { collector: n }, value: stateOf(n).errors })),
      },
      // node_exporter's own meta series for the host collectors (node_exporter.go), so its dashboards' "scrape" panels work;
      // the duration is the last sample's, since that is where the work happens.
      {
        name: 'node_scrape_collector_success', type: 'gauge', help: 'node_exporter: Whether a collector succeeded.',
        samples: opts.collectors.map((c) => ({ labels: { collector: c.name }, value: stateOf(c.name).ok ? 1 : 0 })),
      },
      {
        name: 'node_scrape_collector_duration_seconds', type: 'gauge', help: 'node_exporter: Duration of a collector scrape.',
        samples: opts.collectors.map((c) => ({ labels: { collector: c.name }, value: stateOf(c.name).durationSeconds })),
      },
      { name: 'piswarm_sampler_overruns_total', type: 'counter', help: 'Sampling ticks skipped because the previous sample was still running', samples: [{ value: overruns }] },
    );
    return out;
  }

  return {
    /** Takes the first sample (so /metrics and /health have data when READY=1 is sent), then samples on the interval. */
    async start(): Promise<void> {
      await sampleOnce();
      if (handle === null) {
        handle = clock.setInterval(() => {
          void sampleOnce();
        }, opts.intervalMs);
      }
    },
    stop(): void {
      if (handle !== null) clock.clearInterval(handle);
      handle = null;
    },
    sampleOnce,
    /** Samples now if the last sample is older than maxAgeMs (or none finished yet); else resolves at once. */
    fresh(maxAgeMs: number): Promise<void> {
      return clock.now() - lastAt >= maxAgeMs ? sampleOnce() : Promise.resolve();
    },
    families,
    /** Formats the cached state; problems from odd collectors are logged and dropped, never fail the scrape. */
    render(extra: readonly Collector[] = []): string {
      const { families: merged, problems } = normalizeFamilies(families(extra));
      if (problems.length > 0) opts.log.warn({ code: 'PISWARM_ERR_COLLECTOR', problems }, 'dropped invalid metric families');
      return formatFamilies(merged);
    },
    stats: () => ({ samples, overruns, collectors: Object.fromEntries(state) }),
  };
}

export type Sampler = ReturnType<typeof createSampler>;
