/**
 * What the benchmarks read from the shipped unit file: the agent's V8 flags
 * and its Environment= settings, so a benchmark runs the agent as systemd does.
 */
import t from 'tap';
import fs from 'node:fs';
import { unitEnvironment, unitNodeFlags } from '../../../bench/lib/process.js';

const UNIT = fs.readFileSync('systemd/piswarm.service', 'utf8');

t.test('the shipped unit: flags and environment', async (t) => {
  const flags = unitNodeFlags(UNIT);
  t.ok(flags.length > 0 && flags.every((f) => f.startsWith('--')), flags.join(' '));
  const env = unitEnvironment(UNIT);
  t.equal(env.NODE_ENV, 'production');
  t.equal(env.MALLOC_ARENA_MAX, '2', 'one glibc arena per two, not per thread (bench/footprint)');
  t.notOk(Object.keys(env).some((k) => k.startsWith('-')), 'no EnvironmentFile= path taken for a setting');
});

t.test('several settings on one line, quoted values, and EnvironmentFile= left out', async (t) => {
  const unit = '[Service]\nEnvironment=A=1 B="two"\nEnvironment=C=x=y\nEnvironmentFile=-/etc/piswarm/env\n# Environment=D=commented\n';
  t.same(unitEnvironment(unit), { A: '1', B: 'two', C: 'x=y' });
});

t.test('a unit without an ExecStart=node line is an error, not empty flags', async (t) => {
  t.throws(() => unitNodeFlags('[Service]\nExecStart=/usr/bin/true\n'), /no ExecStart=node line/);
});
