import { chmodSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import t from 'tap';
import { newClusterFile, parseClusterFile, readClusterFile, writeClusterFile } from '../../../../agent/provision/cluster-file.js';

const now = new Date('2026-01-02T03:04:05.000Z');
const keyBytes = Uint8Array.from({ length: 32 }, (_, i) => i * 7);

t.test('a new cluster file', async (t) => {
  const c = newClusterFile({ name: 'lab', size: 5, keyBytes, now });
  t.equal(c.key, Buffer.from(keyBytes).toString('base64url'));
  t.equal(c.key.length, 43);
  t.same({ ...c, key: '-' }, { format: 'piswarm-cluster', version: 1, name: 'lab', key: '-', size: 5, defaults: { hostnamePrefix: 'lab-', timezone: 'Etc/UTC', config: { formation: { expect: 3 } } }, created: '2026-01-02T03:04:05.000Z' });
  t.same(parseClusterFile(JSON.stringify(c), 'x'), c, 'round trip');
  t.throws(() => newClusterFile({ name: 'Lab!', size: 3, keyBytes, now }), { code: 'PISWARM_ERR_CLUSTER_FILE', message: /cluster name "Lab!"/ });
  t.throws(() => newClusterFile({ name: 'lab', size: 0, keyBytes, now }), { message: /size must be an integer/ });
  t.throws(() => newClusterFile({ name: 'lab', size: 3, keyBytes: keyBytes.subarray(0, 16), now }), { message: /exactly 32 random bytes/ });
});

t.test('validation lists every problem with its field', async (t) => {
  t.throws(() => parseClusterFile('{', 'f.json'), { message: /f\.json is not a piswarm cluster file: not valid JSON/ });
  t.throws(() => parseClusterFile('[]', 'f.json'), { message: /expected a JSON object/ });
  const bad = { format: 'x', version: 2, name: 'A', key: 'abc', size: -1, defaults: { hostnamePrefix: '', timezone: 'a b', config: [] }, created: 'yesterday', extra: 1 };
  const err = t.throws(() => parseClusterFile(JSON.stringify(bad), 'f.json')) as Error;
  for (const field of ['format:', 'version:', 'name:', 'key:', 'size:', 'created:', 'defaults.hostnamePrefix:', 'defaults.timezone:', 'defaults.config:', 'extra: unknown field']) t.match(err.message, field);
});

t.test('writing: 0600, no overwrite without force, force resets the mode', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'piswarm-cf-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const p = join(dir, 'lab.json');
  const c = newClusterFile({ name: 'lab', size: 3, keyBytes, now });
  writeClusterFile(p, c, false);
  t.equal(statSync(p).mode & 0o777, 0o600);
  t.same(readClusterFile(p), c);
  const before = readFileSync(p);
  t.throws(() => writeClusterFile(p, { ...c, name: 'other' }, false), { message: /already exists; it may hold the key of a running cluster\. Use --force/ });
  t.same(readFileSync(p), before, 'unchanged after refusal');
  chmodSync(p, 0o644);
  writeClusterFile(p, { ...c, name: 'other' }, true);
  t.equal(readClusterFile(p).name, 'other');
  t.equal(statSync(p).mode & 0o777, 0o600, 'force resets the mode to 0600');
  t.throws(() => readClusterFile(join(dir, 'missing.json')), { message: /ENOENT \(create one with `piswarm cluster create NAME`\)/ });
  writeFileSync(join(dir, 'bad.json'), '{}');
  t.throws(() => readClusterFile(join(dir, 'bad.json')), { message: /bad\.json is not a valid piswarm cluster file/ });
});
