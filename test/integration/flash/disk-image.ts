import { execFileSync, spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { closeSync, openSync, readSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

/**
 * Builds a small Raspberry-Pi-like disk image without root and without
 * mounts: an MBR (sfdisk) with a FAT32 LBA boot partition (mformat at an
 * offset) holding cmdline.txt, config.txt and a stock user-data, plus a
 * Linux partition with ext4 when mkfs.ext4 supports -E offset.
 */
export const BOOT_START_SECTOR = 2048;
export const BOOT_SECTORS = 65536; // 32 MiB: the smallest size mformat accepts as FAT32
export const ROOT_START_SECTOR = BOOT_START_SECTOR + BOOT_SECTORS;
export const IMAGE_BYTES = 64 << 20;
export const STOCK_CMDLINE = 'console=serial0,115200 console=tty1 root=PARTUUID=12345678-02 rootfstype=ext4 fsck.repair=yes rootwait\n';

export function have(tool: string): boolean {
  return spawnSync('sh', ['-c', `command -v ${tool}`], { stdio: 'ignore' }).status === 0;
}

/** Tools the synthetic image needs; the test skips with this list when any is missing. */
export function missingTools(): string[] {
  return ['sfdisk', 'mformat', 'mcopy', 'mtype', 'mdir', 'xz'].filter((t) => !have(t));
}

export function sfdiskScript(parts: string[]): string {
  return `label: dos\nlabel-id: 0x12345678\n${parts.join('\n')}\n`;
}

export function buildPiImage(dir: string, name = 'pi.img'): { path: string; ext4: boolean } {
  const path = join(dir, name);
  execFileSync('truncate', ['-s', String(IMAGE_BYTES), path]);
  execFileSync('sfdisk', ['-q', path], {
    input: sfdiskScript([`start=${BOOT_START_SECTOR}, size=${BOOT_SECTORS}, type=c, bootable`, `start=${ROOT_START_SECTOR}, type=83`]),
  });
  const off = `${path}@@${BOOT_START_SECTOR * 512}`;
  execFileSync('mformat', ['-i', off, '-F', '-v', 'bootfs', '::'], { env: { ...process.env, MTOOLS_SKIP_CHECK: '1' } });
  writeFileSync(join(dir, 'cmdline.txt'), STOCK_CMDLINE);
  writeFileSync(join(dir, 'config.txt'), 'arm_64bit=1\n');
  writeFileSync(join(dir, 'user-data'), '#cloud-config\n# stock user-data shipped with the image\n');
  execFileSync('mcopy', ['-i', off, join(dir, 'cmdline.txt'), join(dir, 'config.txt'), join(dir, 'user-data'), '::/'], { env: { ...process.env, MTOOLS_SKIP_CHECK: '1' } });
  let ext4 = false;
  if (have('mkfs.ext4')) {
    const sizeK = ((IMAGE_BYTES / 512 - ROOT_START_SECTOR) * 512) / 1024;
    ext4 = spawnSync('mkfs.ext4', ['-q', '-F', '-L', 'rootfs', '-E', `offset=${ROOT_START_SECTOR * 512}`, path, `${sizeK}k`], { stdio: 'ignore' }).status === 0;
  }
  return { path, ext4 };
}

export function sha256(path: string, maxBytes = Infinity): string {
  const h = createHash('sha256');
  const fd = openSync(path, 'r');
  try {
    const buf = Buffer.alloc(1 << 20);
    let pos = 0;
    while (pos < maxBytes) {
      const n = readSync(fd, buf, 0, Math.min(buf.length, maxBytes - pos), pos);
      if (n <= 0) break;
      h.update(buf.subarray(0, n));
      pos += n;
    }
  } finally {
    closeSync(fd);
  }
  return h.digest('hex');
}

export function readRange(path: string, start: number, length: number): Buffer {
  const fd = openSync(path, 'r');
  try {
    const b = Buffer.alloc(length);
    const n = readSync(fd, b, 0, length, start);
    return b.subarray(0, n);
  } finally {
    closeSync(fd);
  }
}

/** A fake release tarball with scripts/install.sh, made by tar (GNU tar is on every Debian). */
export function buildRelease(dir: string): string {
  const src = join(dir, 'release-src', 'piswarm-0.1.0', 'scripts');
  execFileSync('mkdir', ['-p', src]);
  writeFileSync(join(src, 'install.sh'), '#!/bin/sh\necho install\n');
  const out = join(dir, 'piswarm-0.1.0.tar.gz');
  execFileSync('tar', ['-czf', out, '-C', join(dir, 'release-src'), 'piswarm-0.1.0']);
  return out;
}

export function mtoolsRead(image: string, offset: number, name: string): Buffer {
  return execFileSync('mtype', ['-i', `${image}@@${offset}`, `::/${name}`], { env: { ...process.env, MTOOLS_SKIP_CHECK: '1' }, maxBuffer: 64 << 20 });
}

export function mtoolsList(image: string, offset: number): string[] {
  return execFileSync('mdir', ['-i', `${image}@@${offset}`, '-b', '::/'], { env: { ...process.env, MTOOLS_SKIP_CHECK: '1' } })
    .toString('utf8').split('\n').map((l) => l.trim().replace(/^::\//, '')).filter(Boolean);
}

