import fs from 'node:fs';
import path from 'node:path';
import { PiswarmError } from '../../shared/errors.js';
import type { SampledCollector } from '../metrics/sampler.js';
import type { MetricFamily } from '../metrics/types.js';
import { writeFileAtomic } from '../lifecycle/state-file.js';

/**
 * Active, opt-in, read-only sequential read benchmark of a block device with the
 * page cache bypassed (O_DIRECT), so the figure is the SD card's and not RAM's.
 */

/** Read-only, direct. The benchmark must never be able to write to a disk: a test asserts these bits. */
export const DISK_BENCH_OPEN_FLAGS = fs.constants.O_RDONLY | fs.constants.O_DIRECT;
export const DEFAULT_BLOCK_SIZE = 4 * 1024 * 1024;
export const STATE_FILE = 'disk-bench.json';
const WASM_PAGE = 65536;

export interface DiskBenchResult {
  /** Device as benchmarked, e.g. /dev/mmcblk0. */
  device: string;
  bytes: number;
  seconds: number;
  bytesPerSecond: number;
  blockSize: number;
  /** ISO time the run finished. */
  at: string;
}

export interface DiskBenchOptions {
  /** Device path or bare name (mmcblk0 -> /dev/mmcblk0). */
  device: string;
  maxBytes: number;
  maxSeconds: number;
  /** 1-4 MiB, a multiple of 64 KiB. */
  blockSize?: number;
  /** When set, the result is persisted to stateDir/disk-bench.json. */
  stateDir?: string;
  now?: () => number;
}

/**
 * O_DIRECT needs the user buffer aligned to the device's logical block (up to 4096
 * bytes). JavaScript cannot learn a Buffer's address, and Buffer.alloc gives malloc
 * alignment (16 bytes). A WebAssembly.Memory's backing store is an mmap reservation,
 * hence page-aligned, so a Buffer over it is aligned by construction; a run on this
 * machine's virtio disk confirms reads succeed (misalignment would be EINVAL).
 */
export function alignedBuffer(size: number): Buffer {
  const pages = Math.ceil(size / WASM_PAGE);
  // lib "ES2023" without "DOM" carries no WebAssembly typings; the global exists in every Node.
  const { WebAssembly: Wasm } = globalThis as unknown as { WebAssembly: { Memory: new (d: { initial: number; maximum: number }) => { buffer: ArrayBuffer } } };
  const mem = new Wasm.Memory({ initial: pages, maximum: pages });
  return Buffer.from(mem.buffer, 0, size);
}

export function devicePath(device: string): string {
  return device.startsWith('/') ? device : `/dev/${device}`;
}

function benchError(message: string, device: string, cause?: unknown): PiswarmError {
  const errno = (cause as NodeJS.ErrnoException | undefined)?.code;
  return new PiswarmError('PISWARM_ERR_DISK_BENCH', message, { cause, details: { device, errno } });
}

// The disk is a process-wide resource: two concurrent benchmarks would measure each
// other, so the guard is module state on purpose (not per agent instance).
let inFlight = false;

export async function runDiskBench(opts: DiskBenchOptions): Promise<DiskBenchResult> {
  if (inFlight) throw new PiswarmError('PISWARM_ERR_BUSY', 'a disk benchmark is already running');
  inFlight = true;
  try {
    const result = await readDevice(opts);
    if (opts.stateDir !== undefined) saveDiskBenchResult(opts.stateDir, result);
    return result;
  } finally {
    inFlight = false;
  }
}

async function readDevice(opts: DiskBenchOptions): Promise<DiskBenchResult> {
  const device = devicePath(opts.device);
  const blockSize = opts.blockSize ?? DEFAULT_BLOCK_SIZE;
  if (!Number.isInteger(blockSize) || blockSize < 1 << 20 || blockSize > 4 << 20 || blockSize % WASM_PAGE !== 0) {
    throw new PiswarmError('PISWARM_ERR_BAD_REQUEST', 'blockSize must be 1-4 MiB in 64 KiB steps', { details: { blockSize } });
  }
  if (!(opts.maxBytes > 0) || !(opts.maxSeconds > 0)) {
    throw new PiswarmError('PISWARM_ERR_BAD_REQUEST', 'maxBytes and maxSeconds must be positive', { details: { maxBytes: opts.maxBytes, maxSeconds: opts.maxSeconds } });
  }
  let st: fs.Stats;
  try {
    st = await fs.promises.stat(device);
  } catch (err) {
    throw benchError(`cannot stat ${device}`, device, err);
  }
  // Regular files are accepted so the benchmark can be exercised on a file of a filesystem that supports O_DIRECT.
  if (!st.isBlockDevice() && !st.isFile()) throw benchError(`${device} is neither a block device nor a file`, device);

  let fh: fs.promises.FileHandle;
  try {
    fh = await fs.promises.open(device, DISK_BENCH_OPEN_FLAGS);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    throw benchError(
      code === 'EINVAL' ? `${device} refuses O_DIRECT (tmpfs/overlay?); no cache-free figure is possible` : `cannot open ${device} read-only`,
      device, err,
    );
  }
  const now = opts.now ?? (() => performance.now());
  const buf = alignedBuffer(blockSize);
  let bytes = 0;
  const t0 = now();
  let elapsed = 0;
  try {
    while (bytes < opts.maxBytes && elapsed < opts.maxSeconds) {
      // Keep every request a whole block: O_DIRECT rejects lengths that are not multiples of the logical block size.
      const want = Math.min(blockSize, Math.ceil((opts.maxBytes - bytes) / 4096) * 4096);
      let n: number;
      try {
        ({ bytesRead: n } = await fh.read(buf, 0, want, bytes));
      } catch (err) {
        throw benchError(`read of ${device} at ${bytes} failed`, device, err);
      }
      elapsed = (now() - t0) / 1000;
      if (n === 0) break; // end of device
      bytes += n;
    }
  } finally {
    await fh.close();
  }
  if (bytes === 0) throw benchError(`${device} returned no data`, device);
  return { device, bytes, seconds: elapsed, bytesPerSecond: bytes / elapsed, blockSize, at: new Date().toISOString() };
}

export function saveDiskBenchResult(stateDir: string, result: DiskBenchResult): void {
  fs.mkdirSync(stateDir, { recursive: true });
  const file = path.join(stateDir, STATE_FILE);
  // A crash or power cut mid-write (common on Pis) leaves the old result, never half a file.
  writeFileAtomic(file, JSON.stringify(result) + '\n', 0o644);
}

function isResult(x: unknown): x is DiskBenchResult {
  const r = x as Partial<DiskBenchResult> | null;
  return !!r && typeof r.device === 'string' && [r.bytes, r.seconds, r.bytesPerSecond, r.blockSize].every((n) => typeof n === 'number' && Number.isFinite(n))
    && typeof r.at === 'string' && !Number.isNaN(Date.parse(r.at));
}

/** Null when there is no file yet; PISWARM_ERR_DISK_BENCH when it exists but is not a result. */
export function loadDiskBenchResult(stateDir: string): DiskBenchResult | null {
  const file = path.join(stateDir, STATE_FILE);
  let text: string;
  try {
    text = fs.readFileSync(file, 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return null;
    throw benchError(`cannot read ${file}`, file, err);
  }
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch (err) {
    throw benchError(`${file} is not JSON`, file, err);
  }
  if (!isResult(parsed)) throw benchError(`${file} does not hold a benchmark result`, file);
  return parsed;
}

/** Exposes the last result (loaded from stateDir on the first sample, replaced by update()). */
export function createDiskBenchCollector(stateDir: string): SampledCollector & { update(r: DiskBenchResult): void } {
  let loaded = false;
  let last: DiskBenchResult | null = null;
  return {
    name: 'disk_bench',
    sample() {
      if (loaded) return;
      last = loadDiskBenchResult(stateDir);
      loaded = true;
    },
    update(r) {
      last = r;
      loaded = true;
    },
    collect(): MetricFamily[] {
      if (!last) return [];
      const labels = { device: path.basename(last.device) };
      return [
        { name: 'piswarm_disk_bench_read_bytes_per_second', type: 'gauge', help: 'Sequential O_DIRECT read throughput of the last disk benchmark', samples: [{ labels, value: last.bytesPerSecond }] },
        { name: 'piswarm_disk_bench_timestamp_seconds', type: 'gauge', help: 'When the last disk benchmark finished, unixtime', samples: [{ labels, value: Date.parse(last.at) / 1000 }] },
      ];
    },
  };
}
