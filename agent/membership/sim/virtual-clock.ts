import type { Clock, TimerHandle } from '../types.js';

interface Timer {
  at: number;
  seq: number;
  fn: () => void;
  cancelled: boolean;
}

/**
 * Discrete-event time: a binary heap of timers ordered by (time, insertion),
 * so equal-time events run in the order they were scheduled and every run
 * with the same seed is identical. Cancelled timers are skipped lazily.
 */
export class VirtualClock implements Clock {
  private heap: Timer[] = [];
  private t = 0;
  private seq = 0;
  private live = 0;
  /** Events executed so far (a cost figure for the benchmark). */
  executed = 0;

  now(): number {
    return this.t;
  }

  setTimeout(fn: () => void, ms: number): TimerHandle {
    const timer: Timer = { at: this.t + Math.max(0, ms), seq: this.seq++, fn, cancelled: false };
    this.push(timer);
    this.live++;
    return timer;
  }

  clearTimeout(handle: TimerHandle): void {
    const timer = handle as Timer | null;
    if (timer && !timer.cancelled) {
      timer.cancelled = true;
      this.live--;
    }
  }

  get pending(): number {
    return this.live;
  }

  /** Runs every event due up to and including `until`, then sets the time to `until`. */
  runUntil(until: number): void {
    for (;;) {
      const top = this.heap[0];
      if (!top || top.at > until) break;
      this.pop();
      if (top.cancelled) continue;
      top.cancelled = true; // a fired timer cannot be cleared again
      this.live--;
      this.t = top.at;
      this.executed++;
      top.fn();
    }
    this.t = Math.max(this.t, until);
  }

  runFor(ms: number): void {
    this.runUntil(this.t + ms);
  }

  private less(a: Timer, b: Timer): boolean {
    return a.at < b.at || (a.at === b.at && a.seq < b.seq);
  }

  private push(x: Timer): void {
    const h = this.heap;
    h.push(x);
    let i = h.length - 1;
    while (i > 0) {
      const p = (i - 1) >> 1;
      if (!this.less(h[i]!, h[p]!)) break;
      [h[i], h[p]] = [h[p]!, h[i]!];
      i = p;
    }
  }

  private pop(): void {
    const h = this.heap;
    const last = h.pop()!;
    if (h.length === 0) return;
    h[0] = last;
    let i = 0;
    for (;;) {
      const l = 2 * i + 1;
      const r = l + 1;
      let m = i;
      if (l < h.length && this.less(h[l]!, h[m]!)) m = l;
      if (r < h.length && this.less(h[r]!, h[m]!)) m = r;
      if (m === i) break;
      [h[i], h[m]] = [h[m]!, h[i]!];
      i = m;
    }
  }
}
