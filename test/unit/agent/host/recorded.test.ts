import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import t from 'tap';
import { USER_HZ } from '../../../../agent/host/procfs.js';
import { createHostMetrics } from '../../../../agent/metrics/host-metrics.js';
import type { SamplerClock } from '../../../../agent/metrics/sampler.js';
import { promtoolCheck, promtoolSkip } from '../metrics/promtool.js';
import { fixtureReaderOptions, fixtureText, type HostName } from './fixtures.js';

/**
 * The collectors over a set recorded from a real host by scripts/record-host-fixture.sh
 * (test/fixtures/hosts/x86-recorded: this build machine), checked against what other
 * tools said at the same moment (independent.json). A value the recording machine could
 * not give (tool missing) is null there, with the reason under `missing`: that check is skipped.
 */
const HOST: HostName = 'x86-recorded';

interface FreeMem { total: number; available: number }
interface IpLink { ifname: string; rx_bytes: number; tx_bytes: number }
interface Independent {
  nproc_all: number | null;
  free_b_before: FreeMem | null;
  free_b_after: FreeMem | null;
  getconf_clk_tck: number | null;
  uname_r: string;
  uname_m: string;
  uname_n: string;
  epoch_seconds_before_uptime: number;
  proc_uptime_seconds: number;
  ip_link_before: IpLink[] | null;
  ip_link_after: IpLink[] | null;
  lsblk_d: Array<{ name: string; type: string }> | null;
  df_root_size_bytes: number | null;
  missing: Record<string, string>;
}

const ind = JSON.parse(fixtureText(HOST, 'independent.json')) as Independent;
const skipUnless = (key: string, v: unknown): string | false =>
  v === null || v === undefined ? `not recorded: ${ind.missing[key] ?? 'no reason in independent.json'}` : false;

const silent = {
  debug() {}, info() {},
  warn(obj: unknown) {
    throw new Error(`Not implemented: warn ${JSON.stringify(obj)}`);
  },
} as never;

/** Renders the recorded set after `samples` samples, 5 s apart. */
async function scrape(t: { teardown(fn: () => void): void }, samples = 1): Promise<string> {
  const { procRoot, sysRoot, ...seams } = fixtureReaderOptions(HOST);
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'piswarm-state-'));
  t.teardown(() => fs.rmSync(dir, { recursive: true, force: true }));
  let now = 1_700_003_600_000;
  const clock: SamplerClock = {
    now: () => (now += 5000),
    setInterval: () => 'interval',
    clearInterval: (h) => {
      if (h !== 'interval') throw new Error(`Not implemented: clearInterval(${String(h)})`);
    },
  };
  const hm = createHostMetrics({
    config: { metrics: { intervalMs: 5000, procRoot, sysRoot, textfileDir: '' }, diskBench: { maxBytes: 1 << 20, maxSeconds: 1 }, stateDir: dir },
    log: silent, clock, version: '9.9.9', ...seams,
  });
  t.teardown(() => hm.stop());
  for (let i = 0; i < samples; i++) await hm.sampler.sampleOnce();
  return hm.render();
}

interface Sample { labels: Record<string, string>; value: number }

/** The samples of one metric in the exposition text. */
function samplesOf(text: string, name: string): Sample[] {
  const out: Sample[] = [];
  for (const line of text.split('\n')) {
    const m = /^([a-zA-Z_:][\w:]*)(?:\{(.*)\})? (\S+)$/.exec(line);
    if (!m || m[1] !== name) continue;
    const labels: Record<string, string> = {};
    for (const l of (m[2] ?? '').matchAll(/(\w+)="((?:[^"\\]|\\.)*)"/g)) labels[l[1] as string] = l[2] as string;
    out.push({ labels, value: Number(m[3]) });
  }
  return out;
}

const sorted = (xs: Iterable<string>) => [...new Set(xs)].sort();

t.test('every collector succeeds on the recorded files', async (t) => {
  const text = await scrape(t);
  const success = samplesOf(text, 'piswarm_collector_success');
  t.ok(success.length >= 8, `${success.length} collectors report`);
  t.same(success.filter((s) => s.value !== 1).map((s) => s.labels.collector), [], 'none failed');
});

t.test('CPUs: one per `nproc --all`', { skip: skipUnless('nproc_all', ind.nproc_all) }, async (t) => {
  const cpus = sorted(samplesOf(await scrape(t), 'node_cpu_seconds_total').map((s) => s.labels.cpu ?? ''));
  t.equal(cpus.length, ind.nproc_all, `${cpus.join(',')} vs nproc --all = ${ind.nproc_all}`);
});

t.test('every CPU has the 8 modes of /proc/stat', async (t) => {
  const cpu = samplesOf(await scrape(t), 'node_cpu_seconds_total');
  const cpus = sorted(cpu.map((s) => s.labels.cpu ?? ''));
  t.ok(cpus.length > 0, 'some CPUs');
  const modes = ['user', 'nice', 'system', 'idle', 'iowait', 'irq', 'softirq', 'steal'];
  for (const c of cpus) t.same(sorted(cpu.filter((s) => s.labels.cpu === c).map((s) => s.labels.mode ?? '')), sorted(modes), `cpu ${c}: the 8 modes`);
});

t.test('CPU seconds use the host clock tick: getconf CLK_TCK, and each CPU adds up to /proc/uptime', { skip: skipUnless('getconf_clk_tck', ind.getconf_clk_tck) }, async (t) => {
  t.equal(USER_HZ, ind.getconf_clk_tck, 'the parser divides by what getconf CLK_TCK says');
  const cpu = samplesOf(await scrape(t), 'node_cpu_seconds_total');
  for (const c of sorted(cpu.map((s) => s.labels.cpu ?? ''))) {
    const total = cpu.filter((s) => s.labels.cpu === c).reduce((a, s) => a + s.value, 0);
    // A CPU is in exactly one of the 8 modes at every tick, so their sum is its time since boot.
    // The sum runs a little behind uptime (2.2 % on the recording VM); a wrong tick rate is off by 2.5x or more.
    const ratio = total / ind.proc_uptime_seconds;
    t.ok(ratio > 0.95 && ratio <= 1.001, `cpu ${c}: ${total.toFixed(2)} s in all modes vs uptime ${ind.proc_uptime_seconds} s (ratio ${ratio.toFixed(4)})`);
  }
});

t.test('boot time agrees with the clock minus /proc/uptime', async (t) => {
  const boot = samplesOf(await scrape(t), 'node_boot_time_seconds');
  t.equal(boot.length, 1);
  const derived = ind.epoch_seconds_before_uptime - ind.proc_uptime_seconds;
  // btime is whole seconds; the clock was read just before /proc/uptime.
  t.ok(Math.abs((boot[0]?.value ?? NaN) - derived) < 2, `btime ${boot[0]?.value} vs date - uptime = ${derived.toFixed(2)}`);
});

t.test('memory: MemTotal is free -b total, MemAvailable what free -b said around the copy', { skip: skipUnless('free', ind.free_b_before) }, async (t) => {
  const text = await scrape(t);
  const before = ind.free_b_before as FreeMem;
  const after = ind.free_b_after as FreeMem;
  const total = samplesOf(text, 'node_memory_MemTotal_bytes');
  t.same(total.map((s) => s.value), [before.total], 'MemTotal exactly free\'s total (before)');
  t.equal(total[0]?.value, after.total, 'and after');
  const avail = samplesOf(text, 'node_memory_MemAvailable_bytes')[0]?.value ?? NaN;
  // free read /proc/meminfo just before and just after the copy; available memory moves
  // both ways, so allow the spread of the two readings plus 16 MiB.
  const lo = Math.min(before.available, after.available) - 16 * 1048576;
  const hi = Math.max(before.available, after.available) + 16 * 1048576;
  t.ok(avail >= lo && avail <= hi, `MemAvailable ${avail} within free's ${before.available}..${after.available} (±16 MiB)`);
});

t.test('node_uname_info: uname -r, -n and -m', async (t) => {
  const uname = samplesOf(await scrape(t), 'node_uname_info');
  t.equal(uname.length, 1);
  t.equal(uname[0]?.labels.release, ind.uname_r, 'release is uname -r');
  t.equal(uname[0]?.labels.nodename, ind.uname_n, 'nodename is uname -n');
  t.equal(uname[0]?.labels.machine, ind.uname_m, 'machine (injected by fixtureReaderOptions) is the recording host\'s uname -m');
});

t.test('whole disks are lsblk\'s disks, no partitions, loops or zram', { skip: skipUnless('lsblk_disks', ind.lsblk_d) }, async (t) => {
  const text = await scrape(t);
  // zram is a disk to lsblk but memory to piswarm (agent/host/disks.ts leaves it out on purpose).
  const lsblk = sorted((ind.lsblk_d ?? []).filter((d) => d.type === 'disk' && !/^z?ram\d+$/.test(d.name)).map((d) => d.name));
  t.ok(lsblk.length > 0, `lsblk lists ${lsblk.join(',')}`);
  for (const metric of ['node_disk_read_bytes_total', 'node_disk_written_bytes_total', 'node_disk_io_time_seconds_total']) {
    t.same(sorted(samplesOf(text, metric).map((s) => s.labels.device ?? '')), lsblk, metric);
  }
});

t.test('network devices and byte counters: between the two `ip -s -j link` readings', { skip: skipUnless('ip_link', ind.ip_link_before) }, async (t) => {
  const text = await scrape(t);
  const before = new Map((ind.ip_link_before ?? []).map((l) => [l.ifname, l]));
  const after = new Map((ind.ip_link_after ?? []).map((l) => [l.ifname, l]));
  const rx = samplesOf(text, 'node_network_receive_bytes_total');
  const tx = samplesOf(text, 'node_network_transmit_bytes_total');
  t.same(sorted(rx.map((s) => s.labels.device ?? '')), sorted(before.keys()), 'the devices ip listed before');
  t.same(sorted(rx.map((s) => s.labels.device ?? '')), sorted(after.keys()), 'and after');
  t.same(sorted(tx.map((s) => s.labels.device ?? '')), sorted(after.keys()), 'transmit too');
  // Counters only grow, and /proc/net/dev was copied between the two readings.
  for (const [dir, rows, key] of [['rx', rx, 'rx_bytes'], ['tx', tx, 'tx_bytes']] as const) {
    for (const s of rows) {
      const dev = s.labels.device ?? '';
      const lo = before.get(dev)?.[key] ?? NaN;
      const hi = after.get(dev)?.[key] ?? NaN;
      t.ok(s.value >= lo && s.value <= hi, `${dev} ${dir} ${s.value} in ${lo}..${hi}`);
    }
  }
});

t.test('the / filesystem has df\'s size', { skip: skipUnless('df_root_size_bytes', ind.df_root_size_bytes) }, async (t) => {
  const size = samplesOf(await scrape(t), 'node_filesystem_size_bytes').filter((s) => s.labels.mountpoint === '/');
  t.same(size.map((s) => s.value), [ind.df_root_size_bytes], 'df -B1 --output=size /');
});

t.test('promtool accepts the whole scrape of the recorded host', { skip: promtoolSkip() }, async (t) => {
  const text = await scrape(t, 2); // second sample: the rate series appear too
  t.ok(samplesOf(text, 'piswarm_disk_busy_ratio').length > 0, 'rate series present');
  const v = promtoolCheck(text);
  t.equal(v.parseError, null, 'parses');
  t.same(v.disallowedLint, [], 'only node_exporter\'s own camelCase meminfo names are linted');
});
