import fs from 'node:fs';
import path from 'node:path';
import { parseCpuinfoRevision, parseDtRevision } from './rpi-revision.js';
import { STORAGE_KINDS, storageKind, type StorageKind } from './storage.js';

/**
 * The board facts behind the hardware node labels (agent/labels), read from
 * procfs/sysfs under the configured roots (tests point them at recorded
 * samples). Hardware does not change under a running agent, so the revision
 * is read once and the storage kind once per boot disk.
 */

/**
 * The board's revision code; '' when this is known not to be a Raspberry Pi
 * (cpuinfo readable, no code in it or in the device tree); null when unknown.
 */
export function readRevision(procRoot: string): string | null {
  let cpuinfo: string;
  try {
    cpuinfo = fs.readFileSync(path.join(procRoot, 'cpuinfo'), 'utf8');
  } catch {
    return null;
  }
  const fromCpuinfo = parseCpuinfoRevision(cpuinfo);
  if (fromCpuinfo) return fromCpuinfo;
  try {
    return parseDtRevision(fs.readFileSync(path.join(procRoot, 'device-tree', 'system', 'linux,revision'))) ?? '';
  } catch {
    return '';
  }
}

const readOrNull = (f: () => string): string | null => {
  try {
    return f();
  } catch {
    return null;
  }
};

/** The kind of the whole disk `device` (e.g. "mmcblk0", from the host sample's bootDisk); null when unknown. */
export function readStorageKind(sysRoot: string, device: string): StorageKind | null {
  const link = path.join(sysRoot, 'block', device);
  return storageKind(device, readOrNull(() => fs.realpathSync(link)), readOrNull(() => fs.readFileSync(path.join(link, 'device', 'type'), 'utf8')));
}

/**
 * Hardware facts a simulated Pi claims instead of its host's (a container
 * sees the build machine's CPU, RAM and disk): `PISWARM_SIM_HARDWARE`, read by
 * agent/main.ts, e.g. "revision=d04170,storage=nvme,diskBps=800000000".
 */
export interface HardwareOverride {
  revision?: string;
  storage?: StorageKind;
  diskBps?: number;
}

export const HARDWARE_OVERRIDE_ENV = 'PISWARM_SIM_HARDWARE';

/** Pure: the override's text -> its fields, or what is wrong with it. */
export function parseHardwareOverride(text: string): { ok: true; value: HardwareOverride } | { ok: false; message: string } {
  const value: HardwareOverride = {};
  for (const part of text.split(',').map((s) => s.trim()).filter(Boolean)) {
    const eq = part.indexOf('=');
    const [k, v] = eq === -1 ? [part, ''] : [part.slice(0, eq).trim(), part.slice(eq + 1).trim()];
    if (k === 'revision' && /^([0-9a-f]{1,8})?$/i.test(v)) value.revision = v.toLowerCase();
    else if (k === 'storage' && (STORAGE_KINDS as readonly string[]).includes(v)) value.storage = v as StorageKind;
    else if (k === 'diskBps' && /^\d+$/.test(v) && Number(v) > 0) value.diskBps = Number(v);
    else return { ok: false, message: `${HARDWARE_OVERRIDE_ENV}: "${part}" is not revision=<hex or empty>, storage=<${STORAGE_KINDS.join('|')}> or diskBps=<bytes per second>` };
  }
  return { ok: true, value };
}
