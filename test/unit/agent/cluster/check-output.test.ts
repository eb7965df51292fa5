import t from 'tap';
import { nonPassingChecks, sanitizeOutput } from '../../../../agent/cluster/check-output.js';
import type { HealthDocument } from '../../../../agent/health/aggregate.js';
import { CHECK_OUTPUT_MAX, CHECKS_MAX, PeerChecksResponse } from '../../../../shared/wire/peer.js';
import { Value } from '@sinclair/typebox/value';

const doc = (checks: HealthDocument['checks'], status: HealthDocument['status'] = 'warn'): HealthDocument => ({ status, version: '1', releaseId: '1.2.3', serviceId: 'pi-1', description: 'piswarm agent', checks });

t.test('sanitizeOutput: controls out, whitespace flattened, join tokens redacted, bounded by code point', async (t) => {
  t.equal(sanitizeOutput('a\tb\r\nc\u0000d\u001b[31me\u009b'), 'a b cd[31me');
  t.equal(sanitizeOutput('token SWMTKN-1-abc123-def456 leaked'), 'token SWMTKN-[redacted] leaked');
  t.equal(sanitizeOutput(undefined), '');
  t.equal(sanitizeOutput('x'.repeat(CHECK_OUTPUT_MAX)), 'x'.repeat(CHECK_OUTPUT_MAX), 'exactly the bound: kept whole');
  const long = sanitizeOutput('y'.repeat(CHECK_OUTPUT_MAX + 1));
  t.equal([...long].length, CHECK_OUTPUT_MAX);
  t.ok(long.endsWith('…'), 'cut with an ellipsis');
  const emoji = sanitizeOutput('😀'.repeat(10), 5);
  t.equal(emoji, '😀😀😀😀…', 'no surrogate pair split');
  t.notOk(/[\ud800-\udbff](?![\udc00-\udfff])/.test(emoji));
});

t.test('nonPassingChecks: warn and fail only, worst first, nothing but check results', async (t) => {
  const r = nonPassingChecks(doc({
    'disk:free': [{ status: 'warn', observedValue: 4, observedUnit: '%', output: '4 % free on /', time: '2026-12-05T07:00:00.000Z', componentId: '/' }],
    'docker:engine': [{ status: 'pass', observedValue: 'secret-ish', output: 'fine' }],
    'swarm:node': [{ status: 'fail', output: 'engine\ndown', componentType: 'system', time: 'x'.repeat(41) }],
  }, 'fail'));
  t.equal(r.status, 'fail');
  t.same(r.checks, [
    { name: 'swarm:node', status: 'fail', component: null, output: 'engine down', observedAt: null },
    { name: 'disk:free', status: 'warn', component: '/', output: '4 % free on /', observedAt: '2026-12-05T07:00:00.000Z' },
  ]);
  t.equal(r.omitted, 0);
  t.notOk(JSON.stringify(r).includes('secret-ish'), 'a passing check is not copied');
  t.notOk(JSON.stringify(r).includes('1.2.3') || JSON.stringify(r).includes('observedValue'), 'no version, no observed values');
  t.same(nonPassingChecks(doc({ a: [{ status: 'pass' }] }, 'pass')), { status: 'pass', checks: [], omitted: 0 });
});

t.test('nonPassingChecks: at most CHECKS_MAX, the rest counted; the answer fits the wire schema', async (t) => {
  const many: HealthDocument['checks'] = {};
  for (let i = 0; i < 30; i++) many[`c:${String(i).padStart(2, '0')}`] = [{ status: i === 29 ? 'fail' : 'warn', output: 'z'.repeat(2000) }];
  const r = nonPassingChecks(doc(many, 'fail'));
  t.equal(r.checks.length, CHECKS_MAX);
  t.equal(r.omitted, 30 - CHECKS_MAX);
  t.equal(r.checks[0]!.name, 'c:29', 'the failing one first');
  t.ok(Value.Check(PeerChecksResponse, { v: 1, nodeId: 'a'.repeat(24), ...r }), 'within the schema a client checks');
});
