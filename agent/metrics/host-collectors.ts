import { monitorEventLoopDelay } from 'node:perf_hooks';
import { diskRates, resolveBootDisk, wholeDisks, type DiskRates } from '../host/disks.js';
import { CPU_MODES, isReportedFilesystem, type MountEntry, type DiskStat } from '../host/procfs.js';
import type { FsSpace, HostReader, Uname } from '../host/reader.js';
import type { HostInventory } from '../host/inventory.js';
import { THROTTLE_CONDITIONS, type ThrottleState } from '../host/rpi.js';
import { emptySnapshot, type ClockSync, type HostSnapshot } from '../host/types.js';
import { readSelfProc, type SelfProc } from '../host/self-proc.js';
import type { SampledCollector } from './sampler.js';
import { extendedDiskFamilies, netdevFamilies } from './node/disk-net.js';
import type { MetricFamily, MetricSample } from './types.js';

/** Pure: timedatectl's answer (or failure) to a ClockSync; unknown stays unknown. */
export async function askTimedated(ask: () => Promise<string>, fallback: ClockSync): Promise<ClockSync> {
  let out: string;
  try {
    out = (await ask()).trim();
  } catch (err) {
    return { synchronized: null, detail: `${fallback.detail}; timedatectl did not answer (${(err as Error).message.split('\n')[0]})` };
  }
  if (out === 'yes') return { synchronized: true, detail: 'timedatectl: NTPSynchronized=yes (the kernel clock is disciplined)' };
  if (out === 'no') return { synchronized: false, detail: 'timedatectl: NTPSynchronized=no: enable time sync (timedatectl set-ntp true, or chrony/ntpd)' };
  return { synchronized: null, detail: `${fallback.detail}; timedatectl said ${JSON.stringify(out.slice(0, 40))}` };
}

const gauge = (name: string, help: string, samples: MetricSample[]): MetricFamily => ({ name, help, type: 'gauge', samples });
const counter = (name: string, help: string, samples: MetricSample[]): MetricFamily => ({ name, help, type: 'counter', samples });

export interface HostCollectorOptions {
  reader: HostReader;
  /** `timedatectl show -p NTPSynchronized --value` on a live host; without it, timesyncd's file only. */
  timedated?: (() => Promise<string>) | undefined;
  /** Board and OS inventory (systeminformation on a live host); no series without it. */
  inventory?: (() => Promise<HostInventory>) | undefined;
  configuredDiskDevice?: string | undefined;
  version: string;
}

/**
 * Host collectors in the style and naming of node_exporter, plus piswarm's own
 * Pi-specific series. Each collector keeps its last successful sample; the
 * HostSnapshot is assembled from those for the health checks.
 */
export function createHostCollectors(opts: HostCollectorOptions) {
  const r = opts.reader;
  const snap: HostSnapshot = emptySnapshot();

  // cpu ---------------------------------------------------------------------
  let stat: ReturnType<HostReader['stat']> | null = null;
  const cpu: SampledCollector = {
    name: 'cpu',
    sample() {
      stat = null;
      stat = r.stat();
    },
    collect() {
      if (!stat) return [];
      const out = [
        counter('node_cpu_seconds_total', 'Seconds the CPUs spent in each mode.', stat.cpus.flatMap((c) =>
          CPU_MODES.map((mode) => ({ labels: { cpu: c.cpu, mode }, value: c.seconds[mode] })))),
      ];
      if (stat.bootTime !== null) out.push(gauge('node_boot_time_seconds', 'Node boot time, in unixtime.', [{ value: stat.bootTime }]));
      return out;
    },
  };

  // loadavg -----------------------------------------------------------------
  const loadavg: SampledCollector = {
    name: 'loadavg',
    sample() {
      snap.load = null;
      snap.load = r.loadavg();
      if (!snap.load) throw Object.assign(new Error('unparseable /proc/loadavg'), { code: 'PISWARM_ERR_COLLECTOR' });
    },
    collect() {
      const l = snap.load;
      if (!l) return [];
      return [
        gauge('node_load1', '1m load average.', [{ value: l.load1 }]),
        gauge('node_load5', '5m load average.', [{ value: l.load5 }]),
        gauge('node_load15', '15m load average.', [{ value: l.load15 }]),
      ];
    },
  };

  // meminfo -----------------------------------------------------------------
  let mem: ReturnType<HostReader['meminfo']> | null = null;
  const meminfo: SampledCollector = {
    name: 'meminfo',
    sample() {
      mem = null;
      snap.memory = null;
      mem = r.meminfo();
      const f = (k: string) => mem?.byField.get(k);
      const total = f('MemTotal');
      if (total === undefined) throw Object.assign(new Error('MemTotal missing from /proc/meminfo'), { code: 'PISWARM_ERR_COLLECTOR' });
      snap.memory = {
        totalBytes: total,
        availableBytes: f('MemAvailable') ?? null,
        freeBytes: f('MemFree') ?? 0,
        swapTotalBytes: f('SwapTotal') ?? 0,
        swapFreeBytes: f('SwapFree') ?? 0,
      };
    },
    collect() {
      if (!mem) return [];
      return mem.entries.map((e) => {
        const name = `node_memory_${e.name}${e.bytes ? '_bytes' : ''}`;
        return gauge(name, `Memory information field ${e.name}${e.bytes ? '_bytes' : ''}.`, [{ value: e.value }]);
      });
    },
  };

  // filesystem ----------------------------------------------------------------
  interface FsRow { m: MountEntry; space: FsSpace | null }
  let fsRows: FsRow[] = [];
  let mounts: MountEntry[] = [];
  const filesystem: SampledCollector = {
    name: 'filesystem',
    sample() {
      snap.rootFs = null;
      fsRows = [];
      mounts = r.mounts();
      const rows: FsRow[] = [];
      for (const m of mounts.filter(isReportedFilesystem)) {
        let space: FsSpace | null = null;
        try {
          space = r.statfs(m.mountpoint);
        } catch {
          // An unreachable mount (EACCES, a stale bind mount) is one series with device_error 1, not a failed collector.
          space = null;
        }
        rows.push({ m, space });
      }
      fsRows = rows;
      // `/` is statted whatever its type: in a container it is overlay (excluded above), yet its free space is what fills up.
      const rootMount = [...mounts].reverse().find((m) => m.mountpoint === '/');
      const root = r.statfs('/');
      snap.rootFs = { device: rootMount?.device ?? null, fstype: rootMount?.fstype ?? null, ...root };
    },
    collect() {
      const labels = (m: MountEntry) => ({ device: m.device, fstype: m.fstype, mountpoint: m.mountpoint });
      const ok = fsRows.filter((x) => x.space !== null) as Array<{ m: MountEntry; space: FsSpace }>;
      return [
        gauge('node_filesystem_size_bytes', 'Filesystem size in bytes.', ok.map((x) => ({ labels: labels(x.m), value: x.space.sizeBytes }))),
        gauge('node_filesystem_free_bytes', 'Filesystem free space in bytes.', ok.map((x) => ({ labels: labels(x.m), value: x.space.freeBytes }))),
        gauge('node_filesystem_avail_bytes', 'Filesystem space available to non-root users in bytes.', ok.map((x) => ({ labels: labels(x.m), value: x.space.availBytes }))),
        gauge('node_filesystem_files', 'Filesystem total file nodes.', ok.filter((x) => x.space.files !== undefined).map((x) => ({ labels: labels(x.m), value: x.space.files as number }))),
        gauge('node_filesystem_files_free', 'Filesystem total free file nodes.', ok.filter((x) => x.space.filesFree !== undefined).map((x) => ({ labels: labels(x.m), value: x.space.filesFree as number }))),
        gauge('node_filesystem_readonly', 'Filesystem read-only status.', fsRows.filter((x) => x.m.options !== undefined).map((x) => ({ labels: labels(x.m), value: (x.m.options as string).split(',').includes('ro') ? 1 : 0 }))),
        gauge('node_filesystem_device_error', 'Whether an error occurred while getting statistics for the given device.', fsRows.map((x) => ({ labels: labels(x.m), value: x.space ? 0 : 1 }))),
      ];
    },
  };

  // diskstats + passive throughput + boot disk --------------------------------
  let disks: DiskStat[] = [];
  let prevDisks: { at: number; stats: DiskStat[] } | null = null;
  let rates: DiskRates[] = [];
  const diskstats: SampledCollector = {
    name: 'diskstats',
    sample(now) {
      snap.bootDisk = null;
      snap.bootDiskRates = null;
      rates = [];
      const all = r.diskstats();
      const sysBlock = r.sysBlock();
      disks = wholeDisks(all, sysBlock);
      rates = prevDisks ? diskRates(prevDisks.stats, disks, (now - prevDisks.at) / 1000) : [];
      prevDisks = { at: now, stats: disks };
      const sizes = new Map(fsRows.filter((x) => x.space).map((x) => [x.m.mountpoint, x.space?.sizeBytes ?? 0]));
      snap.bootDisk = resolveBootDisk({
        mounts: mounts.length > 0 ? mounts : r.mounts(),
        stats: all,
        sysBlock,
        configuredDevice: opts.configuredDiskDevice,
        sizeOf: (mp) => sizes.get(mp) ?? null,
      });
      snap.bootDiskRates = rates.find((x) => x.device === snap.bootDisk?.device) ?? null;
    },
    collect() {
      const per = <T>(rows: T[], f: (x: T) => number, dev: (x: T) => string) => rows.map((x) => ({ labels: { device: dev(x) }, value: f(x) }));
      const d = (f: (x: DiskStat) => number) => per(disks, f, (x) => x.device);
      const rr = (f: (x: DiskRates) => number) => per(rates, f, (x) => x.device);
      const out = [
        counter('node_disk_reads_completed_total', 'The total number of reads completed successfully.', d((x) => x.readsCompleted)),
        counter('node_disk_writes_completed_total', 'The total number of writes completed successfully.', d((x) => x.writesCompleted)),
        counter('node_disk_read_bytes_total', 'The total number of bytes read successfully.', d((x) => x.sectorsRead * 512)),
        counter('node_disk_written_bytes_total', 'The total number of bytes written successfully.', d((x) => x.sectorsWritten * 512)),
        counter('node_disk_io_time_seconds_total', 'Total seconds spent doing I/Os.', d((x) => x.ioTicksMs / 1000)),
        ...extendedDiskFamilies(disks),
        gauge('piswarm_disk_read_bytes_per_second', 'Bytes read per second over the last sampling interval (whole disks).', rr((x) => x.readBytesPerSecond)),
        gauge('piswarm_disk_write_bytes_per_second', 'Bytes written per second over the last sampling interval (whole disks).', rr((x) => x.writeBytesPerSecond)),
        gauge('piswarm_disk_reads_per_second', 'Read operations completed per second over the last sampling interval.', rr((x) => x.readsPerSecond)),
        gauge('piswarm_disk_writes_per_second', 'Write operations completed per second over the last sampling interval.', rr((x) => x.writesPerSecond)),
        gauge('piswarm_disk_busy_ratio', 'Share of the last sampling interval the disk had I/O in flight (0-1).', rr((x) => x.busyRatio)),
      ];
      if (snap.bootDisk) {
        out.push(gauge('piswarm_boot_disk_info', 'The whole disk behind / (source: root-mount, configured or largest-filesystem).', [
          { labels: { device: snap.bootDisk.device, source: snap.bootDisk.source }, value: 1 },
        ]));
      }
      return out;
    },
  };

  // netdev --------------------------------------------------------------------
  let net: ReturnType<HostReader['netDev']> = [];
  const netdev: SampledCollector = {
    name: 'netdev',
    sample() {
      net = [];
      net = r.netDev();
    },
    collect() {
      return netdevFamilies(net);
    },
  };

  // thermal -------------------------------------------------------------------
  const thermal: SampledCollector = {
    name: 'thermal',
    sample() {
      snap.thermalZones = [];
      snap.maxTemperatureCelsius = null;
      snap.thermalZones = r.thermalZones();
      snap.maxTemperatureCelsius = snap.thermalZones.length === 0 ? null : Math.max(...snap.thermalZones.map((z) => z.celsius));
    },
    collect() {
      if (snap.thermalZones.length === 0) return [];
      return [gauge('node_thermal_zone_temp', 'Zone temperature in Celsius', snap.thermalZones.map((z) => ({ labels: { type: z.type, zone: z.zone }, value: z.celsius })))];
    },
  };

  // Raspberry Pi throttling ----------------------------------------------------
  let throttle: ThrottleState = { source: 'absent' };
  const rpi: SampledCollector = {
    name: 'rpi_throttle',
    sample() {
      try {
        throttle = r.throttle();
      } catch (err) {
        snap.throttling = null;
        snap.throttlingSource = 'error';
        throw err;
      }
      snap.throttling = throttle.source === 'absent' ? null : throttle.flags;
      snap.throttlingSource = throttle.source;
    },
    collect() {
      // Absent hardware is a state, not an error: it shows as source="absent" and no condition series.
      const out = [gauge('piswarm_rpi_throttle_source', 'Where throttling information comes from (firmware, hwmon or absent).', [
        { labels: { source: throttle.source }, value: 1 },
      ])];
      if (throttle.source === 'absent') return out;
      const samples: MetricSample[] = [];
      for (const c of THROTTLE_CONDITIONS) {
        samples.push({ labels: { condition: c, when: 'now' }, value: throttle.flags.now[c] ? 1 : 0 });
        if (throttle.flags.sinceBoot) samples.push({ labels: { condition: c, when: 'since_boot' }, value: throttle.flags.sinceBoot[c] ? 1 : 0 });
      }
      out.push(gauge('piswarm_rpi_throttled', 'Raspberry Pi firmware throttling conditions (get_throttled bits), 1 = set.', samples));
      return out;
    },
  };

  // uname ---------------------------------------------------------------------
  let uname: Uname | null = null;
  const unameCollector: SampledCollector = {
    name: 'uname',
    sample() {
      uname = null;
      uname = r.uname();
    },
    collect() {
      return uname ? [gauge('node_uname_info', 'Labeled system information as provided by the uname system call.', [{ labels: { ...uname }, value: 1 }])] : [];
    },
  };

  // clock sync ------------------------------------------------------------------
  // Without timesyncd (chrony, ntpd, or nothing), ask timedated: its
  // NTPSynchronized is the kernel's own flag (adjtimex STA_UNSYNC), whoever
  // disciplines the clock. It spawns timedatectl (a fork of the whole agent
  // process, ~0.2 CPU-s), so rarely: a synchronised clock stays so, an
  // unsynchronised one is asked about every 5 min, no answer backs off.
  const timedatedAgainMs = (v: ClockSync) => (v.synchronized === false ? 5 * 60_000 : 30 * 60_000);
  let timedated: { at: number; value: ClockSync } | null = null;
  const timesync: SampledCollector = {
    name: 'timesync',
    async sample(now) {
      snap.clockSync = null;
      const local = r.clockSync();
      if (local.synchronized !== null || !opts.timedated) {
        snap.clockSync = local;
        return;
      }
      if (!timedated || now - timedated.at >= timedatedAgainMs(timedated.value)) timedated = { at: now, value: await askTimedated(opts.timedated, local) };
      snap.clockSync = timedated.value;
    },
    collect() {
      const s = snap.clockSync?.synchronized;
      // Unknown is no series rather than a made-up 0 or 1.
      return s === undefined || s === null ? [] : [gauge('piswarm_clock_synchronized', 'Whether the clock is synchronised (1) or not (0): systemd-timesyncd, else timedated\'s NTPSynchronized.', [{ value: s ? 1 : 0 }])];
    },
  };

  // board and OS inventory ----------------------------------------------------
  // Hardware does not change under a running agent and an OS upgrade restarts
  // it, so six-hourly is plenty for a source that spawns commands.
  const INVENTORY_EVERY_MS = 6 * 3600_000;
  // A failed attempt is retried after a minute, not on every sample.
  const INVENTORY_RETRY_MS = 60_000;
  let inventory: HostInventory | null = null;
  let inventoryNextAt = -Infinity;
  const inventoryCollector: SampledCollector = {
    name: 'inventory',
    async sample(now) {
      if (!opts.inventory || now < inventoryNextAt) return;
      inventoryNextAt = now + INVENTORY_RETRY_MS;
      inventory = null;
      inventory = await opts.inventory();
      inventoryNextAt = now + INVENTORY_EVERY_MS;
    },
    collect() {
      return inventory ? [gauge('piswarm_host_info', 'Board model and revision, OS release and architecture (systeminformation), constant 1.', [{ labels: { ...inventory }, value: 1 }])] : [];
    },
  };

  // agent process -------------------------------------------------------------
  // The delay monitor is a libuv timer of this period: at 10 ms it woke an idle
  // agent 100 times a second, about half its idle CPU (0.77 -> 0.35 CPU-s per
  // minute at 1000 ms, measured). A blocked loop still shows in p99 and max.
  const LOOP_RESOLUTION_MS = 1000;
  const loop = monitorEventLoopDelay({ resolution: LOOP_RESOLUTION_MS });
  loop.enable();
  let proc = { cpuSeconds: 0, rss: 0, lagP50: 0, lagP99: 0, lagMax: 0 };
  let self: SelfProc = { vsizeBytes: null, openFds: null, maxFds: null, maxAddressSpaceBytes: null };
  const startTime = (Date.now() - process.uptime() * 1000) / 1000;
  const processCollector: SampledCollector = {
    name: 'process',
    sample() {
      const u = process.cpuUsage();
      // Percentile over the last interval, then reset, so one slow start does not dominate forever.
      // The histogram records whole timer periods (an idle loop shows ~1000 ms at resolution 1000), so the
      // resolution is subtracted to report lag; prom-client's nodejs_eventloop_lag_* leave it in.
      const lag = (ns: number) => (loop.count > 0 ? Math.max(0, ns / 1e9 - LOOP_RESOLUTION_MS / 1000) : 0);
      proc = { cpuSeconds: (u.user + u.system) / 1e6, rss: process.memoryUsage.rss(), lagP50: lag(loop.percentile(50)), lagP99: lag(loop.percentile(99)), lagMax: lag(loop.max) };
      loop.reset();
      self = readSelfProc();
    },
    collect() {
      const opt = (name: string, help: string, v: number | null) => (v === null ? [] : [gauge(name, help, [{ value: v }])]);
      return [
        // The exporter's own series, as every Prometheus client library names them (client_golang's process
        // collector, which node_exporter serves and "Node Exporter Full" charts): here they describe the agent.
        counter('process_cpu_seconds_total', 'Total user and system CPU time spent in seconds.', [{ value: proc.cpuSeconds }]),
        gauge('process_resident_memory_bytes', 'Resident memory size in bytes.', [{ value: proc.rss }]),
        gauge('process_start_time_seconds', 'Start time of the process since unix epoch in seconds.', [{ value: Math.round(startTime * 1000) / 1000 }]),
        ...opt('process_virtual_memory_bytes', 'Virtual memory size in bytes.', self.vsizeBytes),
        ...opt('process_virtual_memory_max_bytes', 'Maximum amount of virtual memory available in bytes.', self.maxAddressSpaceBytes),
        ...opt('process_open_fds', 'Number of open file descriptors.', self.openFds),
        ...opt('process_max_fds', 'Maximum number of open file descriptors.', self.maxFds),
        // The same figures under our prefix, kept for dashboards and alerts written against them.
        counter('piswarm_process_cpu_seconds_total', 'Total user and system CPU time of the agent in seconds.', [{ value: proc.cpuSeconds }]),
        gauge('piswarm_process_resident_memory_bytes', 'Resident memory size of the agent in bytes.', [{ value: proc.rss }]),
        gauge('piswarm_process_start_time_seconds', 'Start time of the agent since unix epoch in seconds.', [{ value: Math.round(startTime * 1000) / 1000 }]),
        gauge('piswarm_eventloop_delay_p50_seconds', 'Median event loop delay of the agent over the last sampling interval.', [{ value: proc.lagP50 }]),
        gauge('piswarm_eventloop_delay_p99_seconds', 'The 99th percentile of the agent\'s event loop delay over the last sampling interval.', [{ value: proc.lagP99 }]),
        gauge('piswarm_eventloop_delay_max_seconds', 'The longest event loop delay of the agent over the last sampling interval.', [{ value: proc.lagMax }]),
        gauge('piswarm_build_info', 'piswarm agent version and Node.js runtime, constant 1.', [{ labels: { version: opts.version, node_version: process.version }, value: 1 }]),
      ];
    },
  };

  return {
    collectors: [cpu, loadavg, meminfo, filesystem, diskstats, netdev, thermal, rpi, unameCollector, timesync, ...(opts.inventory ? [inventoryCollector] : []), processCollector],
    /** Called by the sampler after every collector has sampled, so `at` stamps a complete sample. */
    sampled(now: number): void {
      snap.at = now;
    },
    snapshot: (): HostSnapshot => structuredClone(snap),
    stop: () => loop.disable(),
  };
}
