import type { TimexReading } from '../../host/node/timex.js';
import type { SampledCollector } from '../sampler.js';
import type { MetricFamily } from '../types.js';
import { counter, gauge } from './families.js';

/** collector/timex.go: the status bit that says offset and jitter are in nanoseconds (else microseconds). */
const STA_NANO = 0x2000;
/** adjtimex's TIME_ERROR: the clock is not synchronised. */
const TIME_ERROR = 5;
/** Frequencies are in ppm with a 16-bit fraction (adjtimex(2), NOTES). */
const PPM16FRAC = 1_000_000 * 65_536;

/** The 17 series of node_exporter 1.5's timex collector, with its names, types, help and units. */
export function timexFamilies(t: TimexReading): MetricFamily[] {
  const divisor = (t.status & STA_NANO) !== 0 ? 1e9 : 1e6;
  const g = (name: string, help: string, value: number) => gauge(`node_timex_${name}`, help, [{ value }]);
  const c = (name: string, help: string, value: number) => counter(`node_timex_${name}`, help, [{ value }]);
  return [
    g('sync_status', 'Is clock synchronized to a reliable server (1 = yes, 0 = no).', t.state === TIME_ERROR ? 0 : 1),
    g('offset_seconds', 'Time offset in between local system and reference clock.', t.offset / divisor),
    g('frequency_adjustment_ratio', 'Local clock frequency adjustment.', 1 + t.freq / PPM16FRAC),
    g('maxerror_seconds', 'Maximum error in seconds.', t.maxerror / 1e6),
    g('estimated_error_seconds', 'Estimated error in seconds.', t.esterror / 1e6),
    g('status', 'Value of the status array bits.', t.status),
    g('loop_time_constant', 'Phase-locked loop time constant.', t.constant),
    g('tick_seconds', 'Seconds between clock ticks.', t.tick / 1e6),
    g('pps_frequency_hertz', 'Pulse per second frequency.', t.ppsfreq / PPM16FRAC),
    g('pps_jitter_seconds', 'Pulse per second jitter.', t.jitter / divisor),
    g('pps_shift_seconds', 'Pulse per second interval duration.', t.shift),
    g('pps_stability_hertz', 'Pulse per second stability, average of recent frequency changes.', t.stabil / PPM16FRAC),
    c('pps_jitter_total', 'Pulse per second count of jitter limit exceeded events.', t.jitcnt),
    c('pps_calibration_total', 'Pulse per second count of calibration intervals.', t.calcnt),
    c('pps_error_total', 'Pulse per second count of calibration errors.', t.errcnt),
    c('pps_stability_exceeded_total', 'Pulse per second count of stability limit exceeded events.', t.stbcnt),
    g('tai_offset_seconds', 'International Atomic Time (TAI) offset.', t.tai),
  ];
}

/**
 * node_exporter's timex collector. Reading costs a process (see
 * agent/host/node/timex.ts), so it is read at most every `minAgeMs`, and only
 * when the host is sampled (a scrape or a health request): an unscraped agent
 * spawns nothing. The clock discipline moves at NTP poll intervals (64 s and
 * up), so a minute-old reading loses little. After the first, reads run in
 * the background and a scrape never waits for one; a failed read drops the
 * series until a read succeeds (a failed collector, as the sampler reports).
 */
export function timexCollector(read: () => Promise<TimexReading | null>, minAgeMs: number): SampledCollector {
  let value: TimexReading | null = null;
  let readAt = -Infinity;
  let pending: Promise<void> | null = null;
  let failure: unknown = null;

  const start = () => {
    pending = read().then(
      (v) => { value = v; failure = null; },
      (err: unknown) => { value = null; failure = err; },
    ).finally(() => { pending = null; });
    return pending;
  };

  /** A background read failed: report it once (the sampler drops the series). */
  const reportFailure = () => {
    const err = failure;
    failure = null;
    if (err !== null) throw err;
  };

  return {
    name: 'timex',
    async sample(now) {
      reportFailure();
      if (pending || now - readAt < minAgeMs) return;
      const first = readAt === -Infinity;
      readAt = now;
      const p = start();
      if (first) {
        await p;
        reportFailure();
      }
    },
    collect: () => (value === null ? [] : timexFamilies(value)),
  };
}
