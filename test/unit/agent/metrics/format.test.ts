import t from 'tap';
import { escapeHelp, escapeLabelValue, formatValue, normalizeFamilies, renderFamilies } from '../../../../agent/metrics/format.js';
import type { MetricFamily } from '../../../../agent/metrics/types.js';
import { promtoolCheck, promtoolSkip } from './promtool.js';

t.test('values: specials spelled as Go parses them, integers never in exponent form', async (t) => {
  t.equal(formatValue(NaN), 'NaN');
  t.equal(formatValue(Infinity), '+Inf');
  t.equal(formatValue(-Infinity), '-Inf');
  t.equal(formatValue(-0), '0');
  t.equal(formatValue(25276502016), '25276502016');
  t.equal(formatValue(2 ** 53 - 1), '9007199254740991');
  t.equal(formatValue(0.25), '0.25');
  t.equal(Number(formatValue(1e-7)), 1e-7, 'small floats round-trip');
});

t.test('escaping', async (t) => {
  t.equal(escapeLabelValue('a"b\\c\nd'), 'a\\"b\\\\c\\nd');
  t.equal(escapeHelp('line1\nback\\slash "quotes stay"'), 'line1\\nback\\\\slash "quotes stay"');
});

const tricky: MetricFamily[] = [
  { name: 'piswarm_test_total', help: 'A help with a\nnewline and a \\ backslash', type: 'counter', samples: [
    { labels: { path: 'C:\\dir', quote: 'say "hi"', nl: 'two\nlines' }, value: 3 },
    { labels: { path: 'ümlaut ✓', quote: '', nl: '' }, value: 2 ** 40 },
  ] },
  { name: 'piswarm_test_value', help: 'specials', type: 'gauge', samples: [
    { labels: { v: 'nan' }, value: NaN }, { labels: { v: 'inf' }, value: Infinity }, { labels: { v: 'ninf' }, value: -Infinity }, { labels: { v: 'neg' }, value: -1.5 },
  ] },
  { name: 'piswarm_test_untyped', help: 'no type', type: 'untyped', samples: [{ value: 1 }] },
  { name: 'piswarm_test_latency_seconds', help: 'a summary', type: 'summary', samples: [
    { labels: { quantile: '0.99' }, value: 0.012 }, { suffix: '_sum', value: 1.5 }, { suffix: '_count', value: 100 },
  ] },
];

t.test('exact text for a small family', async (t) => {
  t.equal(renderFamilies([{ name: 'a_total', help: 'x\ny', type: 'counter', samples: [{ labels: { l: 'q"' }, value: 1 }, { value: 2 }] }]),
    '# HELP a_total x\\ny\n# TYPE a_total counter\na_total{l="q\\""} 1\na_total 2\n');
  t.equal(renderFamilies([]), '');
});

t.test('families keep registration order; same-name families merge; duplicates are rejected', async (t) => {
  const text = renderFamilies([
    { name: 'b', help: 'b', type: 'gauge', samples: [{ labels: { x: '1' }, value: 1 }] },
    { name: 'a', help: 'a', type: 'gauge', samples: [{ value: 1 }] },
    { name: 'b', help: 'b again', type: 'gauge', samples: [{ labels: { x: '2' }, value: 2 }] },
  ]);
  t.same(text.split('\n').filter((l) => l.startsWith('# TYPE')), ['# TYPE b gauge', '# TYPE a gauge']);
  t.match(text, /b\{x="1"\} 1\nb\{x="2"\} 2\n/);
  t.throws(() => renderFamilies([
    { name: 'c', help: '', type: 'gauge', samples: [{ labels: { x: '1', y: '2' }, value: 1 }] },
    { name: 'c', help: '', type: 'gauge', samples: [{ labels: { y: '2', x: '1' }, value: 2 }] },
  ]), { code: 'PISWARM_ERR_COLLECTOR' }, 'same labels in another order are the same series');
  t.throws(() => renderFamilies([{ name: 'd', help: '', type: 'gauge', samples: [] }, { name: 'd', help: '', type: 'counter', samples: [] }]), { code: 'PISWARM_ERR_COLLECTOR' });
  t.throws(() => renderFamilies([{ name: '1bad', help: '', type: 'gauge', samples: [] }]), { code: 'PISWARM_ERR_COLLECTOR' });
  t.throws(() => renderFamilies([{ name: 'e', help: '', type: 'gauge', samples: [{ labels: { 'bad-label': 'x' }, value: 1 }] }]), { code: 'PISWARM_ERR_COLLECTOR' });
  const n = normalizeFamilies([{ name: 'f', help: '', type: 'gauge', samples: [{ value: 1 }, { value: 2 }] }]);
  t.equal(n.families[0]?.samples.length, 1, 'normalize keeps the first and reports the duplicate');
  t.equal(n.problems.length, 1);
});

t.test('promtool accepts the output', { skip: promtoolSkip() }, async (t) => {
  const text = renderFamilies(tricky);
  const v = promtoolCheck(text);
  t.equal(v.parseError, null, 'no parse error');
  t.same(v.lint, [], 'no lint finding');
  t.equal(v.status, 0);
  const broken = promtoolCheck(text.replace('piswarm_test_untyped 1', 'piswarm_test_untyped one'));
  t.not(broken.parseError, null, 'the check can fail: promtool rejects a broken value');
});
