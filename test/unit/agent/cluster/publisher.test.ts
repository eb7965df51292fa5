import t from 'tap';
import { createFactsPublisher } from '../../../../agent/cluster/publisher.js';
import { readFacts } from '../../../../agent/cluster/facts.js';
import type { HealthDocument } from '../../../../agent/health/aggregate.js';

const health = (status: 'pass' | 'warn'): HealthDocument => ({ status, version: '0', releaseId: '0.1.0', serviceId: 'n', description: '', checks: status === 'warn' ? { 'docker:ipvs': [{ status: 'warn' }] } : {} });

t.test('figures once a period, health and the board model at once', async (t) => {
  let now = 0;
  let h = health('pass');
  let model: string | null = null;
  let cpuCalls = 0;
  const p = createFactsPublisher({ version: '0.1.0', health: () => h, snapshot: () => null, cpuPct: () => ++cpuCalls * 10, uptimeS: () => now / 1000, arch: 'arm64', model: () => model, now: () => now, periodMs: 15_000 });
  const read = () => readFacts(p.meta(200))!;
  t.same([read().seq, read().cpuPct], [1, 10]);
  now = 5000;
  h = health('warn');
  t.same([read().seq, read().health, read().checks, read().cpuPct], [1, 'warn', ['docker:ipvs'], 10], 'a health change goes out without new figures');
  model = 'Raspberry Pi 4 Model B Rev 1.4';
  t.same([read().seq, read().model], [2, 'Raspberry Pi 4 Model B Rev 1.4'], 'the model as soon as it is known');
  now = 19_999;
  t.equal(read().seq, 2);
  now = 20_000;
  t.same([read().seq, read().cpuPct, read().uptimeS], [3, 30, 20], 'new figures after a period');
  t.same(p.current()?.ageMs, 0);
  t.same(p.meta(10), {}, 'nothing when nothing fits');
});
