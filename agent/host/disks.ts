import type { DiskStat, MountEntry } from './procfs.js';
import { SECTOR_BYTES } from './procfs.js';

/**
 * node_exporter's default device exclude (collector/diskstats_linux.go) widened to zram,
 * which a Pi running zram-swap has and which is memory, not storage.
 */
export const DEVICE_EXCLUDE = /^(z?ram|loop|fd|(h|s|v|xv)d[a-z]|nvme\d+n\d+p)\d+$/;
// The regex above misses SD/eMMC partitions (mmcblk0p1); sysfs knows better, but when it
// is not available we still must not count a Pi's partitions twice.
const PARTITION_FALLBACK = /^(mmcblk\d+p\d+|md\d+p\d+)$/;
const VIRTUAL = /^(z?ram|loop|fd)\d+$/;

/**
 * Whole disks only: partitions would double count the same bytes. With sysfs, a
 * whole disk is exactly an entry of /sys/block (partitions live below their disk);
 * without it, fall back to names.
 */
export function isWholeDisk(device: string, sysBlock: ReadonlySet<string> | null): boolean {
  if (VIRTUAL.test(device)) return false;
  if (sysBlock !== null) return sysBlock.has(device);
  return !DEVICE_EXCLUDE.test(device) && !PARTITION_FALLBACK.test(device);
}

export function wholeDisks(stats: readonly DiskStat[], sysBlock: ReadonlySet<string> | null): DiskStat[] {
  return stats.filter((d) => isWholeDisk(d.device, sysBlock));
}

export interface DiskRates {
  device: string;
  readBytesPerSecond: number;
  writeBytesPerSecond: number;
  readsPerSecond: number;
  writesPerSecond: number;
  /** Share of wall time with I/O in flight, 0..1 (Δio_ticks / Δt). */
  busyRatio: number;
}

/**
 * Rates between two samples. A device whose counters went backwards (32-bit counters
 * wrap on a 32-bit Raspberry Pi OS kernel; a device can also be re-attached) is left
 * out for that interval instead of reporting a huge negative or positive spike.
 */
export function diskRates(prev: readonly DiskStat[], cur: readonly DiskStat[], seconds: number): DiskRates[] {
  if (!(seconds > 0)) return [];
  const before = new Map(prev.map((d) => [d.device, d]));
  const out: DiskRates[] = [];
  for (const c of cur) {
    const p = before.get(c.device);
    if (!p) continue;
    const d = {
      r: c.sectorsRead - p.sectorsRead,
      w: c.sectorsWritten - p.sectorsWritten,
      rc: c.readsCompleted - p.readsCompleted,
      wc: c.writesCompleted - p.writesCompleted,
      io: c.ioTicksMs - p.ioTicksMs,
    };
    if (Object.values(d).some((x) => x < 0)) continue;
    out.push({
      device: c.device,
      readBytesPerSecond: (d.r * SECTOR_BYTES) / seconds,
      writeBytesPerSecond: (d.w * SECTOR_BYTES) / seconds,
      readsPerSecond: d.rc / seconds,
      writesPerSecond: d.wc / seconds,
      busyRatio: Math.min(1, d.io / 1000 / seconds),
    });
  }
  return out;
}

/** The whole disk a block device belongs to: itself, or the whole disk whose name prefixes the partition's. */
export function wholeDiskOf(device: string, disks: readonly string[]): string | null {
  if (disks.includes(device)) return device;
  // Longest prefix wins so nvme0n10p1 does not resolve to nvme0n1.
  const parents = disks.filter((d) => device.startsWith(d) && /^p?\d+$/.test(device.slice(d.length)));
  parents.sort((a, b) => b.length - a.length);
  return parents[0] ?? null;
}

export type BootDiskSource = 'root-mount' | 'configured' | 'largest-filesystem';

export interface BootDisk {
  device: string;
  source: BootDiskSource;
}

/**
 * The whole disk behind `/`. Order: the device of the `/` mount (by major:minor in
 * diskstats), then the configured diskBench.device, then (in a container, where `/`
 * is overlay with major 0) the disk holding the largest block-backed filesystem.
 */
export function resolveBootDisk(opts: {
  mounts: readonly MountEntry[];
  stats: readonly DiskStat[];
  sysBlock: ReadonlySet<string> | null;
  configuredDevice?: string | undefined;
  /** Filesystem size by mountpoint, for the container fallback. */
  sizeOf?: (mountpoint: string) => number | null;
}): BootDisk | null {
  const disks = wholeDisks(opts.stats, opts.sysBlock).map((d) => d.device);
  const byNumber = (m: MountEntry) => opts.stats.find((d) => d.major === m.major && d.minor === m.minor)?.device;
  const root = [...opts.mounts].reverse().find((m) => m.mountpoint === '/'); // the last mount on / is the visible one
  if (root && root.major > 0) {
    const dev = byNumber(root) ?? (root.device.startsWith('/dev/') ? root.device.slice(5) : undefined);
    const whole = dev ? wholeDiskOf(dev, disks) : null;
    if (whole) return { device: whole, source: 'root-mount' };
  }
  if (opts.configuredDevice) {
    return { device: opts.configuredDevice.replace(/^\/dev\//, ''), source: 'configured' };
  }
  let best: { device: string; size: number } | null = null;
  for (const m of opts.mounts) {
    if (m.major <= 0) continue;
    const dev = byNumber(m);
    const whole = dev ? wholeDiskOf(dev, disks) : null;
    const size = opts.sizeOf?.(m.mountpoint) ?? null;
    if (whole && size !== null && (best === null || size > best.size)) best = { device: whole, size };
  }
  return best ? { device: best.device, source: 'largest-filesystem' } : null;
}
