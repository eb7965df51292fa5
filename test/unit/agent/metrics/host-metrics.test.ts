import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import t from 'tap';
import { createHostMetrics } from '../../../../agent/metrics/host-metrics.js';
import type { SamplerClock } from '../../../../agent/metrics/sampler.js';
import { fixtureReaderOptions, type HostName } from '../host/fixtures.js';
import { promtoolCheck, promtoolSkip } from './promtool.js';

const silent = {
  debug() {}, info() {},
  warn(obj: unknown) {
    throw new Error(`Not implemented: warn ${JSON.stringify(obj)}`);
  },
} as never;

// Time stands still; the interval is registered but never fires (these tests sample by hand).
const clock: SamplerClock = {
  now: () => 1_700_003_600_000,
  setInterval: () => 'interval',
  clearInterval: (h) => {
    if (h !== 'interval') throw new Error(`Not implemented: clearInterval(${String(h)})`);
  },
};

function hostMetrics(t: { teardown(fn: () => void): void }, host: HostName, stateDir?: string, c: SamplerClock = clock) {
  const { procRoot, sysRoot, ...seams } = fixtureReaderOptions(host);
  const dir = stateDir ?? fs.mkdtempSync(path.join(os.tmpdir(), 'piswarm-state-'));
  if (!stateDir) t.teardown(() => fs.rmSync(dir, { recursive: true, force: true }));
  const hm = createHostMetrics({
    config: { metrics: { intervalMs: 5000, procRoot, sysRoot, textfileDir: '' }, diskBench: { maxBytes: 1 << 20, maxSeconds: 1 }, stateDir: dir },
    log: silent, clock: c, version: '9.9.9', ...seams,
  });
  t.teardown(() => hm.stop());
  return hm;
}

const series = (text: string, name: string) => text.split('\n').filter((l) => l.startsWith(name + '{') || l.startsWith(name + ' '));

t.test('Pi 4: node_exporter-compatible series with the exact recorded values', async (t) => {
  const hm = hostMetrics(t, 'rpi4');
  await hm.sampler.sampleOnce();
  const text = hm.render();
  t.equal(series(text, 'node_cpu_seconds_total').length, 32, '4 CPUs x 8 modes');
  t.ok(text.includes('node_cpu_seconds_total{cpu="2",mode="iowait"} 88.77\n'));
  t.same(series(text, 'node_boot_time_seconds'), ['node_boot_time_seconds 1700000000']);
  t.same(series(text, 'node_load5'), ['node_load5 0.38']);
  t.same(series(text, 'node_memory_MemTotal_bytes'), [`node_memory_MemTotal_bytes ${3885076 * 1024}`]);
  t.same(series(text, 'node_memory_MemAvailable_bytes'), [`node_memory_MemAvailable_bytes ${3141852 * 1024}`]);
  t.same(series(text, 'node_memory_Active_anon_bytes'), [`node_memory_Active_anon_bytes ${418340 * 1024}`]);
  t.same(series(text, 'node_disk_read_bytes_total'), [`node_disk_read_bytes_total{device="mmcblk0"} ${19304848 * 512}`], 'whole disk only: no mmcblk0p1/p2, no ram/loop');
  t.same(series(text, 'node_disk_written_bytes_total'), [`node_disk_written_bytes_total{device="mmcblk0"} ${31047874 * 512}`]);
  t.same(series(text, 'node_disk_io_time_seconds_total'), ['node_disk_io_time_seconds_total{device="mmcblk0"} 2188.712']);
  t.same(series(text, 'node_disk_reads_completed_total'), ['node_disk_reads_completed_total{device="mmcblk0"} 404212']);
  t.same(series(text, 'node_disk_writes_completed_total'), ['node_disk_writes_completed_total{device="mmcblk0"} 1092237']);
  t.same(series(text, 'piswarm_disk_read_bytes_per_second'), [], 'no rate from a single sample');
  t.same(series(text, 'piswarm_boot_disk_info'), ['piswarm_boot_disk_info{device="mmcblk0",source="root-mount"} 1']);
  t.same(series(text, 'node_filesystem_avail_bytes').slice(0, 2), [
    'node_filesystem_avail_bytes{device="tmpfs",fstype="tmpfs",mountpoint="/run"} 794148864',
    'node_filesystem_avail_bytes{device="/dev/mmcblk0p2",fstype="ext4",mountpoint="/"} 22687158272',
  ]);
  t.ok(series(text, 'node_filesystem_size_bytes').includes('node_filesystem_size_bytes{device="/dev/mmcblk0p1",fstype="vfat",mountpoint="/boot/firmware"} 535805952'));
  t.notOk(text.includes('mountpoint="/sys'), 'pseudo filesystems left out');
  t.notOk(text.includes('fstype="overlay"'), 'container layers left out');
  t.same(series(text, 'node_network_receive_bytes_total{device="eth0"}'), ['node_network_receive_bytes_total{device="eth0"} 1873456789']);
  t.same(series(text, 'node_network_receive_drop_total{device="eth0"}'), ['node_network_receive_drop_total{device="eth0"} 12']);
  t.same(series(text, 'node_thermal_zone_temp'), ['node_thermal_zone_temp{type="cpu-thermal",zone="0"} 52.582']);
  t.same(series(text, 'piswarm_rpi_throttled').filter((l) => l.endsWith(' 1')), [
    'piswarm_rpi_throttled{condition="under_voltage",when="now"} 1',
    'piswarm_rpi_throttled{condition="under_voltage",when="since_boot"} 1',
    'piswarm_rpi_throttled{condition="throttled",when="now"} 1',
    'piswarm_rpi_throttled{condition="throttled",when="since_boot"} 1',
  ]);
  t.equal(series(text, 'piswarm_rpi_throttled').length, 8);
  t.same(series(text, 'node_uname_info'), ['node_uname_info{sysname="Linux",release="6.6.51+rpt-rpi-v8",version="#1 SMP PREEMPT Debian 1:6.6.51-1+rpt3 (2024-10-08)",machine="aarch64",nodename="pi-node-1",domainname="(none)"} 1']);
  t.same(series(text, 'piswarm_clock_synchronized'), ['piswarm_clock_synchronized 1']);
  t.same(series(text, 'piswarm_build_info'), [`piswarm_build_info{version="9.9.9",node_version="${process.version}"} 1`]);
  t.equal(series(text, 'piswarm_process_resident_memory_bytes').length, 1);
  t.ok(Number(series(text, 'piswarm_process_resident_memory_bytes')[0]?.split(' ')[1]) > 10 * 1048576, 'this process\'s real RSS');
  for (const q of ['p50', 'p99', 'max']) t.equal(series(text, `piswarm_eventloop_delay_${q}_seconds`).length, 1, q);
  // The exporter-process series as client libraries name them ("Node Exporter Full" charts five of them).
  for (const name of ['process_cpu_seconds_total', 'process_resident_memory_bytes', 'process_start_time_seconds', 'process_virtual_memory_bytes', 'process_virtual_memory_max_bytes', 'process_open_fds', 'process_max_fds']) {
    t.equal(series(text, name).length, 1, `${name} served once`);
  }
  const value = (name: string) => series(text, name)[0]?.split(' ')[1];
  t.equal(value('process_resident_memory_bytes'), value('piswarm_process_resident_memory_bytes'), 'the same figure as the prefixed one');
  t.ok(Number(series(text, 'process_open_fds')[0]?.split(' ')[1]) >= 3, 'the agent\'s real descriptors');
  t.notOk(text.split('\n').some((l) => l.startsWith('piswarm_collector_success') && l.endsWith(' 0')), 'every collector succeeded');
});

t.test('Pi 4 snapshot', async (t) => {
  const hm = hostMetrics(t, 'rpi4');
  await hm.start();
  const s = hm.snapshot();
  t.equal(s.at, 1_700_003_600_000);
  t.same(s.rootFs, { device: '/dev/mmcblk0p2', fstype: 'ext4', sizeBytes: 31205634048, freeBytes: 24012251136, availBytes: 22687158272 });
  t.equal(s.maxTemperatureCelsius, 52.582);
  t.equal(s.throttlingSource, 'firmware');
  t.equal(s.throttling?.now.under_voltage, true);
  t.same(s.memory, { totalBytes: 3885076 * 1024, availableBytes: 3141852 * 1024, freeBytes: 1932648 * 1024, swapTotalBytes: 102396 * 1024, swapFreeBytes: 102396 * 1024 });
  t.same(s.bootDisk, { device: 'mmcblk0', source: 'root-mount' });
  t.same(s.load, { load1: 0.52, load5: 0.38, load15: 0.31 });
  t.equal(s.clockSync?.synchronized, true);
  s.memory = null;
  t.not(hm.snapshot().memory, null, 'snapshot() hands out a copy');
});

t.test('x86: two whole disks, no throttling series, absent state exported', async (t) => {
  const hm = hostMetrics(t, 'x86');
  await hm.sampler.sampleOnce();
  const text = hm.render();
  t.same(series(text, 'node_disk_read_bytes_total'), [
    `node_disk_read_bytes_total{device="nvme0n1"} ${345678901 * 512}`,
    `node_disk_read_bytes_total{device="sda"} ${98765432 * 512}`,
  ]);
  t.same(series(text, 'piswarm_rpi_throttled'), []);
  t.same(series(text, 'piswarm_rpi_throttle_source'), ['piswarm_rpi_throttle_source{source="absent"} 1']);
  t.same(series(text, 'piswarm_boot_disk_info'), ['piswarm_boot_disk_info{device="nvme0n1",source="root-mount"} 1']);
  t.same(series(text, 'piswarm_clock_synchronized'), ['piswarm_clock_synchronized 0']);
  t.same(series(text, 'node_memory_HugePages_Total'), ['node_memory_HugePages_Total 0']);
  t.equal(hm.snapshot().maxTemperatureCelsius, 45);
  t.equal(hm.snapshot().throttling, null);
});

t.test('a collector failing on a broken host file does not fail the scrape', async (t) => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'piswarm-broken-'));
  t.teardown(() => fs.rmSync(dir, { recursive: true, force: true }));
  fs.cpSync(fixtureReaderOptions('rpi4').procRoot, path.join(dir, 'proc'), { recursive: true });
  fs.writeFileSync(path.join(dir, 'proc', 'meminfo'), 'garbage\n');
  fs.rmSync(path.join(dir, 'proc', 'loadavg'));
  const { sysRoot, procRoot: _p, ...seams } = fixtureReaderOptions('rpi4');
  const hm = createHostMetrics({
    config: { metrics: { intervalMs: 5000, procRoot: path.join(dir, 'proc'), sysRoot, textfileDir: '' }, diskBench: { maxBytes: 1 << 20, maxSeconds: 1 }, stateDir: dir },
    log: silent, clock, version: '1', ...seams,
  });
  t.teardown(() => hm.stop());
  await hm.start();
  const text = hm.render();
  t.ok(text.includes('piswarm_collector_success{collector="meminfo"} 0'));
  t.ok(text.includes('piswarm_collector_success{collector="loadavg"} 0'));
  t.ok(text.includes('piswarm_collector_success{collector="cpu"} 1'));
  t.same(series(text, 'node_load1'), []);
  t.equal(hm.snapshot().memory, null, 'no stale memory in the snapshot');
});

t.test('disk benchmark result is loaded from the state file at start', async (t) => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'piswarm-state-'));
  t.teardown(() => fs.rmSync(dir, { recursive: true, force: true }));
  fs.writeFileSync(path.join(dir, 'disk-bench.json'), JSON.stringify({ device: '/dev/mmcblk0', bytes: 268435456, seconds: 6.1, bytesPerSecond: 44005812.5, blockSize: 4194304, at: '2024-01-01T00:00:00.000Z' }));
  const hm = hostMetrics(t, 'rpi4', dir);
  await hm.start();
  const text = hm.render();
  t.same(series(text, 'piswarm_disk_bench_read_bytes_per_second'), ['piswarm_disk_bench_read_bytes_per_second{device="mmcblk0"} 44005812.5']);
  t.same(series(text, 'piswarm_disk_bench_timestamp_seconds'), ['piswarm_disk_bench_timestamp_seconds{device="mmcblk0"} 1704067200']);
});

t.test('promtool accepts the whole scrape of both recorded hosts and of this machine', { skip: promtoolSkip() }, async (t) => {
  const texts: Array<[string, string]> = [];
  for (const host of ['rpi4', 'x86'] as const) {
    let now = 1_700_003_600_000;
    const hm = hostMetrics(t, host, undefined, { ...clock, now: () => (now += 5000) });
    await hm.sampler.sampleOnce();
    await hm.sampler.sampleOnce(); // second sample: the rate series appear too
    texts.push([host, hm.render()]);
  }
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'piswarm-state-'));
  t.teardown(() => fs.rmSync(dir, { recursive: true, force: true }));
  const live = createHostMetrics({ config: { metrics: { intervalMs: 5000, procRoot: '/proc', sysRoot: '/sys', textfileDir: '' }, diskBench: { maxBytes: 1 << 20, maxSeconds: 1 }, stateDir: dir }, log: silent, clock });
  t.teardown(() => live.stop());
  await live.sampler.sampleOnce();
  texts.push(['live', live.render()]);
  for (const [name, text] of texts) {
    const v = promtoolCheck(text);
    t.equal(v.parseError, null, `${name}: parses`);
    t.same(v.disallowedLint, [], `${name}: only node_exporter's own camelCase meminfo names are linted`);
    t.ok(series(text, 'piswarm_collector_success').length >= 10, `${name}: has collector series`);
  }
  t.ok(texts[0]?.[1].includes('piswarm_disk_busy_ratio{device="mmcblk0"} 0'), 'second sample of the same files: zero rates');
});

t.test('without timesyncd, timedated answers (chrony or ntpd hosts): again after 30 min when synchronised or unknown, 5 min when not', async (t) => {
  const { procRoot, sysRoot, ...seams } = fixtureReaderOptions('x86');
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'piswarm-state-'));
  t.teardown(() => fs.rmSync(dir, { recursive: true, force: true }));
  const answers = ['yes', 'no', 'bogus'];
  let asked = 0;
  let now = 0;
  const hm = createHostMetrics({
    config: { metrics: { intervalMs: 5000, procRoot, sysRoot, textfileDir: '' }, diskBench: { maxBytes: 1 << 20, maxSeconds: 1 }, stateDir: dir },
    log: silent, clock: { ...clock, now: () => now }, version: '1', ...seams,
    timesyncFile: path.join(dir, 'no-timesyncd/synchronized'),
    timedated: async () => {
      const a = answers[asked++];
      if (a === undefined) throw new Error('Not implemented: a fourth answer');
      return `${a}\n`;
    },
  });
  t.teardown(() => hm.stop());
  await hm.sampler.sampleOnce();
  t.same(series(hm.render(), 'piswarm_clock_synchronized'), ['piswarm_clock_synchronized 1'], 'yes');
  t.match(hm.snapshot().clockSync, { synchronized: true, detail: /NTPSynchronized=yes/ });
  const MIN = 60_000;
  now = 29 * MIN;
  await hm.sampler.sampleOnce();
  t.equal(asked, 1, 'synchronised: not asked again within 30 min');
  now = 30 * MIN;
  await hm.sampler.sampleOnce();
  t.same(series(hm.render(), 'piswarm_clock_synchronized'), ['piswarm_clock_synchronized 0'], 'no');
  t.match(hm.snapshot().clockSync?.detail, /set-ntp true/);
  now = 34 * MIN;
  await hm.sampler.sampleOnce();
  t.equal(asked, 2, 'not synchronised: not asked again within 5 min');
  now = 35 * MIN;
  await hm.sampler.sampleOnce();
  t.same(series(hm.render(), 'piswarm_clock_synchronized'), [], 'an answer it cannot read stays unknown: no series');
  t.match(hm.snapshot().clockSync?.detail, /timedatectl said "bogus"/);
  now = 64 * MIN;
  await hm.sampler.sampleOnce();
  t.equal(asked, 3, 'unknown: not asked again within 30 min');
  now = 65 * MIN;
  await hm.sampler.sampleOnce();
  t.match(hm.snapshot().clockSync, { synchronized: null, detail: /timedatectl did not answer \(Not implemented/ }, 'a failing timedatectl is unknown, not an error');
});

t.test('the board inventory is sampled at start and every 6 h; a failed attempt is retried after a minute, not on every sample', async (t) => {
  let now = 1_700_003_600_000;
  const moving: SamplerClock = { ...clock, now: () => now };
  const { procRoot, sysRoot, ...seams } = fixtureReaderOptions('rpi4');
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'piswarm-state-'));
  t.teardown(() => fs.rmSync(dir, { recursive: true, force: true }));
  let calls = 0;
  let fail = true;
  const hm = createHostMetrics({
    config: { metrics: { intervalMs: 5000, procRoot, sysRoot, textfileDir: '' }, diskBench: { maxBytes: 1 << 20, maxSeconds: 1 }, stateDir: dir },
    log: silent, clock: moving, version: '9.9.9', ...seams,
    inventory: async () => {
      calls++;
      if (fail) throw new Error('systeminformation failed');
      return { manufacturer: 'Raspberry Pi', model: 'Raspberry Pi 4 Model B', revision: '1.4', os: 'Debian GNU/Linux', os_release: '12', os_codename: 'bookworm', arch: 'arm64' };
    },
  });
  t.teardown(() => hm.stop());
  const info = () => series(hm.render(), 'piswarm_host_info');
  await hm.sampler.sampleOnce();
  t.equal(calls, 1, 'asked at the first sample');
  t.same(info(), [], 'no series while it fails');
  for (let i = 0; i < 11; i++) {
    now += 5000;
    await hm.sampler.sampleOnce();
  }
  t.equal(calls, 1, 'eleven samples within the minute: not asked again');
  fail = false;
  now += 5000;
  await hm.sampler.sampleOnce();
  t.equal(calls, 2, 'asked again a minute after the failure');
  t.equal(info().length, 1, 'and the series appears');
  now += 5 * 3600_000;
  await hm.sampler.sampleOnce();
  t.equal(calls, 2, 'not again within 6 h of a success');
  now += 3600_000;
  await hm.sampler.sampleOnce();
  t.equal(calls, 3, 'again after 6 h');
});
