import { randomBytes } from 'node:crypto';
import { closeSync, constants as fsConstants, copyFileSync, createWriteStream, fsyncSync, mkdtempSync, openSync, readSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { basename, join } from 'node:path';
import { Transform } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { PiswarmError } from '../../shared/errors.js';
import { buildMetaData, buildNetworkConfig, buildNodeConfig, buildUserData, BOOT_KEY_FILE, BOOT_NODE_FILE, patchCmdline, validateProvision, type NodeProvision, type Wifi } from './cloud-init.js';
import type { ClusterFile } from './cluster-file.js';
import { fatCopyIn, fatRead, type FatVolume } from './fat.js';
import { inspectImage, openImage, type ImageInfo } from './image.js';
import { findBootPartition, parseMbr, partitionsEnd, SECTOR_SIZE, type MbrPartition } from './mbr.js';
import { inspectTarget, targetRefusals, type HostView, type TargetFacts } from './target.js';

export interface FlashRequest {
  image: string;
  target: string;
  cluster: ClusterFile;
  hostname: string;
  sshPublicKey: string;
  release: string;
  /** Optional linux-arm64 node binary (>= 20.18) for distros whose nodejs is too old. */
  nodeBinary?: string;
  timezone: string;
  wifi?: Wifi;
  /** Already answered yes (--yes); otherwise `confirm` is asked before a block device is written. */
  yes: boolean;
}

export interface FlashDeps {
  host: HostView;
  /** Resolves false when there is no terminal to ask. */
  confirm: (question: string) => Promise<boolean>;
  progress?: (written: number, total: number) => void;
  /** Random bytes for the instance id; injectable so tests are repeatable. */
  random?: (n: number) => Buffer;
}

export interface FlashResult {
  bytesWritten: number;
  boot: MbrPartition;
  filesWritten: string[];
  cmdlinePatched: boolean;
  instanceId: string;
}

const GZIP_MAGIC = [0x1f, 0x8b];

function refuse(message: string): PiswarmError {
  return new PiswarmError('PISWARM_ERR_FLASH_REFUSED', `refusing to flash: ${message}`);
}

function checkRelease(path: string): void {
  let fd: number;
  try {
    if (!statSync(path).isFile()) throw refuse(`release ${path} is not a file`);
    fd = openSync(path, 'r');
  } catch (err) {
    if (err instanceof PiswarmError) throw err;
    throw refuse(`cannot read release ${path}: ${(err as NodeJS.ErrnoException).code ?? 'error'}`);
  }
  const head = Buffer.alloc(2);
  try {
    readSync(fd, head, 0, 2, 0);
  } finally {
    closeSync(fd);
  }
  if (head[0] !== GZIP_MAGIC[0] || head[1] !== GZIP_MAGIC[1]) throw refuse(`release ${path} is not a .tar.gz (no gzip header); build one with \`npm run package\``);
}

/** ELF, 64-bit, little-endian, e_machine 183 (AArch64): what a 64-bit Pi OS runs. */
export function isArm64Elf(head: Buffer): boolean {
  return head.length >= 20 && head.readUInt32BE(0) === 0x7f454c46 && head[4] === 2 && head[5] === 1 && head.readUInt16LE(18) === 183;
}

function checkNodeBinary(path: string): void {
  const head = Buffer.alloc(20);
  try {
    const fd = openSync(path, 'r');
    try {
      readSync(fd, head, 0, 20, 0);
    } finally {
      closeSync(fd);
    }
  } catch (err) {
    throw refuse(`cannot read --node ${path}: ${(err as NodeJS.ErrnoException).code ?? 'error'}`);
  }
  if (!isArm64Elf(head)) throw refuse(`--node ${path} is not a linux-arm64 executable (take bin/node from nodejs.org's node-v20.x-linux-arm64 archive)`);
}

/**
 * Everything that can be checked without writing a byte, so that every refusal
 * leaves the target untouched. Returns what the write needs.
 */
export async function preflight(req: FlashRequest, deps: FlashDeps): Promise<{ image: ImageInfo; target: TargetFacts; boot: MbrPartition; provision: NodeProvision; nodeConfig: Record<string, unknown> }> {
  const instanceId = `piswarm-${req.hostname}-${(deps.random ?? randomBytes)(4).toString('hex')}`;
  const provision: NodeProvision = { hostname: req.hostname, sshPublicKey: req.sshPublicKey, timezone: req.timezone, instanceId, ...(req.wifi ? { wifi: req.wifi } : {}) };
  const problems = validateProvision(provision);
  if (problems.length > 0) throw refuse(`invalid input:\n${problems.map((p) => `  - ${p}`).join('\n')}`);
  const nodeConfig = buildNodeConfig(req.cluster, req.hostname);
  checkRelease(req.release);
  if (req.nodeBinary !== undefined) checkNodeBinary(req.nodeBinary);

  const image = await inspectImage(req.image);
  const parts = parseMbr(image.firstSector);
  const boot = findBootPartition(parts);
  if (boot.offset >= image.sizeBytes) throw new PiswarmError('PISWARM_ERR_IMAGE_LAYOUT', `unknown image layout: the boot partition starts beyond the image's end (${image.sizeBytes} bytes)`);
  if (partitionsEnd(parts) > image.sizeBytes + SECTOR_SIZE * 2048) {
    // A truncated download: partitions reach past the data (allowing a little slack for rounding).
    throw new PiswarmError('PISWARM_ERR_IMAGE_LAYOUT', `the image looks truncated: its partitions end at byte ${partitionsEnd(parts)} but it holds ${image.sizeBytes}`);
  }

  const target = inspectTarget(req.target, deps.host);
  const reasons = targetRefusals(target, req.image, deps.host.realpath(req.image), image.sizeBytes);
  if (reasons.length > 0) throw refuse(reasons.length === 1 ? reasons[0]! : `\n${reasons.map((r) => `  - ${r}`).join('\n')}`);

  if (target.kind === 'block' && !req.yes) {
    const gb = target.capacityBytes === null ? '?' : (target.capacityBytes / 1e9).toFixed(1);
    const ok = await deps.confirm(`Erase ALL data on ${target.path} (${gb} GB) and write ${basename(req.image)}?`);
    if (!ok) throw refuse(`${target.path} is a block device and writing was not confirmed (answer yes on a terminal, or pass --yes in scripts)`);
  }
  return { image, target, boot, provision, nodeConfig };
}

/** Streams the image to the target, fsyncs, and returns the bytes written. */
async function writeImage(image: ImageInfo, target: TargetFacts, progress?: FlashDeps['progress']): Promise<number> {
  // O_EXCL on a block device makes Linux refuse (EBUSY) one that is mounted or
  // otherwise claimed: a last guard against a mount that appeared after preflight.
  const flags = target.kind === 'block'
    ? fsConstants.O_WRONLY | fsConstants.O_EXCL
    : fsConstants.O_WRONLY | fsConstants.O_CREAT | fsConstants.O_TRUNC;
  let fd: number;
  try {
    fd = openSync(target.path, flags, 0o644);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    throw refuse(`cannot open ${target.path} for writing: ${code}${code === 'EBUSY' ? ' (in use)' : code === 'EACCES' ? ' (run as root for a block device)' : ''}`);
  }
  let written = 0;
  let lastReport = 0;
  const counter = new Transform({
    transform(chunk: Buffer, _enc, cb) {
      written += chunk.length;
      if (progress && written - lastReport >= 64 << 20) {
        lastReport = written;
        progress(written, image.sizeBytes);
      }
      cb(null, chunk);
    },
  });
  const src = openImage(image);
  try {
    await Promise.all([pipeline(src.stream, counter, createWriteStream('', { fd, autoClose: false, highWaterMark: 1 << 20 })), src.done]);
    fsyncSync(fd);
  } catch (err) {
    if (err instanceof PiswarmError) throw err;
    throw new PiswarmError('PISWARM_ERR_FLASH', `writing ${target.path} failed: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`, { cause: err });
  } finally {
    closeSync(fd);
  }
  if (written !== image.sizeBytes) throw new PiswarmError('PISWARM_ERR_FLASH', `wrote ${written} bytes but the image has ${image.sizeBytes}`);
  if (written !== lastReport) progress?.(written, image.sizeBytes);
  return written;
}

function readTargetMbr(path: string): Buffer {
  const fd = openSync(path, 'r');
  try {
    const b = Buffer.alloc(SECTOR_SIZE);
    readSync(fd, b, 0, SECTOR_SIZE, 0);
    return b;
  } finally {
    closeSync(fd);
  }
}

/** The release's name on the boot partition must match the first-boot script's glob. */
export function releaseNameOnBoot(path: string): string {
  const name = basename(path);
  return /^piswarm-[A-Za-z0-9._+-]+\.tar\.gz$/.test(name) ? name : 'piswarm-release.tar.gz';
}

export async function flash(req: FlashRequest, deps: FlashDeps): Promise<FlashResult> {
  const pre = await preflight(req, deps);
  const bytesWritten = await writeImage(pre.image, pre.target, deps.progress);

  // Re-read what landed on the target rather than trusting the image's header.
  const boot = findBootPartition(parseMbr(readTargetMbr(req.target)));
  const vol: FatVolume = { target: req.target, offset: boot.offset };
  const dir = mkdtempSync(join(tmpdir(), 'piswarm-boot-'));
  try {
    const files: [string, string | Buffer, number][] = [
      ['user-data', buildUserData(pre.provision, pre.nodeConfig), 0o644],
      ['meta-data', buildMetaData(pre.provision), 0o644],
      ['network-config', buildNetworkConfig(pre.provision), 0o600],
      [BOOT_KEY_FILE, `${req.cluster.key}\n`, 0o600],
      
    ];
    let cmdlinePatched = false;
    const cmdline = await fatRead(vol, 'cmdline.txt');
    if (cmdline !== null) {
      const patched = patchCmdline(cmdline.toString('utf8'), req.wifi?.country);
      if (patched !== cmdline.toString('utf8')) {
        files.push(['cmdline.txt', patched, 0o644]);
        cmdlinePatched = true;
      }
    }
    const paths = files.map(([name, content, mode]) => {
      const p = join(dir, name);
      writeFileSync(p, content, { mode });
      return p;
    });
    const releaseCopy = join(dir, releaseNameOnBoot(req.release));
    copyFileSync(req.release, releaseCopy);
    paths.push(releaseCopy);
    if (req.nodeBinary !== undefined) {
      const nodeCopy = join(dir, BOOT_NODE_FILE);
      copyFileSync(req.nodeBinary, nodeCopy);
      paths.push(nodeCopy);
    }
    await fatCopyIn(vol, paths);
    // mtools writes through its own descriptor; flush before saying "done" so pulling the card is safe.
    const fd = openSync(req.target, 'r');
    try {
      fsyncSync(fd);
    } finally {
      closeSync(fd);
    }
    return { bytesWritten, boot, filesWritten: [...files.map(([n]) => n), basename(releaseCopy), ...(req.nodeBinary !== undefined ? [BOOT_NODE_FILE] : [])], cmdlinePatched, instanceId: pre.provision.instanceId };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}
