import { spawn } from 'node:child_process';
import { closeSync, createReadStream, openSync, readSync, statSync } from 'node:fs';
import type { Readable } from 'node:stream';
import { PiswarmError } from '../../shared/errors.js';
import { run, toolMissing } from './exec.js';
import { SECTOR_SIZE } from './mbr.js';

export interface ImageInfo {
  path: string;
  compressed: boolean;
  /** Uncompressed size in bytes (for .xz from `xz --robot --list`). */
  sizeBytes: number;
  /** The first 512 bytes of the uncompressed image (its MBR). */
  firstSector: Buffer;
}

export function isXz(path: string): boolean {
  return path.toLowerCase().endsWith('.xz');
}

/** The `totals` line of `xz --robot --list`: name, streams, blocks, compressed, uncompressed, ... */
export function parseXzRobotList(text: string): number {
  const line = text.split('\n').find((l) => l.startsWith('totals\t'));
  const size = line ? Number(line.split('\t')[4]) : NaN;
  if (!Number.isSafeInteger(size) || size < 0) throw new PiswarmError('PISWARM_ERR_IMAGE_LAYOUT', 'cannot tell the uncompressed size of the .xz image (`xz --robot --list` gave no totals line)');
  return size;
}

/** Decompresses only as far as the first sector, then stops xz. */
function xzFirstSector(path: string): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const child = spawn('xz', ['-dc', '--', path], { stdio: ['ignore', 'pipe', 'pipe'] });
    const chunks: Buffer[] = [];
    let have = 0;
    let done = false;
    let stderr = '';
    child.stderr.on('data', (b: Buffer) => (stderr += b.toString()));
    child.stdout.on('data', (b: Buffer) => {
      if (done) return;
      chunks.push(b);
      have += b.length;
      if (have >= SECTOR_SIZE) {
        done = true;
        child.kill('SIGTERM');
        resolve(Buffer.concat(chunks).subarray(0, SECTOR_SIZE));
      }
    });
    child.on('error', (e: NodeJS.ErrnoException) => reject(e.code === 'ENOENT' ? toolMissing('xz') : e));
    child.on('close', (code) => {
      if (done) return;
      if (code !== 0) reject(new PiswarmError('PISWARM_ERR_IMAGE_LAYOUT', `cannot decompress ${path}: ${stderr.trim() || `xz exited ${code}`}`));
      else resolve(Buffer.concat(chunks));
    });
  });
}

export async function inspectImage(path: string): Promise<ImageInfo> {
  let st;
  try {
    st = statSync(path);
  } catch (err) {
    throw new PiswarmError('PISWARM_ERR_FLASH_REFUSED', `refusing to flash: cannot read image ${path}: ${(err as NodeJS.ErrnoException).code ?? 'error'}`);
  }
  if (!st.isFile()) throw new PiswarmError('PISWARM_ERR_IMAGE_LAYOUT', `image ${path} is not a regular file`);
  if (isXz(path)) {
    const list = await run('xz', ['--robot', '--list', '--', path]);
    if (list.code !== 0) throw new PiswarmError('PISWARM_ERR_IMAGE_LAYOUT', `${path} is not a valid .xz file: ${list.stderr || `xz exited ${list.code}`}`);
    const sizeBytes = parseXzRobotList(list.stdout.toString('utf8'));
    return { path, compressed: true, sizeBytes, firstSector: await xzFirstSector(path) };
  }
  const fd = openSync(path, 'r');
  try {
    const firstSector = Buffer.alloc(SECTOR_SIZE);
    const n = readSync(fd, firstSector, 0, SECTOR_SIZE, 0);
    return { path, compressed: false, sizeBytes: st.size, firstSector: firstSector.subarray(0, n) };
  } finally {
    closeSync(fd);
  }
}

/**
 * The uncompressed image as a stream. For .xz, `done` rejects when xz fails
 * (a truncated download), so a short write is never reported as success.
 */
export function openImage(image: ImageInfo): { stream: Readable; done: Promise<void> } {
  if (!image.compressed) return { stream: createReadStream(image.path, { highWaterMark: 1 << 20 }), done: Promise.resolve() };
  const child = spawn('xz', ['-dc', '--', image.path], { stdio: ['ignore', 'pipe', 'pipe'] });
  let stderr = '';
  child.stderr.on('data', (b: Buffer) => (stderr += b.toString()));
  const done = new Promise<void>((resolve, reject) => {
    child.on('error', (e: NodeJS.ErrnoException) => reject(e.code === 'ENOENT' ? toolMissing('xz') : e));
    child.on('close', (code) => (code === 0 ? resolve() : reject(new PiswarmError('PISWARM_ERR_FLASH', `decompressing ${image.path} failed: ${stderr.trim() || `xz exited ${code}`}`))));
  });
  return { stream: child.stdout, done };
}
