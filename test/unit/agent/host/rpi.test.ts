import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import t from 'tap';
import { createHostReader } from '../../../../agent/host/reader.js';
import { hwmonUnderVoltage, parseGetThrottled, parseThermalZone, throttleFlags } from '../../../../agent/host/rpi.js';
import { fixtureReaderOptions } from './fixtures.js';

t.test('get_throttled: sysfs hex and vcgencmd spelling', async (t) => {
  t.equal(parseGetThrottled('50005\n'), 0x50005);
  t.equal(parseGetThrottled('throttled=0x50005'), 0x50005);
  t.equal(parseGetThrottled('0x0'), 0);
  t.equal(parseGetThrottled('nonsense'), null);
  t.equal(parseGetThrottled(''), null);
});

t.test('0x50005 = under-voltage and throttled now, both since boot', async (t) => {
  t.same(throttleFlags(0x50005), {
    now: { under_voltage: true, frequency_capped: false, throttled: true, soft_temp_limit: false },
    sinceBoot: { under_voltage: true, frequency_capped: false, throttled: true, soft_temp_limit: false },
  });
  t.same(throttleFlags(0x80000).sinceBoot, { under_voltage: false, frequency_capped: false, throttled: false, soft_temp_limit: true });
  t.same(throttleFlags(0x2).now, { under_voltage: false, frequency_capped: true, throttled: false, soft_temp_limit: false });
});

t.test('rpi_volt hwmon alarm knows only the present', async (t) => {
  t.same(hwmonUnderVoltage('1\n'), { now: { under_voltage: true, frequency_capped: false, throttled: false, soft_temp_limit: false }, sinceBoot: null });
  t.equal(hwmonUnderVoltage('x'), null);
});

t.test('thermal zone in millidegrees', async (t) => {
  t.same(parseThermalZone('0', 'cpu-thermal\n', '52582\n'), { zone: '0', type: 'cpu-thermal', celsius: 52.582 });
  t.equal(parseThermalZone('0', 'acpitz', ''), null);
});

t.test('reader over the recorded Pi 4', async (t) => {
  const r = createHostReader(fixtureReaderOptions('rpi4'));
  const th = r.throttle();
  t.equal(th.source, 'firmware', 'the firmware file wins over the hwmon alarm');
  t.equal(th.source === 'firmware' ? th.raw : -1, 0x50005);
  t.same(r.thermalZones(), [{ zone: '0', type: 'cpu-thermal', celsius: 52.582 }], 'cooling devices are not zones');
  t.same(r.sysBlock(), new Set(['mmcblk0', 'loop0', 'loop1', 'ram0', 'ram1']));
  t.same(r.uname(), { sysname: 'Linux', release: '6.6.51+rpt-rpi-v8', version: '#1 SMP PREEMPT Debian 1:6.6.51-1+rpt3 (2024-10-08)', machine: 'aarch64', nodename: 'pi-node-1', domainname: '(none)' });
  t.same(r.clockSync().synchronized, true);
});

t.test('reader over the recorded x86 box: no Pi firmware, two zones, timesyncd not synchronised', async (t) => {
  const r = createHostReader(fixtureReaderOptions('x86'));
  t.same(r.throttle(), { source: 'absent' });
  t.same(r.thermalZones().map((z) => [z.type, z.celsius]), [['acpitz', 27.8], ['x86_pkg_temp', 45]]);
  t.equal(r.clockSync().synchronized, false);
});

t.test('only the rpi_volt hwmon present (newer kernels without the firmware file)', async (t) => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'piswarm-hwmon-'));
  t.teardown(() => fs.rmSync(dir, { recursive: true, force: true }));
  fs.mkdirSync(path.join(dir, 'class', 'hwmon', 'hwmon3'), { recursive: true });
  fs.writeFileSync(path.join(dir, 'class', 'hwmon', 'hwmon3', 'name'), 'rpi_volt\n');
  fs.writeFileSync(path.join(dir, 'class', 'hwmon', 'hwmon3', 'in0_lcrit_alarm'), '1\n');
  const r = createHostReader({ procRoot: dir, sysRoot: dir, timesyncFile: path.join(dir, 'nope', 'synchronized') });
  const th = r.throttle();
  t.equal(th.source, 'hwmon');
  t.equal(th.source === 'hwmon' && th.flags.now.under_voltage, true);
  t.same(r.thermalZones(), [], 'no thermal class: no zones, no error');
  t.equal(r.sysBlock(), null, 'no /sys/block: null so names decide');
  t.equal(r.clockSync().synchronized, null, 'no timesyncd directory: unknown');
});

t.test('a missing mandatory procfs file throws (the sampler turns that into success 0)', async (t) => {
  const r = createHostReader({ procRoot: '/nonexistent-piswarm', sysRoot: '/nonexistent-piswarm' });
  t.throws(() => r.stat(), { code: 'ENOENT' });
});
