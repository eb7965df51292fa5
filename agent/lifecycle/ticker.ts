/**
 * A periodic job that never overlaps itself: `tick()` joins a run in
 * progress instead of starting a second, a run that throws is reported to
 * `onError` and does not stop the next, and the next run is scheduled
 * `intervalMs` after the last one ended (no catch-up bursts after a slow run).
 * The autopilot and the node labels run on one.
 */
export interface Ticker {
  tick(): Promise<void>;
  start(): void;
  /** Clears the timer and waits for a run in progress. */
  stop(): Promise<void>;
}

export function createTicker(o: { intervalMs: number; run: () => Promise<void>; onError: (err: unknown) => void; enabled?: () => boolean }): Ticker {
  let timer: NodeJS.Timeout | null = null;
  let running: Promise<void> | null = null;
  let stopped = true;

  function tick(): Promise<void> {
    if (o.enabled && !o.enabled()) return Promise.resolve();
    running ??= o.run()
      .catch(o.onError)
      .finally(() => {
        running = null;
      });
    return running;
  }

  function schedule(): void {
    if (stopped) return;
    timer = setTimeout(() => void tick().finally(schedule), o.intervalMs);
    timer.unref();
  }

  return {
    tick,
    start() {
      stopped = false;
      schedule();
    },
    async stop() {
      stopped = true;
      if (timer) clearTimeout(timer);
      timer = null;
      await running;
    },
  };
}
