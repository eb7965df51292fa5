import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import {
  parseDiskstats, parseLoadAvg, parseMeminfo, parseMountinfo, parseMounts, parseNetDev, parseProcStat,
  type DiskStat, type LoadAvg, type MountEntry, type NetDevStat, type ProcStat,
} from './procfs.js';
import { hwmonUnderVoltage, parseGetThrottled, parseThermalZone, throttleFlags, type ThermalZone, type ThrottleState } from './rpi.js';
import type { ClockSync } from './types.js';

export interface FsSpace {
  sizeBytes: number;
  freeBytes: number;
  availBytes: number;
  /** Inodes; absent when the source (a recorded statfs.json) has none. */
  files?: number;
  filesFree?: number;
}

export interface Uname {
  sysname: string;
  release: string;
  version: string;
  machine: string;
  nodename: string;
  domainname: string;
}

export interface HostReaderOptions {
  procRoot: string;
  sysRoot: string;
  /** systemd-timesyncd's flag file; tests point it into a fixture. */
  timesyncFile?: string;
  /** Injected so tests over recorded procfs do not statfs this machine's paths. */
  statfs?: (mountpoint: string) => FsSpace;
  /** uname(2) machine field; procfs has no file for it. */
  machine?: () => string;
}

export const DEFAULT_TIMESYNC_FILE = '/run/systemd/timesync/synchronized';

function realStatfs(mountpoint: string): FsSpace {
  const s = fs.statfsSync(mountpoint);
  return { sizeBytes: s.blocks * s.bsize, freeBytes: s.bfree * s.bsize, availBytes: s.bavail * s.bsize, files: s.files, filesFree: s.ffree };
}

const isNotFound = (err: unknown) => (err as NodeJS.ErrnoException | null)?.code === 'ENOENT';

/**
 * The thin impure layer: reads procfs/sysfs under configurable roots and hands the
 * text to the pure parsers. Reads are synchronous on purpose: procfs and sysfs are
 * generated in memory, a read takes microseconds, and the sampler runs them once
 * per interval, never on a scrape. Missing optional hardware returns null/[]; a
 * missing mandatory file throws (the sampler turns it into collector_success 0).
 */
export function createHostReader(opts: HostReaderOptions) {
  const proc = (...p: string[]) => path.join(opts.procRoot, ...p);
  const sys = (...p: string[]) => path.join(opts.sysRoot, ...p);
  const read = (file: string) => fs.readFileSync(file, 'utf8');
  const readOptional = (file: string): string | null => {
    try {
      return read(file);
    } catch (err) {
      if (isNotFound(err)) return null;
      throw err;
    }
  };
  const listOptional = (dir: string): string[] | null => {
    try {
      return fs.readdirSync(dir);
    } catch (err) {
      if (isNotFound(err)) return null;
      throw err;
    }
  };

  return {
    stat(): ProcStat {
      return parseProcStat(read(proc('stat')));
    },
    loadavg(): LoadAvg | null {
      return parseLoadAvg(read(proc('loadavg')));
    },
    meminfo() {
      return parseMeminfo(read(proc('meminfo')));
    },
    diskstats(): DiskStat[] {
      return parseDiskstats(read(proc('diskstats')));
    },
    /** Names under /sys/block, or null when sysfs is not mounted there (then names decide). */
    sysBlock(): Set<string> | null {
      const names = listOptional(sys('block'));
      return names === null ? null : new Set(names);
    },
    mounts(): MountEntry[] {
      const info = readOptional(proc('self', 'mountinfo'));
      return info !== null ? parseMountinfo(info) : parseMounts(read(proc('mounts')));
    },
    statfs(mountpoint: string): FsSpace {
      return (opts.statfs ?? realStatfs)(mountpoint);
    },
    netDev(): NetDevStat[] {
      return parseNetDev(read(proc('net', 'dev')));
    },
    thermalZones(): ThermalZone[] {
      const base = sys('class', 'thermal');
      const names = (listOptional(base) ?? []).filter((n) => /^thermal_zone\d+$/.test(n));
      const zones: ThermalZone[] = [];
      for (const n of names.sort((a, b) => Number(a.slice(12)) - Number(b.slice(12)))) {
        let temp: string | null;
        try {
          temp = readOptional(path.join(base, n, 'temp'));
        } catch {
          // Some ACPI zones answer EIO/ENODATA while their sensor sleeps: that zone has no reading now.
          temp = null;
        }
        const type = readOptional(path.join(base, n, 'type')) ?? '';
        const z = temp === null ? null : parseThermalZone(n.slice(12), type, temp);
        if (z) zones.push(z);
      }
      return zones;
    },
    throttle(): ThrottleState {
      const fw = readOptional(sys('devices', 'platform', 'soc', 'soc:firmware', 'get_throttled'));
      if (fw !== null) {
        const raw = parseGetThrottled(fw);
        if (raw !== null) return { source: 'firmware', raw, flags: throttleFlags(raw) };
      }
      const hwmonDir = sys('class', 'hwmon');
      for (const h of listOptional(hwmonDir) ?? []) {
        if (readOptional(path.join(hwmonDir, h, 'name'))?.trim() !== 'rpi_volt') continue;
        const alarm = readOptional(path.join(hwmonDir, h, 'in0_lcrit_alarm'));
        const flags = alarm === null ? null : hwmonUnderVoltage(alarm);
        if (flags) return { source: 'hwmon', flags };
      }
      return { source: 'absent' };
    },
    uname(): Uname {
      const k = (f: string) => read(proc('sys', 'kernel', f)).trim();
      return {
        sysname: k('ostype'),
        release: k('osrelease'),
        version: k('version'),
        machine: (opts.machine ?? os.machine)(),
        nodename: k('hostname'),
        domainname: k('domainname'),
      };
    },
    /**
     * The cheapest honest signal without spawning timedatectl: timesyncd touches this
     * file on every successful sync (systemd-timesyncd.service(8)) and removes nothing
     * else; its parent directory exists whenever timesyncd has run this boot.
     */
    clockSync(): ClockSync {
      const file = opts.timesyncFile ?? DEFAULT_TIMESYNC_FILE;
      if (fs.existsSync(file)) return { synchronized: true, detail: `${file} exists (systemd-timesyncd synchronised)` };
      if (fs.existsSync(path.dirname(file))) {
        return { synchronized: false, detail: `systemd-timesyncd runs but has not synchronised (${file} absent)` };
      }
      return { synchronized: null, detail: 'unknown: systemd-timesyncd is not in use (no chrony/ntpd probe without spawning a process)' };
    },
  };
}

export type HostReader = ReturnType<typeof createHostReader>;
