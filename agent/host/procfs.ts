/**
 * Pure parsers over the text of procfs files. They never touch the file
 * system, so recorded samples from a Pi and an x86 box test them exactly.
 * Malformed lines are skipped rather than thrown on: a kernel that adds a
 * column or a line must not take the whole collector down.
 */

/** Clock ticks per second for /proc/stat. Linux fixes USER_HZ at 100 on every architecture the Pi uses. */
export const USER_HZ = 100;
/** /proc/diskstats counts 512-byte sectors whatever the device's real sector size. */
export const SECTOR_BYTES = 512;

export const CPU_MODES = ['user', 'nice', 'system', 'idle', 'iowait', 'irq', 'softirq', 'steal'] as const;
export type CpuMode = (typeof CPU_MODES)[number];

export interface CpuTimes {
  cpu: string;
  /** Seconds per mode (ticks / USER_HZ). */
  seconds: Record<CpuMode, number>;
}

export interface ProcStat {
  cpus: CpuTimes[];
  /** Boot time, seconds since the epoch (`btime`), or null if the line is absent. */
  bootTime: number | null;
}

export function parseProcStat(text: string): ProcStat {
  const cpus: CpuTimes[] = [];
  let bootTime: number | null = null;
  for (const line of text.split('\n')) {
    const f = line.trim().split(/\s+/);
    const key = f[0];
    if (key === undefined) continue;
    // The aggregate `cpu` line is left out: node_exporter exposes per-CPU series only.
    const m = /^cpu(\d+)$/.exec(key);
    if (m) {
      const ticks = f.slice(1, 1 + CPU_MODES.length).map(Number);
      // Kernels before 2.6.11 lack steal; treat missing trailing columns as 0, reject garbage.
      if (ticks.length < 4 || ticks.some((n) => !Number.isFinite(n))) continue;
      const seconds = {} as Record<CpuMode, number>;
      CPU_MODES.forEach((mode, i) => {
        seconds[mode] = (ticks[i] ?? 0) / USER_HZ;
      });
      cpus.push({ cpu: m[1] as string, seconds });
    } else if (key === 'btime') {
      const n = Number(f[1]);
      if (Number.isFinite(n)) bootTime = n;
    }
  }
  return { cpus, bootTime };
}

export interface LoadAvg {
  load1: number;
  load5: number;
  load15: number;
}

export function parseLoadAvg(text: string): LoadAvg | null {
  const f = text.trim().split(/\s+/).slice(0, 3).map(Number);
  if (f.length < 3 || f.some((n) => !Number.isFinite(n))) return null;
  return { load1: f[0] as number, load5: f[1] as number, load15: f[2] as number };
}

export interface MeminfoEntry {
  /** node_exporter's name part: `Active(anon)` becomes `Active_anon`. */
  name: string;
  value: number;
  /** True when the kernel reported kB (then value is in bytes already). */
  bytes: boolean;
}

/** Returns entries in file order plus a lookup by the kernel's original field name. */
export function parseMeminfo(text: string): { entries: MeminfoEntry[]; byField: Map<string, number> } {
  const entries: MeminfoEntry[] = [];
  const byField = new Map<string, number>();
  for (const line of text.split('\n')) {
    const m = /^([^:\s]+):\s+(\d+)(?:\s+(kB))?\s*$/.exec(line);
    if (!m) continue;
    const field = m[1] as string;
    const bytes = m[3] === 'kB';
    const value = Number(m[2]) * (bytes ? 1024 : 1);
    byField.set(field, value);
    entries.push({ name: field.replace(/\((.*)\)/, '_$1'), value, bytes });
  }
  return { entries, byField };
}

export interface DiskStat {
  major: number;
  minor: number;
  device: string;
  readsCompleted: number;
  sectorsRead: number;
  writesCompleted: number;
  sectorsWritten: number;
  /** Milliseconds the device had I/O in flight (io_ticks). */
  ioTicksMs: number;
  readsMerged: number;
  readTimeMs: number;
  writesMerged: number;
  writeTimeMs: number;
  ioNow: number;
  weightedIoMs: number;
  /** Kernel 4.18+ discard columns and 5.5+ flush columns; null on older kernels (then no series). */
  discards: { completed: number; merged: number; sectors: number; timeMs: number } | null;
  flush: { requests: number; timeMs: number } | null;
}

export function parseDiskstats(text: string): DiskStat[] {
  const out: DiskStat[] = [];
  for (const line of text.split('\n')) {
    const f = line.trim().split(/\s+/);
    // major minor name + at least the 11 original fields (kernels add discard/flush columns after).
    if (f.length < 14) continue;
    const n = (i: number) => Number(f[i]);
    const d: DiskStat = {
      major: n(0),
      minor: n(1),
      device: f[2] as string,
      readsCompleted: n(3),
      sectorsRead: n(5),
      writesCompleted: n(7),
      sectorsWritten: n(9),
      ioTicksMs: n(12),
      readsMerged: n(4), readTimeMs: n(6), writesMerged: n(8), writeTimeMs: n(10), ioNow: n(11), weightedIoMs: n(13),
      discards: f.length >= 18 ? { completed: n(14), merged: n(15), sectors: n(16), timeMs: n(17) } : null,
      flush: f.length >= 20 ? { requests: n(18), timeMs: n(19) } : null,
    };
    if ([d.major, d.minor, d.readsCompleted, d.sectorsRead, d.writesCompleted, d.sectorsWritten, d.ioTicksMs].some((x) => !Number.isFinite(x))) continue;
    out.push(d);
  }
  return out;
}

export interface NetDevStat {
  device: string;
  rxBytes: number;
  rxPackets: number;
  rxErrs: number;
  rxDrop: number;
  txBytes: number;
  txPackets: number;
  txErrs: number;
  txDrop: number;
  rxFifo: number;
  rxFrame: number;
  rxCompressed: number;
  rxMulticast: number;
  txFifo: number;
  txColls: number;
  txCarrier: number;
  txCompressed: number;
}

export function parseNetDev(text: string): NetDevStat[] {
  const out: NetDevStat[] = [];
  for (const line of text.split('\n')) {
    // Older kernels glue large counters to the colon ("eth0:123456"), so split on the colon, not on spaces.
    const m = /^\s*([^:\s]+):\s*(.*)$/.exec(line);
    if (!m) continue;
    const f = (m[2] as string).trim().split(/\s+/).map(Number);
    if (f.length < 16 || f.some((x) => !Number.isFinite(x))) continue;
    const v = (i: number) => f[i] as number;
    out.push({
      device: m[1] as string,
      rxBytes: v(0), rxPackets: v(1), rxErrs: v(2), rxDrop: v(3),
      txBytes: v(8), txPackets: v(9), txErrs: v(10), txDrop: v(11),
      rxFifo: v(4), rxFrame: v(5), rxCompressed: v(6), rxMulticast: v(7), txFifo: v(12), txColls: v(13), txCarrier: v(14), txCompressed: v(15),
    });
  }
  return out;
}

export interface MountEntry {
  major: number;
  minor: number;
  mountpoint: string;
  fstype: string;
  device: string;
  /** Per-mount options (`rw,relatime`); node_filesystem_readonly is `ro` among them. */
  options?: string;
}

/** mountinfo and mounts escape space, tab, newline and backslash as octal (`\040`). */
function unescapeOctal(s: string): string {
  return s.replace(/\\([0-7]{3})/g, (_, o: string) => String.fromCharCode(parseInt(o, 8)));
}

/** /proc/self/mountinfo (proc(5)): `id parent maj:min root mountpoint opts [optional...] - fstype source superopts`. */
export function parseMountinfo(text: string): MountEntry[] {
  const out: MountEntry[] = [];
  for (const line of text.split('\n')) {
    const f = line.trim().split(' ');
    const sep = f.indexOf('-', 6);
    if (f.length < 10 || sep < 0 || sep + 2 >= f.length) continue;
    const mm = /^(\d+):(\d+)$/.exec(f[2] as string);
    if (!mm) continue;
    out.push({
      major: Number(mm[1]),
      minor: Number(mm[2]),
      mountpoint: unescapeOctal(f[4] as string),
      fstype: f[sep + 1] as string,
      device: unescapeOctal(f[sep + 2] as string),
      options: f[5] as string,
    });
  }
  return out;
}

/** /proc/mounts has no device numbers: major/minor are -1 (unknown). */
export function parseMounts(text: string): MountEntry[] {
  const out: MountEntry[] = [];
  for (const line of text.split('\n')) {
    const f = line.trim().split(/\s+/);
    if (f.length < 3) continue;
    out.push({ major: -1, minor: -1, device: unescapeOctal(f[0] as string), mountpoint: unescapeOctal(f[1] as string), fstype: f[2] as string, ...(f[3] ? { options: f[3] } : {}) });
  }
  return out;
}

// node_exporter's defaults (collector/filesystem_linux.go, v1.7+): pseudo filesystems and
// mount points that describe the kernel or another runtime's layers, not storage.
export const FS_TYPES_EXCLUDE = /^(autofs|binfmt_misc|bpf|cgroup2?|configfs|debugfs|devpts|devtmpfs|fusectl|hugetlbfs|iso9660|mqueue|nsfs|overlay|proc|procfs|pstore|rpc_pipefs|securityfs|selinuxfs|squashfs|sysfs|tracefs)$/;
export const MOUNT_POINTS_EXCLUDE = /^\/(dev|proc|run\/credentials\/.+|sys|var\/lib\/docker\/.+|var\/lib\/containers\/storage\/.+)($|\/)/;
// Not excluded by node_exporter, but statfsSync on a dead server blocks the event loop
// (node_exporter guards the same call with a timeout goroutine, which Node cannot do synchronously).
export const NETWORK_FS_TYPES = /^(nfs4?|cifs|smb3|ceph|glusterfs|9p|fuse\.sshfs)$/;

/**
 * Mounts the hardened unit's own sandbox creates in the agent's mount
 * namespace (PrivateTmp, ProtectHome, StateDirectory under ProtectSystem,
 * credentials): bind mounts of / (which would count the root disk twice in a
 * dashboard that sums filesystems) or empty tmpfs stand-ins for what the agent
 * is not allowed to see. None of them is a filesystem of the host as
 * node_exporter would report it, so none is reported. Seen in a simulated Pi:
 * /home, /root, /run/user, /run/credentials, /run/systemd/incoming.
 */
export const SANDBOX_MOUNT_POINTS = /^\/(tmp|var\/tmp|var\/lib\/piswarm|home|root|run\/user|run\/credentials|run\/systemd\/incoming)$/;

export function isReportedFilesystem(m: MountEntry): boolean {
  return !FS_TYPES_EXCLUDE.test(m.fstype) && !MOUNT_POINTS_EXCLUDE.test(m.mountpoint) && !NETWORK_FS_TYPES.test(m.fstype)
    && !SANDBOX_MOUNT_POINTS.test(m.mountpoint);
}
