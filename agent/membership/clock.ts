import type { Clock, Random, TimerHandle } from './types.js';

/** The real clock: monotonic time, unref'd timers (the UDP socket, not a gossip timer, keeps the agent alive). */
export const systemClock: Clock = Object.freeze({
  now: () => performance.now(),
  setTimeout(fn: () => void, ms: number): TimerHandle {
    const t = setTimeout(fn, ms);
    t.unref();
    return t;
  },
  clearTimeout(handle: TimerHandle): void {
    clearTimeout(handle as ReturnType<typeof setTimeout>);
  },
});

/** The real randomness: protocol choices only need to be unpredictable-ish, not secret. */
export const systemRandom: Random = Math.random;

/**
 * mulberry32: a tiny seeded PRNG, good enough for shuffles and picks in a
 * deterministic simulation (not for anything secret).
 */
export function seededRandom(seed: number): Random {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}
