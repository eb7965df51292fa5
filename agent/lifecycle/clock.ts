/** Whatever a clock's setTimeout returns; only its clearTimeout reads it. */
export type TimerHandle = unknown;

/**
 * The agent's one clock: milliseconds now and one-shot timers. Real ones:
 * `wallClock` here (formation: its times are shown to operators) and
 * membership's monotonic `systemClock`; the fake one for tests and the
 * simulator: agent/membership/sim/virtual-clock.ts VirtualClock.
 */
export interface Clock {
  now(): number;
  setTimeout(fn: () => void, ms: number): TimerHandle;
  clearTimeout(handle: TimerHandle): void;
}

/** Date.now and the process's timers. */
export const wallClock: Clock = Object.freeze({
  now: () => Date.now(),
  setTimeout: (fn: () => void, ms: number): TimerHandle => setTimeout(fn, ms),
  clearTimeout: (handle: TimerHandle): void => clearTimeout(handle as ReturnType<typeof setTimeout>),
});
