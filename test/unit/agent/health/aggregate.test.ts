import t from 'tap';
import { evaluate, httpStatusFor, worst } from '../../../../agent/health/aggregate.js';
import type { HealthCheck } from '../../../../agent/health/types.js';

const check = (name: string, ...statuses: Array<'pass' | 'warn' | 'fail'>): HealthCheck => ({ name, run: () => statuses.map((status) => ({ status })) });

t.test('the worst status wins', async (t) => {
  t.equal(worst([]), 'pass');
  t.equal(worst(['pass', 'warn']), 'warn');
  t.equal(worst(['warn', 'fail', 'pass']), 'fail');
  t.equal(httpStatusFor('warn'), 200);
  t.equal(httpStatusFor('fail'), 503);
});

t.test('the document has one entry per check and the worst status', async (t) => {
  const doc = evaluate([check('a:x', 'pass'), check('b:y', 'pass', 'warn')], { version: '1.2.3', serviceId: 'pi-1' }, () => t.fail('no check throws'));
  t.equal(doc.status, 'warn');
  t.same(Object.keys(doc.checks), ['a:x', 'b:y']);
  t.equal(doc.checks['b:y']?.length, 2);
  t.equal(doc.version, '1');
  t.equal(doc.releaseId, '1.2.3');
});

t.test('a check that throws fails without leaking the error', async (t) => {
  const seen: string[] = [];
  const boom: HealthCheck = { name: 'boom:check', run: () => { throw new Error('internal /secret/path'); } };
  const doc = evaluate([check('ok:check', 'pass'), boom], { version: '1.0.0', serviceId: 'x' }, (name) => seen.push(name));
  t.equal(doc.status, 'fail');
  t.same(seen, ['boom:check']);
  t.notMatch(JSON.stringify(doc), /secret/);
});
