/**
 * scripts/tap-failures.mjs names each failed assertion with its subtest path
 * and diagnostic, from real tap output: a test file run by node prints TAP.
 */
import t from 'tap';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, writeFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';

const ROOT = process.cwd();

function tapOf(source: string): string {
  // inside the checkout, so that the file's `import 'tap'` resolves
  const dir = mkdtempSync(join(ROOT, '.tap-failures-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const file = join(dir, 'case.test.mjs');
  writeFileSync(file, source);
  const run = spawnSync(process.execPath, [file], { encoding: 'utf8', env: { ...process.env, TAP: '1' } });
  return run.stdout;
}

function failuresOf(tapText: string): string[] {
  const run = spawnSync(process.execPath, [join(ROOT, 'scripts/tap-failures.mjs')], { input: tapText, encoding: 'utf8' });
  t.equal(run.status, 0, 'the script exits 0');
  return run.stdout.split('\n').filter(Boolean);
}

t.test('a nested failure is named by its path, with its diff', async (t) => {
  const out = failuresOf(
    tapOf(`import t from 'tap';
t.test('outer', async (t) => {
  t.test('inner', async (t) => {
    t.ok(true, 'fine');
    t.equal(1, 2, 'one is two');
  });
});
t.ok(true, 'top fine');
`),
  );
  t.equal(out[0], 'FAILED: outer > inner > one is two');
  t.ok(out.some((l) => /^ {2}\| {3}-2$/.test(l)), 'the diff is shown');
  t.notOk(out.some((l) => /^ {2}\| (at|stack|source):/.test(l)), 'not where it is in the source');
  t.notOk(out.some((l) => /^FAILED: outer( > inner)?$/.test(l)), 'the failed parents are not repeated');
});

t.test('a passing run prints nothing', async (t) => {
  t.same(failuresOf(tapOf(`import t from 'tap';\nt.test('a', async (t) => { t.ok(true, 'fine'); });\n`)), []);
});

t.test('two failures in different subtests are both named', async (t) => {
  const out = failuresOf(
    tapOf(`import t from 'tap';
t.test('a', async (t) => { t.fail('first'); });
t.test('b', async (t) => { t.fail('second'); });
`),
  ).filter((l) => l.startsWith('FAILED'));
  t.same(out, ['FAILED: a > first', 'FAILED: b > second']);
});
