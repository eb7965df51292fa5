import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import t, { type Test } from 'tap';
import { renderFamilies } from '../../../../agent/metrics/format.js';
import { createTextfileCollector, MAX_TEXTFILE_BYTES } from '../../../../agent/metrics/textfile/collector.js';
import { parseTextfile } from '../../../../agent/metrics/textfile/parse.js';

const ok = (text: string) => {
  const r = parseTextfile(text, '/x/f.prom');
  if (!r.ok) throw new Error(`expected to parse: ${r.error}`);
  return r.families;
};
const fails = (t: Test, text: string, why: RegExp, msg: string) => {
  const r = parseTextfile(text, '/x/f.prom');
  t.equal(r.ok, false, msg);
  if (!r.ok) t.match(r.error, why, `${msg}: ${r.error}`);
};

t.test('parses HELP, TYPE, labels with escapes, specials; a family without HELP names its file', async (t) => {
  const f = ok([
    '# HELP a_total Things, with a \\\\ and a \\n.',
    '# TYPE a_total counter',
    'a_total{x="1",y="say \\"hi\\"\\nbye"} 3',
    'a_total{x="2",} 4',
    '  b 1.5e3  ',
    'c{q="v"} +Inf',
    'c{q="w"} NaN',
    '# just a comment',
    '',
  ].join('\n'));
  t.same(f.map((x) => [x.name, x.type, x.help]), [['a_total', 'counter', 'Things, with a \\ and a \n.'], ['b', 'untyped', 'Metric read from /x/f.prom'], ['c', 'untyped', 'Metric read from /x/f.prom']]);
  t.same(f[0]!.samples, [{ value: 3, labels: { x: '1', y: 'say "hi"\nbye' } }, { value: 4, labels: { x: '2' } }]);
  t.equal(f[1]!.samples[0]!.value, 1500);
  t.equal(f[2]!.samples[0]!.value, Infinity);
  t.ok(Number.isNaN(f[2]!.samples[1]!.value));
  t.match(renderFamilies(f), /a_total\{x="1",y="say \\"hi\\"\\nbye"\} 3/, 'renders back with the escapes');
});

t.test('histogram and summary samples join their family with a suffix', async (t) => {
  const f = ok('# TYPE h histogram\nh_bucket{le="1"} 2\nh_bucket{le="+Inf"} 5\nh_sum 7\nh_count 5\n# TYPE s summary\ns{quantile="0.5"} 1\ns_sum 3\ns_count 2\n');
  t.same(f.map((x) => [x.name, x.type, x.samples.length]), [['h', 'histogram', 4], ['s', 'summary', 3]]);
  t.same(f[0]!.samples.map((s) => s.suffix ?? ''), ['_bucket', '_bucket', '_sum', '_count']);
  t.match(renderFamilies(f), /h_bucket\{le="\+Inf"\} 5\nh_sum 7\nh_count 5/);
});

t.test('refused, with the line: timestamps, bad values, names, labels, duplicates, repeated or late TYPE', async (t) => {
  fails(t, 'm 1 1700000000000\n', /line 1: m has a timestamp/, 'a client-side timestamp');
  fails(t, 'ok 1\nbad line here {\n', /line 2: expected a float/, 'not a float');
  fails(t, '9bad 1\n', /line 1: a sample line must start with a metric name/, 'a name starting with a digit');
  fails(t, 'm{9="x"} 1\n', /invalid label name/, 'a bad label name');
  fails(t, 'm{__name__="x"} 1\n', /reserved label name/, 'a reserved label');
  fails(t, 'm{a="x",a="y"} 1\n', /label a given twice/, 'a label twice');
  fails(t, 'm{a="x} 1\n', /unterminated/, 'an unterminated value');
  fails(t, 'm{a="\\t"} 1\n', /invalid escape/, 'an unknown escape');
  fails(t, 'm{a="x" b="y"} 1\n', /expected , or \}/, 'labels without a comma');
  fails(t, 'm{a="x"} 1\nm{a="x"} 2\n', /line 2: m with these labels given twice/, 'a series twice');
  fails(t, '# TYPE m gauge\n# TYPE m counter\n', /second TYPE/, 'two TYPE lines');
  fails(t, 'm 1\n# TYPE m gauge\n', /after its samples/, 'TYPE after samples');
  fails(t, '# TYPE m meter\n', /unknown metric type/, 'an unknown type');
  fails(t, 'm\n', /no value/, 'no value');
});

function collector(t: Test, files: Record<string, string>, own: string[] = []) {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'piswarm-tf-unit-'));
  t.teardown(() => fs.rmSync(dir, { recursive: true, force: true }));
  for (const [f, text] of Object.entries(files)) fs.writeFileSync(path.join(dir, f), text);
  const warnings: Array<Record<string, unknown>> = [];
  const c = createTextfileCollector({ dir, log: { warn: (o: Record<string, unknown>) => void warnings.push(o) } as never, ownNames: () => new Set(own) });
  const error = () => c.collect().find((f) => f.name === 'node_textfile_scrape_error')?.samples[0]?.value;
  return { dir, c, warnings, error };
}

t.test('collector: good files served with their mtimes, a bad one skipped whole, logged once', async (t) => {
  const { dir, c, warnings, error } = collector(t, { 'a.prom': 'x 1\n', 'b.prom': 'y 1 123\n', 'c.txt': 'z 1\n' });
  await c.sample!(0);
  const names = c.collect().map((f) => f.name);
  t.same(names, ['x', 'node_textfile_mtime_seconds', 'node_textfile_scrape_error']);
  t.same(c.collect()[1]!.samples.map((s) => s.labels?.file), [path.join(dir, 'a.prom')], 'only the file read has an mtime');
  t.equal(error(), 1);
  await c.sample!(1);
  t.equal(warnings.length, 1, 'the same problem is logged once, not on every sample');
  t.match(warnings[0], { code: 'PISWARM_ERR_TEXTFILE', file: path.join(dir, 'b.prom') });
  fs.rmSync(path.join(dir, 'b.prom'));
  await c.sample!(2);
  t.equal(error(), 0, 'fixed once the file is gone');
});

t.test('collector: a file may not replace the agent\'s own series; size bound; missing directory', async (t) => {
  const own = collector(t, { 'a.prom': 'node_load1 99\n', 'b.prom': 'piswarm_formation_phase 1\n', 'c.prom': 'fine 1\n' }, ['node_load1']);
  await own.c.sample!(0);
  t.same(own.c.collect().map((f) => f.name), ['fine', 'node_textfile_mtime_seconds', 'node_textfile_scrape_error']);
  t.equal(own.error(), 1);
  t.match(own.warnings.map((w) => w.problem), [/node_load1 is a series the agent serves itself/, /piswarm_formation_phase/]);

  const big = collector(t, { 'big.prom': `m 1\n${'#'.repeat(MAX_TEXTFILE_BYTES)}\n` });
  await big.c.sample!(0);
  t.equal(big.error(), 1, 'a file over the bound is refused');
  t.match(big.warnings[0]?.problem, /larger than/);

  const gone = collector(t, {});
  fs.rmSync(gone.dir, { recursive: true });
  await gone.c.sample!(0);
  t.equal(gone.error(), 1, 'a configured directory that cannot be read is an error, as in node_exporter');

  const off = createTextfileCollector({ dir: '', log: { warn: () => { throw new Error('nothing to log'); } } as never, ownNames: () => { throw new Error('not asked'); } });
  await off.sample!(0);
  t.same(off.collect().map((f) => [f.name, f.samples[0]?.value]), [['node_textfile_scrape_error', 0]], 'no directory: error 0, nothing read');
});
