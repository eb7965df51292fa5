import { USER_HZ } from '../../host/procfs.js';
import type { NodeFiles } from '../../host/node/files.js';
import { parseFileNr, parsePressure, parseSchedstat, parseStatCounters, parseVmstat, type PsiLine } from '../../host/node/kernel-parse.js';
import type { SampledCollector } from '../sampler.js';
import type { MetricFamily } from '../types.js';
import { counter, gauge, orNull, sampled, single, untyped } from './families.js';

const PSI_RESOURCES = ['cpu', 'io', 'memory', 'irq'] as const;

/**
 * collector/pressure_linux.go: "some" is waiting, "full" is stalled; CPU has no
 * stalled series and IRQ only a stalled one. A kernel without PSI (or booted
 * with psi=0) has no /proc/pressure: no series.
 */
function pressure(f: NodeFiles): SampledCollector {
  return sampled('pressure', () => {
    const out = new Map<string, PsiLine>();
    for (const r of PSI_RESOURCES) {
      const text = f.attr(f.proc('pressure', r));
      if (text !== null) out.set(r, parsePressure(text));
    }
    return out.size === 0 ? null : out;
  }, (psi) => {
    const fam: MetricFamily[] = [];
    const add = (name: string, help: string, v: number | null | undefined) => fam.push(...single('counter', name, help, v));
    add('node_pressure_cpu_waiting_seconds_total', 'Total time in seconds that processes have waited for CPU time', psi.get('cpu')?.someSeconds);
    add('node_pressure_io_waiting_seconds_total', 'Total time in seconds that processes have waited due to IO congestion', psi.get('io')?.someSeconds);
    add('node_pressure_io_stalled_seconds_total', 'Total time in seconds no process could make progress due to IO congestion', psi.get('io')?.fullSeconds);
    add('node_pressure_memory_waiting_seconds_total', 'Total time in seconds that processes have waited for memory', psi.get('memory')?.someSeconds);
    add('node_pressure_memory_stalled_seconds_total', 'Total time in seconds no process could make progress due to memory congestion', psi.get('memory')?.fullSeconds);
    add('node_pressure_irq_stalled_seconds_total', 'Total time in seconds no process could make progress due to IRQ congestion', psi.get('irq')?.fullSeconds);
    return fam;
  });
}

/** collector/stat_linux.go (and the guest modes of cpu_linux.go). */
function stat(f: NodeFiles): SampledCollector {
  return sampled('stat', () => parseStatCounters(f.read(f.proc('stat')), USER_HZ), (s) => [
    ...single('counter', 'node_context_switches_total', 'Total number of context switches.', s.contextSwitches),
    ...single('counter', 'node_forks_total', 'Total number of forks.', s.forks),
    ...single('counter', 'node_intr_total', 'Total number of interrupts serviced.', s.interrupts),
    ...single('gauge', 'node_procs_running', 'Number of processes in runnable state.', s.procsRunning),
    ...single('gauge', 'node_procs_blocked', 'Number of processes blocked waiting for I/O to complete.', s.procsBlocked),
    ...(s.guest.length === 0 ? [] : [counter('node_cpu_guest_seconds_total', 'Seconds the CPUs spent in guests (VMs) for each mode.', s.guest.flatMap((g) => [
      { labels: { cpu: g.cpu, mode: 'nice' }, value: g.nice }, { labels: { cpu: g.cpu, mode: 'user' }, value: g.user },
    ]))]),
  ]);
}

function vmstat(f: NodeFiles): SampledCollector {
  return sampled('vmstat', () => orNull(f.optional(f.proc('vmstat')), parseVmstat), (rows) =>
    rows.map((r) => untyped(`node_vmstat_${r.name}`, `/proc/vmstat information field ${r.name}.`, [{ value: r.value }])));
}

function filefd(f: NodeFiles): SampledCollector {
  return sampled('filefd', () => orNull(f.optional(f.proc('sys', 'fs', 'file-nr')), parseFileNr), (s) => [
    gauge('node_filefd_allocated', 'File descriptor statistics: allocated.', [{ value: s.allocated }]),
    gauge('node_filefd_maximum', 'File descriptor statistics: maximum.', [{ value: s.maximum }]),
  ]);
}

function entropy(f: NodeFiles): SampledCollector {
  const num = (file: string) => {
    const v = f.optional(f.proc('sys', 'kernel', 'random', file));
    return v === null || !Number.isFinite(Number(v.trim())) ? null : Number(v.trim());
  };
  return sampled('entropy', () => ({ avail: num('entropy_avail'), pool: num('poolsize') }), (e) => [
    ...single('gauge', 'node_entropy_available_bits', 'Bits of available entropy.', e.avail),
    ...single('gauge', 'node_entropy_pool_size_bits', 'Bits of entropy pool.', e.pool),
  ]);
}

function schedstat(f: NodeFiles): SampledCollector {
  return sampled('schedstat', () => {
    const text = f.optional(f.proc('schedstat'));
    return text === null ? null : parseSchedstat(text);
  }, (rows) => [
    counter('node_schedstat_running_seconds_total', 'Number of seconds CPU spent running a process.', rows.map((r) => ({ labels: { cpu: r.cpu }, value: r.runningSeconds }))),
    counter('node_schedstat_waiting_seconds_total', 'Number of seconds spent by processing waiting for this CPU.', rows.map((r) => ({ labels: { cpu: r.cpu }, value: r.waitingSeconds }))),
    counter('node_schedstat_timeslices_total', 'Number of timeslices executed by CPU.', rows.map((r) => ({ labels: { cpu: r.cpu }, value: r.timeslices }))),
  ]);
}

/**
 * collector/time.go: the clock itself is read when the scrape formats (no I/O,
 * and a 5 s old "now" would skew uptime panels); clock sources are sampled.
 */
function time(f: NodeFiles): SampledCollector {
  const base = f.sys('devices', 'system', 'clocksource');
  const inner = sampled('time', () => (f.list(base) ?? []).filter((d) => /^clocksource\d+$/.test(d)).sort().map((d) => ({
    device: d.slice('clocksource'.length),
    available: (f.attr(`${base}/${d}/available_clocksource`) ?? '').split(/\s+/).filter((x) => x !== ''),
    current: f.attr(`${base}/${d}/current_clocksource`),
  })), (sources) => [
    gauge('node_time_seconds', 'System time in seconds since epoch (1970).', [{ value: Date.now() / 1000 }]),
    ...(sources.length === 0 ? [] : [
      gauge('node_time_clocksource_available_info', 'Available clocksources read from \'/sys/devices/system/clocksource\'.',
        sources.flatMap((s) => s.available.map((c) => ({ labels: { clocksource: c, device: s.device }, value: 1 })))),
      gauge('node_time_clocksource_current_info', 'Current clocksource read from \'/sys/devices/system/clocksource\'.',
        sources.filter((s) => s.current).map((s) => ({ labels: { clocksource: s.current as string, device: s.device }, value: 1 }))),
    ]),
  ]);
  return inner;
}

export function kernelCollectors(f: NodeFiles): SampledCollector[] {
  return [pressure(f), stat(f), vmstat(f), filefd(f), entropy(f), schedstat(f), time(f)];
}
