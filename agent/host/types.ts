import type { BootDisk, DiskRates } from './disks.js';
import type { LoadAvg } from './procfs.js';
import type { ThermalZone, ThrottleFlags } from './rpi.js';

export interface RootFilesystem {
  device: string | null;
  fstype: string | null;
  sizeBytes: number;
  availBytes: number;
  freeBytes: number;
}

export interface MemorySummary {
  totalBytes: number;
  /** MemAvailable; null on kernels before 3.14, which lack it. */
  availableBytes: number | null;
  freeBytes: number;
  swapTotalBytes: number;
  swapFreeBytes: number;
}

/**
 * Clock synchronisation as far as can be known without spawning a process:
 * true = systemd-timesyncd has written /run/systemd/timesync/synchronized;
 * false = timesyncd runs (its directory exists) but has not synchronised;
 * null = unknown (no timesyncd: chrony or ntpd may be in charge, or nothing is).
 */
export interface ClockSync {
  synchronized: boolean | null;
  detail: string;
}

/**
 * The host as of the last sample: what health checks read. Every part is null
 * when its collector failed or the hardware is absent, never a guess.
 */
export interface HostSnapshot {
  /** Sample time, ms since the epoch; 0 before the first sample. */
  at: number;
  rootFs: RootFilesystem | null;
  thermalZones: ThermalZone[];
  maxTemperatureCelsius: number | null;
  /** Null when the host is not a Raspberry Pi (or its firmware interface is absent). */
  throttling: ThrottleFlags | null;
  /** 'unknown' before the first sample; 'error' when the files exist but cannot be read. */
  throttlingSource: 'firmware' | 'hwmon' | 'absent' | 'error' | 'unknown';
  memory: MemorySummary | null;
  load: LoadAvg | null;
  bootDisk: BootDisk | null;
  /** Passive rates of the boot disk over the last interval (null until two samples exist). */
  bootDiskRates: DiskRates | null;
  clockSync: ClockSync | null;
}

export function emptySnapshot(): HostSnapshot {
  return {
    at: 0, rootFs: null, thermalZones: [], maxTemperatureCelsius: null, throttling: null,
    throttlingSource: 'unknown', memory: null, load: null, bootDisk: null, bootDiskRates: null, clockSync: null,
  };
}
