import { mkdtempSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import t from 'tap';
import { applyStep, type Ring } from '../../../../agent/keyring/ring.js';
import { KEYRING_FILE, loadRing, saveRing } from '../../../../agent/keyring/store.js';

const A = 'the key the card was flashed with, 32+ chars';
const B = 'the key of the first rotation, 32+ characters';
const C = 'the key of a second rotation, 32+ characters!';
const one: Ring = { primary: A, accepted: [] };

t.test('a rotation step by step; every step is idempotent', async (t) => {
  const staged = applyStep(one, 'stage', B);
  t.same(staged, { primary: A, accepted: [B] }, 'stage: accept B, still sign with A');
  t.equal(applyStep(staged, 'stage', B), staged, 'stage again: unchanged (same object)');
  const promoted = applyStep(staged, 'promote', B);
  t.same(promoted, { primary: B, accepted: [A] }, 'promote: sign with B, accept A');
  t.equal(applyStep(promoted, 'promote', B), promoted);
  const dropped = applyStep(promoted, 'drop', B);
  t.same(dropped, { primary: B, accepted: [] }, 'drop: B only');
  t.same(applyStep(dropped, 'drop', B), dropped, 'drop again: unchanged');
  t.same(applyStep(staged, 'abort', B), one, 'abort: back to A');
  t.same(applyStep(one, 'abort', B), one, 'abort of a key never staged: nothing to do');
});

t.test('steps out of order are refused with PISWARM_ERR_KEYRING and change nothing', async (t) => {
  t.throws(() => applyStep(one, 'promote', B), { code: 'PISWARM_ERR_KEYRING', message: /never staged/ });
  t.throws(() => applyStep(applyStep(one, 'stage', B), 'drop', B), { code: 'PISWARM_ERR_KEYRING', message: /promote first/ });
  t.throws(() => applyStep({ primary: B, accepted: [A] }, 'abort', B), { code: 'PISWARM_ERR_KEYRING', message: /already promoted/ });
  t.throws(() => applyStep({ primary: A, accepted: [B] }, 'stage', C), { code: 'PISWARM_ERR_KEYRING', message: /finish or abort/ }, 'a second rotation while one is under way');
});

t.test('keyring.json: written 0600, read back, and only when it continues the configured key', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'piswarm-ring-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  t.same(loadRing(dir, A), { ring: one, source: 'config', problem: null }, 'no file: the configured key');
  saveRing(dir, A, { primary: B, accepted: [] }, new Date('2026-12-06T00:00:00Z'));
  t.equal(statSync(join(dir, KEYRING_FILE)).mode & 0o777, 0o600);
  t.same(loadRing(dir, A), { ring: { primary: B, accepted: [] }, source: 'file', problem: null }, 'after a rotation: B, although the card still says A');
  t.match(loadRing(dir, C), { ring: { primary: C, accepted: [] }, source: 'config', problem: /another configured key/ }, 're-provisioned with a new key: the card wins');
  t.match(loadRing(dir, B), { source: 'file' }, 're-provisioned with the rotated key itself: the same ring');
  for (const bad of ['{not json', '{"v":2}', JSON.stringify({ v: 1, continues: 'x', primary: 'short', accepted: [] }), JSON.stringify({ v: 1, continues: 'x', primary: B, accepted: [A, C, B] })]) {
    writeFileSync(join(dir, KEYRING_FILE), bad);
    t.match(loadRing(dir, A), { ring: one, source: 'config', problem: /keyring\.json/ }, `a broken file is reported, never thrown: ${bad.slice(0, 20)}`);
  }
  t.match(loadRing(dir, A, () => { throw Object.assign(new Error('denied'), { code: 'EACCES' }); }), { ring: one, problem: /EACCES/ });
});
