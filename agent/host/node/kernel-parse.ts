/**
 * Pure parsers for the kernel-wide files node_exporter's default collectors
 * read. Malformed lines are skipped, as in procfs.ts.
 */

export interface PsiLine {
  /** Cumulative stall time, seconds (the file's total= is microseconds). */
  someSeconds: number | null;
  fullSeconds: number | null;
}

/** /proc/pressure/{cpu,io,memory,irq}: `some avg10=.. avg60=.. avg300=.. total=N` and `full ...`. */
export function parsePressure(text: string): PsiLine {
  const out: PsiLine = { someSeconds: null, fullSeconds: null };
  for (const line of text.split('\n')) {
    const m = /^(some|full)\s.*\btotal=(\d+)/.exec(line);
    if (!m) continue;
    const s = Number(m[2]) / 1e6;
    if (m[1] === 'some') out.someSeconds = s;
    else out.fullSeconds = s;
  }
  return out;
}

export interface StatCounters {
  contextSwitches: number | null;
  forks: number | null;
  interrupts: number | null;
  procsRunning: number | null;
  procsBlocked: number | null;
  /** guest and guest_nice seconds per CPU (columns 9 and 10 of cpuN lines). */
  guest: Array<{ cpu: string; user: number; nice: number }>;
}

/** The /proc/stat lines node_exporter's stat and cpu collectors read besides the CPU modes. */
export function parseStatCounters(text: string, userHz: number): StatCounters {
  const out: StatCounters = { contextSwitches: null, forks: null, interrupts: null, procsRunning: null, procsBlocked: null, guest: [] };
  for (const line of text.split('\n')) {
    const f = line.trim().split(/\s+/);
    const n = Number(f[1]);
    const cpu = /^cpu(\d+)$/.exec(f[0] ?? '');
    if (cpu) {
      const g = Number(f[9]);
      const gn = Number(f[10]);
      if (Number.isFinite(g) && Number.isFinite(gn)) out.guest.push({ cpu: cpu[1] as string, user: g / userHz, nice: gn / userHz });
      continue;
    }
    if (!Number.isFinite(n)) continue;
    switch (f[0]) {
      case 'ctxt': out.contextSwitches = n; break;
      case 'processes': out.forks = n; break;
      case 'intr': out.interrupts = n; break; // the first number is the total
      case 'procs_running': out.procsRunning = n; break;
      case 'procs_blocked': out.procsBlocked = n; break;
      default: break;
    }
  }
  return out;
}

// node_exporter's default --collector.vmstat.fields (collector/vmstat_linux.go).
export const VMSTAT_FIELDS = /^(oom_kill|pgpg|pswp|pg.*fault).*/;

export function parseVmstat(text: string): Array<{ name: string; value: number }> {
  const out: Array<{ name: string; value: number }> = [];
  for (const line of text.split('\n')) {
    const [name, v] = line.trim().split(/\s+/);
    if (name === undefined || v === undefined || !VMSTAT_FIELDS.test(name)) continue;
    const value = Number(v);
    if (Number.isFinite(value)) out.push({ name, value });
  }
  return out;
}

/** /proc/sys/fs/file-nr: allocated, unused (always 0 since 2.6), maximum. */
export function parseFileNr(text: string): { allocated: number; maximum: number } | null {
  const f = text.trim().split(/\s+/).map(Number);
  if (f.length < 3 || f.some((x) => !Number.isFinite(x))) return null;
  return { allocated: f[0] as number, maximum: f[2] as number };
}

export interface SchedStat { cpu: string; runningSeconds: number; waitingSeconds: number; timeslices: number }

/** /proc/schedstat `cpuN` lines (collector/schedstat_linux.go): fields 7-9 are run ns, wait ns, timeslices. */
export function parseSchedstat(text: string): SchedStat[] {
  const out: SchedStat[] = [];
  for (const line of text.split('\n')) {
    const f = line.trim().split(/\s+/);
    const cpu = /^cpu(\d+)$/.exec(f[0] ?? '');
    if (!cpu || f.length < 10) continue;
    const [run, wait, slices] = [Number(f[7]), Number(f[8]), Number(f[9])];
    if (![run, wait, slices].every(Number.isFinite)) continue;
    out.push({ cpu: cpu[1] as string, runningSeconds: run / 1e9, waitingSeconds: wait / 1e9, timeslices: slices });
  }
  return out;
}

export interface SoftnetRow { cpu: string; processed: number; dropped: number; timeSqueezed: number; receivedRps: number | null; flowLimitCount: number | null }

/** /proc/net/softnet_stat: one hex row per CPU; the cpu label is the row number, as node_exporter 1.5 does. */
export function parseSoftnet(text: string): SoftnetRow[] {
  const out: SoftnetRow[] = [];
  const rows = text.split('\n').filter((l) => l.trim() !== '');
  rows.forEach((line, i) => {
    const f = line.trim().split(/\s+/).map((x) => parseInt(x, 16));
    if (f.length < 3 || f.some((x) => !Number.isFinite(x))) return;
    out.push({
      cpu: String(i), processed: f[0] as number, dropped: f[1] as number, timeSqueezed: f[2] as number,
      receivedRps: f.length > 9 ? (f[9] as number) : null, flowLimitCount: f.length > 10 ? (f[10] as number) : null,
    });
  });
  return out;
}
