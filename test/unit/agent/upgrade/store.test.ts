import { existsSync, mkdtempSync, readFileSync, rmSync, utimesSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import t from 'tap';
import { releaseStore } from '../../../../agent/upgrade/store.js';
import { generateReleaseKey, signRelease } from '../../../../agent/upgrade/signature.js';
import { RELEASE_CHUNK_BYTES } from '../../../../shared/wire/release.js';
import { readState, takeRequest, writeRequest, writeRevertRequest, writeState } from '../../../../agent/upgrade/state.js';

const key = generateReleaseKey();
const release = (n: number, fill = 7) => Buffer.alloc(n, fill);

t.test('a release arrives in chunks, resumes from what is held, and is kept once whole', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'store-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const st = releaseStore(dir);
  const bytes = release(RELEASE_CHUNK_BYTES + 100);
  const s = signRelease(key.privatePem, { version: '1.0.0', bytes });
  t.equal(st.offered(s), 0, 'nothing held yet');
  t.same(st.append(s.sha256, 0, bytes.subarray(0, RELEASE_CHUNK_BYTES)), { have: RELEASE_CHUNK_BYTES, complete: false });
  t.same(st.append(s.sha256, 0, bytes.subarray(0, 10)), { have: RELEASE_CHUNK_BYTES, complete: false }, 'a chunk not at the end is not written: the sender resumes from have');
  t.equal(releaseStore(dir).offered(s), RELEASE_CHUNK_BYTES, 'offered again (another sender, a restart): resumes there');
  t.same(st.append(s.sha256, RELEASE_CHUNK_BYTES, bytes.subarray(RELEASE_CHUNK_BYTES)), { have: bytes.length, complete: true });
  t.ok(st.complete(s.sha256));
  t.same(readFileSync(st.releasePath(s.sha256)), bytes, 'the bytes kept are the release');
  t.same(st.read(s.sha256, 0), bytes.subarray(0, RELEASE_CHUNK_BYTES), 'read back chunk by chunk');
  t.same(st.read(s.sha256, RELEASE_CHUNK_BYTES), bytes.subarray(RELEASE_CHUNK_BYTES));
  t.equal(st.offered(s), bytes.length, 'offered once whole: held whole');
  t.same(st.append(s.sha256, 0, bytes.subarray(0, 5)), { have: bytes.length, complete: true }, 'more chunks of a whole release change nothing');
});

t.test('what does not match its signature is dropped and refused', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'store-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const st = releaseStore(dir);
  const bytes = release(1000);
  const s = signRelease(key.privatePem, { version: '1.0.0', bytes });
  t.throws(() => st.append('a'.repeat(64), 0, bytes), { code: 'PISWARM_ERR_RELEASE_REFUSED', reason: 'unsigned', message: /was offered/ }, 'never offered');
  st.offered(s);
  t.throws(() => st.append(s.sha256, 0, release(1001)), { code: 'PISWARM_ERR_RELEASE_REFUSED', reason: 'too_large', message: /past the 1000 bytes/ });
  t.equal(st.have(s), 0, 'the partial release is gone');
  t.throws(() => st.append(s.sha256, 0, release(1000, 8)), { code: 'PISWARM_ERR_RELEASE_REFUSED', reason: 'tampered', message: /sha256 differs/ });
  t.notOk(st.complete(s.sha256), 'nothing kept');
  t.throws(() => st.read(s.sha256, 0), { code: 'PISWARM_ERR_RELEASE_REFUSED', reason: 'unsigned', message: /no whole release/ });
  // Another release offered: the partial one of the first is dropped (one arrives at a time).
  st.append(s.sha256, 0, bytes.subarray(0, 10));
  const s2 = signRelease(key.privatePem, { version: '1.0.1', bytes: release(50) });
  st.offered(s2);
  t.equal(st.have(s), 0, 'the other partial release was dropped');
});

t.test('at most two whole releases stay, never the ones named', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'store-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const st = releaseStore(dir);
  const sigs = [1, 2, 3].map((i) => {
    const bytes = release(100, i);
    const s = signRelease(key.privatePem, { version: `1.0.${i}`, bytes });
    st.offered(s);
    st.append(s.sha256, 0, bytes);
    utimesSync(st.releasePath(s.sha256), i * 1000, i * 1000);
    return s;
  });
  st.prune([sigs[0]!.sha256]);
  t.ok(st.complete(sigs[0]!.sha256), 'the one named stays (oldest)');
  t.ok(st.complete(sigs[2]!.sha256), 'the newest stays');
  t.notOk(st.complete(sigs[1]!.sha256), 'the third goes');
});

t.test('the request holds a hash only; anything else is no request, and it is taken once', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'state-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  t.equal(takeRequest(dir), null, 'no request');
  writeRequest(dir, 'b'.repeat(64));
  t.same(takeRequest(dir), { sha256: 'b'.repeat(64), revertTo: null });
  t.equal(takeRequest(dir), null, 'taken: gone');
  writeRevertRequest(dir, 'b'.repeat(64), '0.9.0');
  t.same(takeRequest(dir), { sha256: 'b'.repeat(64), revertTo: '0.9.0' }, 'a revert names the version expected back');
  writeRevertRequest(dir, 'b'.repeat(64), '../0.9.0');
  t.equal(takeRequest(dir), null, 'a revert to something that is no version: refused');
  writeRequest(dir, '../../etc/shadow');
  t.equal(takeRequest(dir), null, 'not a hash: refused');
  t.notOk(existsSync(join(dir, 'upgrade', 'request.json')), 'and removed');
  writeFileSync(join(dir, 'upgrade', 'state.json'), '{"state":"installed"');
  t.equal(readState(dir), null, 'a broken state file reads as none');
  const s = { sha256: 'c'.repeat(64), version: '1.0.0', from: '0.9.0', state: 'installed' as const, at: new Date(0).toISOString(), detail: 'ok' };
  writeState(dir, s);
  t.same(readState(dir), s);
});
