import t from 'tap';
import { createSampler, type SampledCollector, type SamplerClock } from '../../../../agent/metrics/sampler.js';

/** A fake clock: time moves only when the test says so; exactly one interval may be registered. */
function fakeClock() {
  let now = 1_700_000_000_000;
  let tick: (() => void) | null = null;
  let ms = 0;
  const clock: SamplerClock = {
    now: () => now,
    setInterval(fn, interval) {
      if (tick) throw new Error('Not implemented: a second setInterval');
      tick = fn;
      ms = interval;
      return 1;
    },
    clearInterval() {
      tick = null;
    },
  };
  return { clock, advance: () => { now += ms; tick?.(); }, get armed() { return tick !== null; }, get interval() { return ms; } };
}

function recordingLog() {
  const lines: Array<{ obj: Record<string, unknown>; msg: string; level: string }> = [];
  return {
    lines,
    log: {
      debug: (obj: Record<string, unknown>, msg: string) => lines.push({ obj, msg, level: 'debug' }),
      warn: (obj: Record<string, unknown>, msg: string) => lines.push({ obj, msg, level: 'warn' }),
    } as never,
  };
}

function flaky(): SampledCollector & { fail: boolean; n: number } {
  const c = {
    name: 'flaky', fail: false, n: 0,
    sample() {
      if (c.fail) throw Object.assign(new Error('EIO reading'), { code: 'EIO' });
      c.n++;
    },
    collect: () => [{ name: 'piswarm_flaky', help: 'h', type: 'gauge' as const, samples: [{ value: c.n }] }],
  };
  return c;
}

const line = (text: string, prefix: string) => text.split('\n').find((l) => l.startsWith(prefix));

t.test('first sample on start, then one per interval; stop disarms', async (t) => {
  const fc = fakeClock();
  const c = flaky();
  const s = createSampler({ intervalMs: 5000, clock: fc.clock, log: recordingLog().log, collectors: [c] });
  t.equal(line(s.render(), 'piswarm_flaky '), undefined, 'nothing before the first sample');
  await s.start();
  t.equal(c.n, 1);
  t.equal(fc.interval, 5000);
  fc.advance();
  await s.sampleOnce(); // let the tick's sample settle (this call joins or follows it)
  t.ok(c.n >= 2);
  const before = c.n;
  t.equal(line(s.render(), 'piswarm_flaky '), `piswarm_flaky ${before}`);
  t.equal(c.n, before, 'render does not sample');
  s.stop();
  t.notOk(fc.armed);
});

t.test('a failing collector: success 0, error counted and logged with its code, values dropped, scrape still works', async (t) => {
  const fc = fakeClock();
  const c = flaky();
  const ok: SampledCollector = { name: 'steady', sample() {}, collect: () => [{ name: 'piswarm_steady', help: 'h', type: 'gauge', samples: [{ value: 7 }] }] };
  const rec = recordingLog();
  const s = createSampler({ intervalMs: 1000, clock: fc.clock, log: rec.log, collectors: [c, ok] });
  await s.start();
  c.fail = true;
  await s.sampleOnce();
  const text = s.render();
  t.equal(line(text, 'piswarm_collector_success{collector="flaky"}'), 'piswarm_collector_success{collector="flaky"} 0');
  t.equal(line(text, 'piswarm_collector_success{collector="steady"}'), 'piswarm_collector_success{collector="steady"} 1');
  t.equal(line(text, 'piswarm_collector_errors_total{collector="flaky"}'), 'piswarm_collector_errors_total{collector="flaky"} 1');
  t.equal(line(text, 'piswarm_flaky '), undefined, 'the failed collector\'s last values are dropped');
  t.equal(line(text, 'piswarm_steady '), 'piswarm_steady 7');
  t.match(rec.lines, [{ level: 'debug', msg: 'collector failed', obj: { collector: 'flaky', code: 'EIO', phase: 'sample' } }]);
  c.fail = false;
  await s.sampleOnce();
  t.equal(line(s.render(), 'piswarm_collector_success{collector="flaky"}'), 'piswarm_collector_success{collector="flaky"} 1', 'recovers');
  s.stop();
});

t.test('afterSample runs once per complete sample, after every collector', async (t) => {
  const fc = fakeClock();
  const order: string[] = [];
  const c: SampledCollector = { name: 'c', sample: () => { order.push('sample'); }, collect: () => [] };
  const s = createSampler({ intervalMs: 1000, clock: fc.clock, log: recordingLog().log, collectors: [c], afterSample: (now) => { order.push(`after@${now}`); } });
  await s.sampleOnce();
  t.same(order, ['sample', 'after@1700000000000']);
});

t.test('samples never overlap: a tick during a slow sample is skipped and counted', async (t) => {
  const fc = fakeClock();
  let release: () => void = () => {};
  let calls = 0;
  const slow: SampledCollector = {
    name: 'slow',
    sample: () => { calls++; return new Promise<void>((r) => { release = r; }); },
    collect: () => [],
  };
  const s = createSampler({ intervalMs: 1000, clock: fc.clock, log: recordingLog().log, collectors: [slow] });
  const first = s.sampleOnce();
  const second = s.sampleOnce();
  t.equal(calls, 1, 'the second call joined the running sample');
  release();
  await Promise.all([first, second]);
  t.equal(line(s.render(), 'piswarm_sampler_overruns_total'), 'piswarm_sampler_overruns_total 1');
});

t.test('extra collectors: appended, timed, a throwing one does not fail the scrape, a clash is dropped and logged', async (t) => {
  const fc = fakeClock();
  const rec = recordingLog();
  const s = createSampler({ intervalMs: 1000, clock: fc.clock, log: rec.log, collectors: [flaky()] });
  await s.start();
  const docker = { name: 'docker', collect: () => [{ name: 'piswarm_docker_up', help: 'h', type: 'gauge' as const, samples: [{ value: 1 }] }] };
  const broken = { name: 'gossip', collect: () => { throw new Error('boom'); } };
  const clash = { name: 'formation', collect: () => [{ name: 'piswarm_flaky', help: 'h', type: 'counter' as const, samples: [{ value: 9 }] }] };
  const text = s.render([docker, broken, clash]);
  t.ok(text.indexOf('piswarm_docker_up 1') > text.indexOf('piswarm_flaky 1'), 'extra families come after the host ones');
  t.equal(line(text, 'piswarm_collector_success{collector="gossip"}'), 'piswarm_collector_success{collector="gossip"} 0');
  t.equal(line(text, 'piswarm_collector_success{collector="docker"}'), 'piswarm_collector_success{collector="docker"} 1');
  t.equal(line(text, 'piswarm_flaky '), 'piswarm_flaky 1', 'the first registration of a name wins');
  t.match(rec.lines.find((l) => l.level === 'warn'), { obj: { code: 'PISWARM_ERR_COLLECTOR' }, msg: 'dropped invalid metric families' });
});

t.test('fresh(maxAge) samples only when the last sample is older than maxAge, and never arms a timer', async (t) => {
  let now = 1_700_000_000_000;
  const clock: SamplerClock = {
    now: () => now,
    setInterval() { throw new Error('Not implemented: setInterval (fresh() must not need a timer)'); },
    clearInterval() { throw new Error('Not implemented: clearInterval'); },
  };
  const c = flaky();
  const s = createSampler({ intervalMs: 5000, clock, log: recordingLog().log, collectors: [c] });
  await s.fresh(5000);
  t.equal(c.n, 1, 'the first call samples: nothing yet');
  now += 4999;
  await s.fresh(5000);
  t.equal(c.n, 1, 'younger than the minimum age: the cached sample');
  now += 1;
  await s.fresh(5000);
  t.equal(c.n, 2, 'as old as the minimum age: sampled again');
  await Promise.all([(now += 6000, s.fresh(5000)), s.fresh(5000)]);
  t.equal(c.n, 3, 'two concurrent requests share one sample');
  t.equal(s.stats().samples, 3);
});
