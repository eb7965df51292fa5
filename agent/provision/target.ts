import { readdirSync, readFileSync, realpathSync, statSync, statfsSync } from 'node:fs';
import { basename, dirname } from 'node:path';

/**
 * What the flasher needs to know about the machine to refuse a dangerous
 * target: a narrow read-only view of /proc, /sys and the file system, so the
 * refusal logic is tested over recorded states and the real adapter is thin.
 */
export interface HostView {
  /** File contents, or null when the file does not exist or cannot be read. */
  readText(path: string): string | null;
  realpath(path: string): string | null;
  stat(path: string): { kind: 'file' | 'block' | 'directory' | 'other'; size: number; major: number; minor: number } | null;
  readDir(path: string): string[] | null;
  /** Bytes available to us on the file system holding `dir`. */
  freeBytes(dir: string): number | null;
}

const orNull = <T>(f: () => T): T | null => {
  try {
    return f();
  } catch {
    // Absent or unreadable is an answer here ("not mounted", "no such device"), not an error.
    return null;
  }
};

export const realHostView: HostView = {
  readText: (p) => orNull(() => readFileSync(p, 'utf8')),
  realpath: (p) => orNull(() => realpathSync(p)),
  stat: (p) => orNull(() => {
    const s = statSync(p);
    const kind = s.isFile() ? 'file' : s.isBlockDevice() ? 'block' : s.isDirectory() ? 'directory' : 'other';
    // Node exposes rdev as a number: Linux's new_encode_dev layout.
    const major = (s.rdev >> 8) & 0xfff;
    const minor = (s.rdev & 0xff) | ((s.rdev >> 12) & 0xfff00);
    return { kind, size: s.size, major, minor } as const;
  }),
  readDir: (p) => orNull(() => readdirSync(p)),
  freeBytes: (d) => orNull(() => {
    const s = statfsSync(d);
    return s.bavail * s.bsize;
  }),
};

export interface TargetFacts {
  path: string;
  realPath: string;
  kind: 'missing' | 'file' | 'block' | 'directory' | 'other';
  /** Capacity of a block device; for a file, the free space it can grow into. */
  capacityBytes: number | null;
  /** The target is a partition (e.g. /dev/sda1) rather than a whole disk. */
  isPartition: boolean;
  /** Device names that make up the target (disk, partitions, holders, backing loop devices). */
  devices: string[];
  /** Human-readable "where" for every mount or swap using the target. */
  inUse: string[];
  /** The target is (or backs) the disk holding `/`. */
  holdsRoot: boolean;
}

interface BlockDev {
  name: string;
  dev: string; // major:minor
}

/** sysfs directory of a block device (disk or partition). */
function sysDir(view: HostView, majMin: string): string | null {
  return view.realpath(`/sys/dev/block/${majMin}`);
}

/** A disk, its partitions and whatever is stacked on them (dm, md). */
function family(view: HostView, diskDir: string): BlockDev[] {
  const out: BlockDev[] = [];
  const seen = new Set<string>();
  const add = (dir: string) => {
    const dev = view.readText(`${dir}/dev`)?.trim();
    const name = basename(dir);
    if (!dev || seen.has(name)) return;
    seen.add(name);
    out.push({ name, dev });
    for (const h of view.readDir(`${dir}/holders`) ?? []) {
      const hd = view.realpath(`/sys/class/block/${h}`);
      if (hd) add(hd);
    }
  };
  add(diskDir);
  for (const entry of view.readDir(diskDir) ?? []) {
    if (view.readText(`${diskDir}/${entry}/partition`) !== null) add(`${diskDir}/${entry}`);
  }
  return out;
}

/** Whole disks under a device, following dm/md slaves (root on LVM or RAID). */
function disksUnder(view: HostView, dir: string, depth = 0): string[] {
  if (depth > 8) return [];
  if (view.readText(`${dir}/partition`) !== null) return [basename(dirname(dir))];
  const slaves = view.readDir(`${dir}/slaves`) ?? [];
  if (slaves.length === 0) return [basename(dir)];
  return slaves.flatMap((s) => {
    const sd = view.realpath(`/sys/class/block/${s}`);
    return sd ? disksUnder(view, sd, depth + 1) : [];
  });
}

export interface MountEntry {
  dev: string; // major:minor
  mountPoint: string;
  source: string;
}

/** /proc/self/mountinfo: field 3 is major:minor, 5 the mount point, and after " - " the fs type and source. */
export function parseMountinfo(text: string): MountEntry[] {
  const out: MountEntry[] = [];
  for (const line of text.split('\n')) {
    if (!line.trim()) continue;
    const [left, right] = line.split(' - ');
    const f = left!.split(' ');
    const r = (right ?? '').split(' ');
    if (f.length < 5) continue;
    out.push({ dev: f[2]!, mountPoint: unescapeMount(f[4]!), source: unescapeMount(r[1] ?? '') });
  }
  return out;
}

/** /proc/self/mounts: source, mount point, ... (octal escapes for spaces). */
export function parseMounts(text: string): { source: string; mountPoint: string }[] {
  return text.split('\n').filter((l) => l.trim()).map((l) => {
    const f = l.split(' ');
    return { source: unescapeMount(f[0] ?? ''), mountPoint: unescapeMount(f[1] ?? '') };
  });
}

function unescapeMount(s: string): string {
  return s.replace(/\\([0-7]{3})/g, (_, o: string) => String.fromCharCode(parseInt(o, 8)));
}

function rootDisks(view: HostView): string[] {
  const root = parseMountinfo(view.readText('/proc/self/mountinfo') ?? '').filter((m) => m.mountPoint === '/').pop();
  if (!root) return [];
  const dir = sysDir(view, root.dev);
  return dir ? disksUnder(view, dir) : [];
}

export function inspectTarget(path: string, view: HostView): TargetFacts {
  const st = view.stat(path);
  const realPath = view.realpath(path) ?? path;
  const facts: TargetFacts = { path, realPath, kind: st ? st.kind : 'missing', capacityBytes: null, isPartition: false, devices: [], inUse: [], holdsRoot: false };
  let devs: BlockDev[] = [];
  let disks: string[] = [];
  if (st?.kind === 'block') {
    const dir = sysDir(view, `${st.major}:${st.minor}`);
    if (dir) {
      facts.isPartition = view.readText(`${dir}/partition`) !== null;
      const sectors = Number(view.readText(`${dir}/size`)?.trim());
      if (Number.isFinite(sectors)) facts.capacityBytes = sectors * 512; // sysfs counts 512-byte units whatever the logical block size
      devs = family(view, dir);
      disks = disksUnder(view, dir);
    } else {
      devs = [{ name: basename(realPath), dev: `${st.major}:${st.minor}` }];
      disks = [basename(realPath)];
    }
  } else if (st?.kind === 'file' || st === null) {
    facts.capacityBytes = view.freeBytes(st ? dirname(realPath) : dirname(path));
    if (st) facts.capacityBytes = facts.capacityBytes === null ? null : facts.capacityBytes + st.size;
    // An image file attached to a loop device may be mounted through it.
    for (const name of view.readDir('/sys/block') ?? []) {
      if (!name.startsWith('loop')) continue;
      const backing = view.readText(`/sys/block/${name}/loop/backing_file`)?.trim();
      if (backing && backing.replace(/ \(deleted\)$/, '') === realPath) {
        const dir = view.realpath(`/sys/block/${name}`);
        if (dir) {
          devs.push(...family(view, dir));
          disks.push(name);
        }
      }
    }
  }
  facts.devices = devs.map((d) => d.name);
  const byDev = new Map(devs.map((d) => [d.dev, d.name]));
  const devPaths = new Set(devs.map((d) => `/dev/${d.name}`));
  if (st?.kind === 'block') devPaths.add(realPath);
  for (const m of parseMountinfo(view.readText('/proc/self/mountinfo') ?? '')) {
    const name = byDev.get(m.dev);
    if (name) facts.inUse.push(`/dev/${name} mounted on ${m.mountPoint}`);
  }
  for (const m of parseMounts(view.readText('/proc/self/mounts') ?? '')) {
    const src = view.realpath(m.source) ?? m.source;
    if (devPaths.has(src)) facts.inUse.push(`${m.source} mounted on ${m.mountPoint}`);
  }
  for (const line of (view.readText('/proc/swaps') ?? '').split('\n').slice(1)) {
    const src = line.split(/\s+/)[0];
    if (src && devPaths.has(view.realpath(src) ?? src)) facts.inUse.push(`${src} used as swap`);
  }
  facts.inUse = [...new Set(facts.inUse)];
  const roots = new Set(rootDisks(view));
  facts.holdsRoot = disks.some((d) => roots.has(d));
  return facts;
}

/** Every reason not to write this image to this target; empty means go ahead. */
export function targetRefusals(t: TargetFacts, imagePath: string, imageRealPath: string | null, imageBytes: number): string[] {
  const r: string[] = [];
  if (t.realPath === imageRealPath || t.path === imagePath) r.push('the target is the image itself');
  if (t.kind === 'directory') r.push(`${t.path} is a directory; give a block device (e.g. /dev/sdb) or an image file name`);
  if (t.kind === 'other') r.push(`${t.path} is neither a block device nor a regular file`);
  if (t.isPartition) r.push(`${t.path} is a partition; give the whole card (e.g. /dev/sdb, /dev/mmcblk0), not one of its partitions`);
  if (t.holdsRoot) r.push(`${t.path} holds the running system's root file system (/)`);
  if (t.inUse.length > 0) r.push(`${t.path} is in use: ${t.inUse.join('; ')}. Unmount it first (e.g. \`sudo umount ${t.path}*\`)`);
  if (t.capacityBytes !== null && t.capacityBytes < imageBytes) {
    r.push(t.kind === 'block'
      ? `${t.path} is too small: ${t.capacityBytes} bytes, the image needs ${imageBytes}`
      : `not enough free space for ${t.path}: ${t.capacityBytes} bytes available, the image needs ${imageBytes}`);
  }
  return r;
}
