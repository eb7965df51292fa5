import t from 'tap';
import fs from 'node:fs';
import { ADJTIMEX_SYSCALL, PERL, PYTHON, parseTimex, readTimex, type TimexReading } from '../../../../agent/host/node/timex.js';
import { timexCollector, timexFamilies } from '../../../../agent/metrics/node/timex.js';
import type { MetricFamily } from '../../../../agent/metrics/types.js';

// What adjtimex answered on this build machine (python3 -c TIMEX_SCRIPT), with PPS counters set to tell them apart.
const READING: TimexReading = {
  state: 5, offset: -1500, freq: 655360, maxerror: 16000000, esterror: 16000000, status: 64, constant: 2, tick: 10000,
  ppsfreq: 131072, jitter: 250, shift: 4, stabil: 65536, jitcnt: 1, calcnt: 2, errcnt: 3, stbcnt: 4, tai: 37,
};

const values = (fams: MetricFamily[]) => Object.fromEntries(fams.map((f) => [f.name, f.samples[0]!.value]));
const types = (fams: MetricFamily[]) => Object.fromEntries(fams.map((f) => [f.name, f.type]));

t.test('the series and units of node_exporter\'s collector/timex.go', async (t) => {
  const v = values(timexFamilies(READING));
  t.equal(Object.keys(v).length, 17, 'node_exporter 1.5\'s 17 series');
  t.equal(v.node_timex_sync_status, 0, 'TIME_ERROR (5): not synchronised');
  t.equal(v.node_timex_offset_seconds, -0.0015, 'microseconds without STA_NANO');
  t.equal(v.node_timex_frequency_adjustment_ratio, 1.00001, '10 ppm as 1 + freq / 2^16 / 1e6');
  t.equal(v.node_timex_maxerror_seconds, 16);
  t.equal(v.node_timex_tick_seconds, 0.01);
  t.equal(v.node_timex_pps_frequency_hertz, 2e-6);
  t.equal(v.node_timex_pps_jitter_seconds, 0.00025);
  t.equal(v.node_timex_pps_stability_hertz, 1e-6);
  t.equal(v.node_timex_tai_offset_seconds, 37);
  t.same([v.node_timex_pps_jitter_total, v.node_timex_pps_calibration_total, v.node_timex_pps_error_total, v.node_timex_pps_stability_exceeded_total], [1, 2, 3, 4]);
  const ty = types(timexFamilies(READING));
  t.same(Object.keys(ty).filter((n) => ty[n] === 'counter').sort(), ['node_timex_pps_calibration_total', 'node_timex_pps_error_total', 'node_timex_pps_jitter_total', 'node_timex_pps_stability_exceeded_total']);
  const nano = values(timexFamilies({ ...READING, state: 0, status: 0x2000 | 64 }));
  t.equal(nano.node_timex_offset_seconds, -0.0000015, 'nanoseconds with STA_NANO');
  t.equal(nano.node_timex_sync_status, 1, 'TIME_OK: synchronised');
});

t.test('the reader\'s output is parsed strictly', async (t) => {
  t.same(parseTimex(JSON.stringify(READING)), READING);
  t.throws(() => parseTimex('Traceback (most recent call last)'), { code: 'PISWARM_ERR_COLLECTOR', message: /no JSON/ });
  t.throws(() => parseTimex(JSON.stringify({ ...READING, tick: 'x' })), { code: 'PISWARM_ERR_COLLECTOR', message: /tick/ });
  t.throws(() => parseTimex(JSON.stringify({ errno: 1 })), { code: 'PISWARM_ERR_COLLECTOR', message: /EPERM.*ProtectClock/ });
});

t.test('read at most every minAgeMs, in the background after the first; a failure drops the series once', async (t) => {
  let reads = 0;
  let next: () => Promise<TimexReading | null> = async () => READING;
  const c = timexCollector(() => (reads++, next()), 60_000);
  t.same(c.collect(), [], 'nothing before the first sample');
  await c.sample!(0);
  t.equal(reads, 1);
  t.equal(c.collect().length, 17, 'the first sample waits for its read');
  await c.sample!(30_000);
  t.equal(reads, 1, 'younger than minAgeMs: not read again');
  let release!: (v: TimexReading) => void;
  next = () => new Promise((r) => { release = r; });
  await c.sample!(60_000);
  t.equal(reads, 2, 'due: read again');
  t.equal(values(c.collect()).node_timex_tai_offset_seconds, 37, 'the sample did not wait: the old reading is served meanwhile');
  release({ ...READING, tai: 38 });
  await new Promise((r) => setImmediate(r));
  t.equal(values(c.collect()).node_timex_tai_offset_seconds, 38, 'the new reading replaces it when it lands');
  next = async () => { throw Object.assign(new Error('python3 failed'), { code: 'PISWARM_ERR_COLLECTOR' }); };
  await c.sample!(120_000);
  await new Promise((r) => setImmediate(r));
  t.same(c.collect(), [], 'a failed read drops the series');
  await t.rejects(async () => c.sample!(125_000), { code: 'PISWARM_ERR_COLLECTOR' }, 'and the next sample reports it');
  await c.sample!(126_000);
  t.equal(reads, 3, 'no retry before minAgeMs');
});

t.test('no perl and no python3: no series, not a failure', async (t) => {
  t.equal(await readTimex({ perl: '/nonexistent/perl', python: '/nonexistent/python3' }), null);
  t.equal(await readTimex({ perl: '/usr/bin/perl', python: '/nonexistent/python3', arch: 'riscv64' }), null, 'perl on an architecture whose syscall number is not known: not used');
  const c = timexCollector(async () => null, 60_000);
  await c.sample!(0);
  t.same(c.collect(), []);
});

t.test('this host\'s adjtimex through perl and through python3: the same reading', { skip: (!fs.existsSync(PERL) && `no ${PERL} on this host`) || (!fs.existsSync(PYTHON) && `no ${PYTHON} on this host`) || (ADJTIMEX_SYSCALL[process.arch] === undefined && `no adjtimex number for ${process.arch}`) }, async (t) => {
  const perl = await readTimex({ python: '/nonexistent/python3' });
  const python = await readTimex({ perl: '/nonexistent/perl' });
  t.ok(perl && python, 'a reading from each');
  // maxerror grows by 500 µs a second between NTP updates, and an update may fall between the two reads.
  const stable = (r: TimexReading) => ({ ...r, maxerror: 0, esterror: 0, offset: 0, freq: 0 });
  t.same(stable(perl!), stable(python!), 'every field the same but the ones that move between two reads');
  t.ok(Math.abs(perl!.maxerror - python!.maxerror) <= 2_000_000, `maxerror ${perl!.maxerror} and ${python!.maxerror} µs`);
});

t.test('this host\'s adjtimex through its perl, else python3', { skip: !fs.existsSync(PERL) && !fs.existsSync(PYTHON) && 'neither perl nor python3 on this host' }, async (t) => {
  const r = await readTimex();
  t.ok(r, 'a reading');
  t.ok(r!.tick > 0 && r!.tick <= 1_000_000, `tick ${r!.tick} µs`);
  t.ok(r!.state >= 0 && r!.state <= 5, `clock state ${r!.state}`);
});
