/**
 * Our O_DIRECT read benchmark against dd (and fio when installed) on the same
 * device in the same run. Prints MB/s of each and the ratio, with PASS/FAIL on
 * agreement within 15%. A benchmark prints; it asserts nothing in tests.
 *
 *   node dist/bench/disk-bench.js [--device /dev/mmcblk0] [--mib 512] [--rounds 5]
 *
 * Default device: the whole disk behind /. When that block device cannot be
 * opened (EPERM in a sandbox whose device cgroup hides it), the comparison runs on
 * a scratch file on the filesystem of / instead: O_DIRECT still bypasses the page
 * cache, so all tools read the same disk, and the output says so.
 */
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { DISK_BENCH_OPEN_FLAGS, devicePath, runDiskBench } from '../agent/disk-bench/disk-bench.js';
import { resolveBootDisk } from '../agent/host/disks.js';
import { createHostReader } from '../agent/host/reader.js';

const MiB = 1 << 20;
const BS = 4 * MiB;

function opt(name: string): string | undefined {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 ? process.argv[i + 1] : undefined;
}

function bootDevice(): string | null {
  const r = createHostReader({ procRoot: '/proc', sysRoot: '/sys' });
  const disk = resolveBootDisk({ mounts: r.mounts(), stats: r.diskstats(), sysBlock: r.sysBlock() });
  return disk ? devicePath(disk.device) : null;
}

function canOpen(target: string): string | null {
  try {
    fs.closeSync(fs.openSync(target, DISK_BENCH_OPEN_FLAGS));
    return null;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code ?? String(err);
  }
}

function scratchFile(mib: number): string {
  const dir = fs.mkdtempSync(path.join('/var/tmp', 'piswarm-disk-bench-'));
  const file = path.join(dir, 'scratch.img');
  // Random data, so a deduplicating or compressing layer below cannot flatter any tool.
  const r = spawnSync('dd', [`if=/dev/urandom`, `of=${file}`, `bs=${BS}`, `count=${mib / 4}`, 'status=none', 'conv=fsync']);
  if (r.status !== 0) throw new Error(`cannot write ${file}: ${r.stderr.toString()}`);
  return file;
}

function dd(target: string, mib: number): number {
  const r = spawnSync('dd', [`if=${target}`, 'of=/dev/null', `bs=${BS}`, `count=${mib / 4}`, 'iflag=direct'], { encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`dd failed: ${r.stderr}`);
  // "536870912 bytes (537 MB, 512 MiB) copied, 0.405088 s, 1.3 GB/s": recompute from bytes and seconds, dd rounds its rate.
  const m = /(\d+) bytes .* copied, ([\d.]+) s/.exec(r.stderr);
  if (!m) throw new Error(`unexpected dd output: ${r.stderr}`);
  return Number(m[1]) / Number(m[2]);
}

function fio(target: string, mib: number): number | null {
  const which = spawnSync('sh', ['-c', 'command -v fio'], { encoding: 'utf8' });
  if (which.status !== 0) return null;
  const r = spawnSync('fio', [
    '--name=seqread', `--filename=${target}`, '--readonly', '--rw=read', `--bs=${BS}`, '--direct=1', `--size=${mib}M`,
    '--ioengine=psync', '--iodepth=1', '--numjobs=1', '--output-format=json',
  ], { encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`fio failed: ${r.stderr}`);
  const json = JSON.parse(r.stdout) as { jobs: Array<{ read: { bw_bytes: number } }> };
  return json.jobs[0]?.read.bw_bytes ?? null;
}

async function main(): Promise<void> {
  const mib = Math.max(4, Math.floor(Number(opt('mib') ?? 512) / 4) * 4);
  const rounds = Number(opt('rounds') ?? 5);
  let target = opt('device') ?? bootDevice();
  if (!target) throw new Error('no boot disk found; pass --device');
  let note = `device ${target}`;
  let cleanup: (() => void) | null = null;
  const refused = canOpen(target);
  if (refused !== null) {
    const file = scratchFile(mib);
    cleanup = () => fs.rmSync(path.dirname(file), { recursive: true, force: true });
    note = `device ${target} cannot be opened here (${refused}); using a ${mib} MiB scratch file on the same filesystem instead: ${file}`;
    target = file;
  }
  try {
    console.log(note);
    console.log(`${rounds} round(s) of ${mib} MiB sequential reads, ${BS / MiB} MiB blocks, O_DIRECT, ${os.cpus().length} CPUs`);
    const ours: number[] = [];
    const dds: number[] = [];
    const fios: number[] = [];
    for (let i = 0; i < rounds; i++) {
      // Alternate who goes first: on a shared VM the disk's speed drifts between runs, and the order must not favour anyone.
      const runOurs = async () => {
        const r = await runDiskBench({ device: target as string, maxBytes: mib * MiB, maxSeconds: 120, blockSize: BS });
        if (r.bytes !== mib * MiB) console.log(`note: ours read ${r.bytes} bytes (device shorter than ${mib} MiB?)`);
        ours.push(r.bytesPerSecond);
      };
      if (i % 2 === 0) await runOurs();
      dds.push(dd(target, mib));
      const f = fio(target, mib);
      if (f !== null) fios.push(f);
      if (i % 2 === 1) await runOurs();
      console.log(`round ${i + 1}: piswarm ${(ours[i]! / 1e6).toFixed(1)} MB/s, dd ${(dds[i]! / 1e6).toFixed(1)} MB/s${f !== null ? `, fio ${(f / 1e6).toFixed(1)} MB/s` : ''}`);
    }
    // Median, not mean: one run disturbed by a neighbour's I/O should not decide the verdict.
    const mean = (xs: number[]) => {
      const v = [...xs].sort((x, y) => x - y);
      return v.length % 2 ? (v[(v.length - 1) / 2] as number) : ((v[v.length / 2 - 1] as number) + (v[v.length / 2] as number)) / 2;
    };
    const a = mean(ours);
    const b = mean(dds);
    const ratio = a / b;
    console.log(`median: piswarm ${(a / 1e6).toFixed(1)} MB/s, dd ${(b / 1e6).toFixed(1)} MB/s, ratio ${ratio.toFixed(3)} ${Math.abs(ratio - 1) <= 0.15 ? 'PASS' : 'FAIL'} (within 15%)`);
    if (fios.length > 0) {
      const c = mean(fios);
      console.log(`median: fio ${(c / 1e6).toFixed(1)} MB/s, piswarm/fio ratio ${(a / c).toFixed(3)} ${Math.abs(a / c - 1) <= 0.15 ? 'PASS' : 'FAIL'} (within 15%)`);
    }
  } finally {
    cleanup?.();
  }
}

main().catch((err: unknown) => {
  console.error(err);
  process.exitCode = 1;
});
