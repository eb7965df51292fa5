import { cpus } from 'node:os';

export type CpuTimes = { user: number; nice: number; sys: number; idle: number; irq: number };

/** Pure: busy share (0-100) of all CPUs between two readings of os.cpus() times; null when nothing elapsed. */
export function busyPct(prev: readonly CpuTimes[], next: readonly CpuTimes[]): number | null {
  let busy = 0;
  let total = 0;
  for (let i = 0; i < Math.min(prev.length, next.length); i++) {
    const a = prev[i]!;
    const b = next[i]!;
    const idle = b.idle - a.idle;
    const all = b.user - a.user + (b.nice - a.nice) + (b.sys - a.sys) + (b.irq - a.irq) + idle;
    busy += all - idle;
    total += all;
  }
  return total > 0 ? Math.min(100, Math.max(0, (busy / total) * 100)) : null;
}

/** CPU busy % since the previous call (the first call: since boot). */
export function cpuBusySampler(read: () => CpuTimes[] = () => cpus().map((c) => c.times)): () => number | null {
  let prev: CpuTimes[] = read().map(() => ({ user: 0, nice: 0, sys: 0, idle: 0, irq: 0 }));
  return () => {
    const next = read();
    const pct = busyPct(prev, next);
    prev = next;
    return pct;
  };
}
