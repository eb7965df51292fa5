/**
 * A periodic job that never overlaps itself: `tick()` joins a run in
 * progress instead of starting a second, a run that throws is reported to
 * `onError` and does not stop the next, and the next run is scheduled
 * `intervalMs` after the last one ended (no catch-up bursts after a slow run).
 * `soon(ms)` brings the next run forward when the job knows it has more to
 * do (the autopilot after a step, or when a wait ends by the clock).
 * The autopilot and the node labels run on one.
 */
export interface Ticker {
  tick(): Promise<void>;
  start(): void;
  /**
   * The next run at most `ms` from now (never later than it already was);
   * asked during a run, `ms` after that run ends. Nothing while stopped.
   */
  soon(ms: number): void;
  /** Clears the timer and waits for a run in progress. */
  stop(): Promise<void>;
}

export function createTicker(o: { intervalMs: number; run: () => Promise<void>; onError: (err: unknown) => void; enabled?: () => boolean }): Ticker {
  let timer: NodeJS.Timeout | null = null;
  let dueAt = Infinity;
  let running: Promise<void> | null = null;
  let stopped = true;
  /** soon() asked during a run: the delay after it ends. */
  let followUp: number | null = null;

  function arm(ms: number): void {
    if (stopped) return;
    if (timer) clearTimeout(timer);
    dueAt = Date.now() + ms;
    timer = setTimeout(() => {
      timer = null;
      dueAt = Infinity;
      // A follow-up asked during the run arms the timer first.
      void tick().finally(() => { if (timer === null) arm(o.intervalMs); });
    }, ms);
    timer.unref();
  }

  function ended(): void {
    running = null;
    if (followUp === null) return;
    const d = followUp;
    followUp = null;
    if (Date.now() + d < dueAt) arm(d);
  }

  function tick(): Promise<void> {
    if (o.enabled && !o.enabled()) return Promise.resolve();
    if (!running) {
      // Set before run() starts, so a soon() from inside the run sees it.
      let release: () => void = () => {};
      running = new Promise<void>((r) => { release = r; });
      let p: Promise<void>;
      try {
        p = o.run();
      } catch (err) {
        p = Promise.reject(err);
      }
      void p.catch(o.onError).finally(() => {
        ended();
        release();
      });
    }
    return running;
  }

  function soon(ms: number): void {
    if (stopped) return;
    const d = Math.max(0, ms);
    if (running) {
      followUp = Math.min(followUp ?? Infinity, d);
      return;
    }
    if (Date.now() + d < dueAt) arm(d);
  }

  return {
    tick,
    start() {
      stopped = false;
      arm(o.intervalMs);
    },
    soon,
    async stop() {
      stopped = true;
      followUp = null;
      if (timer) clearTimeout(timer);
      timer = null;
      dueAt = Infinity;
      await running;
    },
  };
}
