import type { HostView } from '../../../../agent/provision/target.js';

/**
 * A recorded machine for the flasher's refusal logic: a small tree of /proc
 * and /sys files, symlinks and device nodes. Paths it does not hold are
 * absent (null), exactly as on a machine without them; the one thing it does
 * not model, free space on an unknown file system, throws.
 */
export interface HostRecord {
  files?: Record<string, string>;
  /** Symlinks and canonical paths: path -> realpath. */
  links?: Record<string, string>;
  stats?: Record<string, { kind: 'file' | 'block' | 'directory' | 'other'; size: number; major: number; minor: number }>;
  free?: Record<string, number>;
}

export function fakeHost(rec: HostRecord): HostView {
  const files = rec.files ?? {};
  const links = rec.links ?? {};
  const dirs = new Map<string, Set<string>>();
  for (const p of [...Object.keys(files), ...Object.keys(links), ...Object.values(links)]) {
    const parts = p.split('/');
    for (let i = 2; i <= parts.length; i++) {
      const parent = parts.slice(0, i - 1).join('/') || '/';
      if (!dirs.has(parent)) dirs.set(parent, new Set());
      dirs.get(parent)!.add(parts[i - 1]!);
    }
  }
  // Symlinked directories resolve as the kernel would: /sys/block/loop3/loop/x follows /sys/block/loop3.
  const linkKeys = Object.keys(links).sort((a, b) => b.length - a.length);
  const resolve = (p: string): string => {
    const k = linkKeys.find((l) => p === l || p.startsWith(`${l}/`));
    return k ? links[k]! + p.slice(k.length) : p;
  };
  return {
    readText: (p) => files[resolve(p)] ?? null,
    realpath: (p) => {
      const r = resolve(p);
      return r in files || r in (rec.stats ?? {}) || dirs.has(r) ? r : null;
    },
    stat: (p) => rec.stats?.[p] ?? null,
    readDir: (p) => (dirs.has(resolve(p)) ? [...dirs.get(resolve(p))!] : null),
    freeBytes: (d) => {
      const f = rec.free?.[d];
      if (f === undefined) throw new Error(`Not implemented: freeBytes(${d})`);
      return f;
    },
  };
}

/**
 * A Pi card reader: /dev/sdb (8:16) with sdb1 (8:17, FAT) and sdb2 (8:18),
 * a 16 GB disk. `extra` adds or replaces files (e.g. a mountinfo).
 */
export function cardReader(extra: { files?: Record<string, string>; sizeSectors?: number } = {}): HostRecord {
  const sys = '/sys/devices/pci0000:00/usb1/1-1/host2/target2:0:0/2:0:0:0/block/sdb';
  return {
    files: {
      [`${sys}/dev`]: '8:16\n',
      [`${sys}/size`]: `${extra.sizeSectors ?? 31116288}\n`,
      [`${sys}/sdb1/dev`]: '8:17\n',
      [`${sys}/sdb1/partition`]: '1\n',
      [`${sys}/sdb1/size`]: '1048576\n',
      [`${sys}/sdb2/dev`]: '8:18\n',
      [`${sys}/sdb2/partition`]: '2\n',
      [`${sys}/sdb2/size`]: '30000000\n',
      '/sys/devices/pci0000:00/virtio1/block/vda/dev': '254:0\n',
      '/sys/devices/pci0000:00/virtio1/block/vda/size': '536870912\n',
      '/proc/self/mountinfo': '22 27 0:21 / /proc rw,relatime - proc proc rw\n27 1 254:0 / / rw,relatime - ext4 /dev/vda rw\n',
      '/proc/self/mounts': 'proc /proc proc rw 0 0\n/dev/vda / ext4 rw 0 0\n',
      '/proc/swaps': 'Filename\t\t\t\tType\t\tSize\t\tUsed\t\tPriority\n',
      ...extra.files,
    },
    links: {
      '/sys/dev/block/8:16': sys,
      '/sys/dev/block/8:17': `${sys}/sdb1`,
      '/sys/dev/block/8:18': `${sys}/sdb2`,
      '/sys/dev/block/254:0': '/sys/devices/pci0000:00/virtio1/block/vda',
      '/sys/class/block/sdb': sys,
      '/sys/class/block/sdb1': `${sys}/sdb1`,
      '/sys/class/block/sdb2': `${sys}/sdb2`,
    },
    stats: {
      '/dev/sdb': { kind: 'block', size: 0, major: 8, minor: 16 },
      '/dev/sdb1': { kind: 'block', size: 0, major: 8, minor: 17 },
      '/dev/vda': { kind: 'block', size: 0, major: 254, minor: 0 },
    },
  };
}
