import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import type { FsSpace } from '../../../../agent/host/reader.js';

/** The repository root: the first directory above this (compiled) file holding package.json. */
export function repoRoot(): string {
  let dir = path.dirname(fileURLToPath(import.meta.url));
  while (!fs.existsSync(path.join(dir, 'package.json'))) {
    const up = path.dirname(dir);
    if (up === dir) throw new Error('package.json not found above ' + fileURLToPath(import.meta.url));
    dir = up;
  }
  return dir;
}

export type HostName = 'rpi4' | 'x86' | 'x86-recorded';

export function hostDir(host: HostName): string {
  return path.join(repoRoot(), 'test', 'fixtures', 'hosts', host);
}

export function fixtureText(host: HostName, rel: string): string {
  return fs.readFileSync(path.join(hostDir(host), rel), 'utf8');
}

/**
 * statfs over a recorded table (`stat -f` of the host's mounts): a mountpoint not
 * in the table throws ENOENT like statfs(2) on a missing path, so a test cannot
 * silently read this machine's disks.
 */
export function recordedStatfs(host: HostName): (mountpoint: string) => FsSpace {
  const table = JSON.parse(fixtureText(host, 'statfs.json')) as Record<string, FsSpace>;
  return (mp) => {
    const s = table[mp];
    if (!s) throw Object.assign(new Error(`ENOENT: no such file or directory, statfs '${mp}'`), { code: 'ENOENT' });
    return s;
  };
}

export function fixtureReaderOptions(host: HostName) {
  const dir = hostDir(host);
  return {
    procRoot: path.join(dir, 'proc'),
    sysRoot: path.join(dir, 'sys'),
    timesyncFile: path.join(dir, 'run', 'systemd', 'timesync', 'synchronized'),
    statfs: recordedStatfs(host),
    machine: () => (host === 'rpi4' ? 'aarch64' : 'x86_64'),
  };
}
