import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import t from 'tap';
import {
  DISK_BENCH_OPEN_FLAGS, STATE_FILE, alignedBuffer, createDiskBenchCollector, devicePath, loadDiskBenchResult, runDiskBench, saveDiskBenchResult,
} from '../../../../agent/disk-bench/disk-bench.js';

const { O_RDONLY, O_WRONLY, O_RDWR, O_DIRECT, O_CREAT, O_TRUNC, O_APPEND, O_ACCMODE } = fs.constants as typeof fs.constants & { O_ACCMODE?: number };

t.test('the device is opened read-only and direct, never for writing', async (t) => {
  t.equal(DISK_BENCH_OPEN_FLAGS & (O_ACCMODE ?? 3), O_RDONLY, 'access mode is O_RDONLY');
  t.equal(DISK_BENCH_OPEN_FLAGS & (O_WRONLY | O_RDWR | O_CREAT | O_TRUNC | O_APPEND), 0, 'no write, create, truncate or append bit');
  t.equal(DISK_BENCH_OPEN_FLAGS & O_DIRECT, O_DIRECT, 'page cache bypassed');
});

t.test('devicePath', async (t) => {
  t.equal(devicePath('mmcblk0'), '/dev/mmcblk0');
  t.equal(devicePath('/dev/sda'), '/dev/sda');
});

// O_DIRECT needs a filesystem that supports it: use one on the disk, not tmpfs.
const scratchBase = ['/var/tmp', os.tmpdir()].find((d) => fs.existsSync(d)) as string;

function scratchFile(t: { teardown(fn: () => void): void }, mib: number): string {
  const dir = fs.mkdtempSync(path.join(scratchBase, 'piswarm-bench-'));
  t.teardown(() => fs.rmSync(dir, { recursive: true, force: true }));
  const file = path.join(dir, 'disk.img');
  const chunk = Buffer.alloc(1 << 20, 0xa5);
  const fd = fs.openSync(file, 'w');
  for (let i = 0; i < mib; i++) fs.writeSync(fd, chunk);
  fs.closeSync(fd);
  return file;
}

/** Skip reason when the scratch filesystem refuses O_DIRECT (tmpfs before Linux 6.6, overlay). */
function directSkip(): string | false {
  const probe = path.join(scratchBase, `piswarm-odirect-probe-${process.pid}`);
  fs.writeFileSync(probe, Buffer.alloc(4096));
  try {
    fs.closeSync(fs.openSync(probe, DISK_BENCH_OPEN_FLAGS));
    return false;
  } catch (err) {
    return `${scratchBase} refuses O_DIRECT (${(err as NodeJS.ErrnoException).code}); no cache-free read to test`;
  } finally {
    fs.rmSync(probe, { force: true });
  }
}
const skip = directSkip();

t.test('O_DIRECT enforces alignment here, and alignedBuffer satisfies it', { skip }, async (t) => {
  const file = scratchFile(t, 2);
  const fd = fs.openSync(file, DISK_BENCH_OPEN_FLAGS);
  t.teardown(() => fs.closeSync(fd));
  const plain = Buffer.alloc(1 << 20 + 1);
  t.throws(() => fs.readSync(fd, plain, 1, 1 << 20, 0), { code: 'EINVAL' }, 'a buffer at an odd address is refused');
  const buf = alignedBuffer(1 << 20);
  t.equal(fs.readSync(fd, buf, 0, 1 << 20, 0), 1 << 20);
  t.equal(buf[12345], 0xa5, 'the data really arrived');
});

t.test('reads up to maxBytes, persists atomically, and a second concurrent run is refused', { skip }, async (t) => {
  const file = scratchFile(t, 16);
  const stateDir = path.join(path.dirname(file), 'state');
  const first = runDiskBench({ device: file, maxBytes: 8 << 20, maxSeconds: 30, blockSize: 1 << 20, stateDir });
  await t.rejects(runDiskBench({ device: file, maxBytes: 1 << 20, maxSeconds: 1 }), { code: 'PISWARM_ERR_BUSY' });
  const r = await first;
  t.equal(r.device, file);
  t.equal(r.bytes, 8 << 20, 'stopped at maxBytes');
  t.equal(r.blockSize, 1 << 20);
  t.ok(r.seconds > 0 && r.bytesPerSecond === r.bytes / r.seconds);
  t.same(loadDiskBenchResult(stateDir), r, 'persisted');
  t.same(fs.readdirSync(stateDir), [STATE_FILE], 'no temporary file left behind');
  const again = await runDiskBench({ device: file, maxBytes: 64 << 20, maxSeconds: 30 });
  t.equal(again.bytes, 16 << 20, 'stops at the end of the device');
});

t.test('maxSeconds bounds the run', { skip }, async (t) => {
  const file = scratchFile(t, 8);
  let fake = 0;
  // Each read "takes" 1 s of the injected clock.
  const r = await runDiskBench({ device: file, maxBytes: 8 << 20, maxSeconds: 2, blockSize: 1 << 20, now: () => (fake += 1000) - 1000 });
  t.equal(r.bytes, 2 << 20);
  t.equal(r.seconds, 2);
});

t.test('bad devices and options get coded errors', async (t) => {
  await t.rejects(runDiskBench({ device: '/nonexistent/piswarm-disk', maxBytes: 1 << 20, maxSeconds: 1 }), { code: 'PISWARM_ERR_DISK_BENCH', details: { errno: 'ENOENT' } });
  await t.rejects(runDiskBench({ device: '/dev/null', maxBytes: 1 << 20, maxSeconds: 1 }), { code: 'PISWARM_ERR_DISK_BENCH' }, 'a character device is not a disk');
  await t.rejects(runDiskBench({ device: '/dev/null', maxBytes: 1 << 20, maxSeconds: 1, blockSize: 12345 }), { code: 'PISWARM_ERR_BAD_REQUEST' });
  await t.rejects(runDiskBench({ device: '/dev/null', maxBytes: 0, maxSeconds: 1 }), { code: 'PISWARM_ERR_BAD_REQUEST' });
  // The guard is released after failures.
  await t.rejects(runDiskBench({ device: '/dev/null', maxBytes: 1 << 20, maxSeconds: 1 }), { code: 'PISWARM_ERR_DISK_BENCH' });
});

t.test('state file: absent, corrupt, valid; collector exports it', async (t) => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'piswarm-state-'));
  t.teardown(() => fs.rmSync(dir, { recursive: true, force: true }));
  t.equal(loadDiskBenchResult(dir), null);
  fs.writeFileSync(path.join(dir, STATE_FILE), '{"device":');
  t.throws(() => loadDiskBenchResult(dir), { code: 'PISWARM_ERR_DISK_BENCH' });
  fs.writeFileSync(path.join(dir, STATE_FILE), '{"device":"/dev/sda"}');
  t.throws(() => loadDiskBenchResult(dir), { code: 'PISWARM_ERR_DISK_BENCH' });
  const c = createDiskBenchCollector(dir);
  t.throws(() => c.sample?.(0), { code: 'PISWARM_ERR_DISK_BENCH' }, 'a corrupt file is a failed sample, reported by the sampler');
  const result = { device: '/dev/sda', bytes: 4194304, seconds: 0.5, bytesPerSecond: 8388608, blockSize: 4194304, at: '2025-06-01T12:00:00.000Z' };
  saveDiskBenchResult(dir, result);
  const fresh = createDiskBenchCollector(dir);
  t.same(fresh.collect(), [], 'nothing before the first sample');
  await fresh.sample?.(0);
  t.same(fresh.collect().map((f) => [f.name, f.samples]), [
    ['piswarm_disk_bench_read_bytes_per_second', [{ labels: { device: 'sda' }, value: 8388608 }]],
    ['piswarm_disk_bench_timestamp_seconds', [{ labels: { device: 'sda' }, value: 1748779200 }]],
  ]);
  fresh.update({ ...result, bytesPerSecond: 1 });
  t.equal(fresh.collect()[0]?.samples[0]?.value, 1);
});
