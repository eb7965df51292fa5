import t from 'tap';
import { hostChecks } from '../../../../agent/health/host-checks.js';
import { throttleFlags } from '../../../../agent/host/rpi.js';
import { emptySnapshot, type HostSnapshot } from '../../../../agent/host/types.js';

const health = { diskFreeWarnPercent: 10, diskFreeFailPercent: 3, temperatureWarnCelsius: 75, temperatureFailCelsius: 82 };
const GiB = 1024 ** 3;

function pi(over: Partial<HostSnapshot> = {}): HostSnapshot {
  return {
    ...emptySnapshot(),
    at: Date.parse('2025-06-01T12:00:00.000Z'),
    rootFs: { device: '/dev/mmcblk0p2', fstype: 'ext4', sizeBytes: 100 * GiB, freeBytes: 55 * GiB, availBytes: 50 * GiB },
    thermalZones: [{ zone: '0', type: 'cpu-thermal', celsius: 52.582 }],
    maxTemperatureCelsius: 52.582,
    throttling: throttleFlags(0),
    throttlingSource: 'firmware',
    memory: { totalBytes: 4 * GiB, availableBytes: 3 * GiB, freeBytes: 2 * GiB, swapTotalBytes: 0, swapFreeBytes: 0 },
    clockSync: { synchronized: true, detail: 'synced' },
    ...over,
  };
}

const one = (s: HostSnapshot, key: string) => hostChecks(s, health)[key]?.[0];

t.test('a healthy Pi passes everything, with values, units and the sample time', async (t) => {
  const r = hostChecks(pi(), health);
  t.same(Object.keys(r), ['disk:free', 'host:temperature', 'host:power', 'clock:sync', 'memory:available']);
  t.same(r['disk:free'], [{ componentId: '/', componentType: 'filesystem', observedUnit: 'percent', status: 'pass', observedValue: 50, time: '2025-06-01T12:00:00.000Z' }]);
  t.same(r['host:temperature']?.[0], { componentType: 'system', observedUnit: 'Cel', status: 'pass', observedValue: 52.6, componentId: 'cpu-thermal', time: '2025-06-01T12:00:00.000Z' });
  t.same(r['host:power']?.[0], { componentType: 'system', status: 'pass', observedValue: 'ok', time: '2025-06-01T12:00:00.000Z' });
  t.equal(r['clock:sync']?.[0]?.status, 'pass');
  t.same(r['memory:available']?.[0]?.observedValue, 75);
  for (const [k, v] of Object.entries(r)) t.equal(v[0]?.output, undefined, `${k}: no output when passing`);
});

t.test('disk:free thresholds use avail (root-reserved blocks excluded)', async (t) => {
  const fs = (availPct: number) => pi({ rootFs: { device: null, fstype: null, sizeBytes: 1000 * GiB, freeBytes: 1000 * GiB, availBytes: availPct * 10 * GiB } });
  t.equal(one(fs(10), 'disk:free')?.status, 'pass', 'exactly at the warn threshold passes');
  t.match(one(fs(9.9), 'disk:free'), { status: 'warn', observedValue: 9.9, output: /9\.9% of \/ is free .* below 10%/ });
  t.match(one(fs(2.5), 'disk:free'), { status: 'fail', output: /below 3%/ });
  t.match(one(pi({ rootFs: null }), 'disk:free'), { status: 'warn', observedValue: null, output: /unknown/ });
});

t.test('host:temperature', async (t) => {
  const at = (c: number) => pi({ maxTemperatureCelsius: c, thermalZones: [{ zone: '0', type: 'cpu-thermal', celsius: c }] });
  t.equal(one(at(74.9), 'host:temperature')?.status, 'pass');
  t.match(one(at(75), 'host:temperature'), { status: 'warn', observedValue: 75, output: /75 °C at or above 75 °C/ });
  t.match(one(at(85.2), 'host:temperature'), { status: 'fail', observedValue: 85.2 });
  t.same(one(pi({ maxTemperatureCelsius: null, thermalZones: [] }), 'host:temperature'),
    { componentType: 'system', observedUnit: 'Cel', status: 'pass', observedValue: null, output: 'no thermal sensor', time: '2025-06-01T12:00:00.000Z' });
});

t.test('host:power: now = warn, since boot = pass with a note, not a Pi = pass', async (t) => {
  t.match(one(pi({ throttling: throttleFlags(0x50005) }), 'host:power'), { status: 'warn', observedValue: 'under_voltage,throttled', output: /under-voltage detected.*now: under_voltage, throttled/ });
  t.match(one(pi({ throttling: throttleFlags(0x2) }), 'host:power'), { status: 'warn', output: /^now: frequency_capped$/ });
  t.match(one(pi({ throttling: throttleFlags(0x50000) }), 'host:power'), { status: 'pass', observedValue: 'ok', output: 'has occurred since boot: under_voltage, throttled' });
  t.same(one(pi({ throttling: null, throttlingSource: 'absent' }), 'host:power'),
    { componentType: 'system', status: 'pass', observedValue: null, output: 'not a Raspberry Pi: no throttling information', time: '2025-06-01T12:00:00.000Z' });
  t.match(one(pi({ throttling: null, throttlingSource: 'error' }), 'host:power'), { status: 'warn', observedValue: null });
});

t.test('clock:sync: unknown and unsynchronised warn', async (t) => {
  t.match(one(pi({ clockSync: { synchronized: false, detail: 'timesyncd not synchronised' } }), 'clock:sync'), { status: 'warn', observedValue: false, output: 'timesyncd not synchronised' });
  t.match(one(pi({ clockSync: { synchronized: null, detail: 'unknown: no timesyncd' } }), 'clock:sync'), { status: 'warn', observedValue: null, output: 'unknown: no timesyncd' });
  t.match(one(pi({ clockSync: null }), 'clock:sync'), { status: 'warn', output: /no sample/ });
});

t.test('memory:available', async (t) => {
  const mem = (avail: number) => pi({ memory: { totalBytes: 100, availableBytes: avail, freeBytes: 0, swapTotalBytes: 0, swapFreeBytes: 0 } });
  t.match(one(mem(9), 'memory:available'), { status: 'warn', observedValue: 9 });
  t.match(one(mem(2), 'memory:available'), { status: 'fail', observedValue: 2 });
  t.match(one(pi({ memory: null }), 'memory:available'), { status: 'warn', observedValue: null });
});

t.test('before the first sample: no time stamp, nothing passes on no data', async (t) => {
  const r = hostChecks(emptySnapshot(), health);
  t.equal(r['disk:free']?.[0]?.time, undefined);
  t.equal(r['disk:free']?.[0]?.status, 'warn');
  t.equal(r['memory:available']?.[0]?.status, 'warn');
  t.match(r['host:power']?.[0], { status: 'warn', output: 'throttling information not sampled yet' });
  t.match(r['host:temperature']?.[0], { status: 'warn', output: 'temperature not sampled yet' });
});
