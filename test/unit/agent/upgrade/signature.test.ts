import t from 'tap';
import { compareVersions } from '../../../../agent/upgrade/version.js';
import { checkBytes, checkSignature, generateReleaseKey, parseSignature, publicKeyOf, releaseKeyId, signRelease } from '../../../../agent/upgrade/signature.js';

const key = generateReleaseKey();
const other = generateReleaseKey();
const bytes = Buffer.from('a release tarball, byte for byte');

t.test('versions compare as semver; anything else is no version', async (t) => {
  t.ok(compareVersions('0.1.1', '0.1.0')! > 0);
  t.ok(compareVersions('0.10.0', '0.9.9')! > 0, 'numerically, not as text');
  t.equal(compareVersions('1.2.3', '1.2.3'), 0);
  t.ok(compareVersions('1.0.0-rc.1', '1.0.0')! < 0, 'a pre-release sorts before its release');
  t.ok(compareVersions('1.0.0-rc.10', '1.0.0-rc.9')! > 0, 'numeric pre-release parts numerically');
  t.ok(compareVersions('1.0.0-beta', '1.0.0-alpha')! > 0);
  t.ok(compareVersions('1.0.0-alpha.1', '1.0.0-alpha')! > 0, 'more parts sort after');
  t.equal(compareVersions('unknown', '0.1.0'), null);
  t.equal(compareVersions('1.2', '1.2.0'), null);
});

t.test('a release signed with the key verifies; its public half and id are stable', async (t) => {
  const s = signRelease(key.privatePem, { version: '0.2.0', bytes });
  t.equal(s.size, bytes.length);
  t.equal(s.keyId, releaseKeyId(key.publicKey));
  t.equal(publicKeyOf(key.privatePem), key.publicKey);
  t.doesNotThrow(() => checkSignature(key.publicKey, s, '0.1.0'));
  t.doesNotThrow(() => checkBytes(s, bytes));
  t.same(parseSignature(JSON.stringify(s), 'x.sig'), s, 'the file form reads back');
});

t.test('every kind of bad release is refused with its reason', async (t) => {
  const s = signRelease(key.privatePem, { version: '0.2.0', bytes });
  const refused = (fn: () => unknown, reason: string, message: RegExp) => t.throws(fn, { code: 'PISWARM_ERR_RELEASE_REFUSED', reason, message }, reason);
  refused(() => checkSignature(other.publicKey, s, '0.1.0'), 'bad_signature', /does not verify with this cluster's release key/);
  refused(() => checkSignature(key.publicKey, signRelease(other.privatePem, { version: '0.2.0', bytes }), '0.1.0'), 'bad_signature', /signed with/);
  refused(() => checkSignature(key.publicKey, { ...s, version: '0.3.0' }, '0.1.0'), 'bad_signature', /altered/);
  refused(() => checkSignature(key.publicKey, { ...s, sha256: 'f'.repeat(64) }, '0.1.0'), 'bad_signature', /does not verify/);
  refused(() => checkSignature(key.publicKey, s, '0.2.0'), 'downgrade', /not newer than the running 0\.2\.0/);
  refused(() => checkSignature(key.publicKey, s, '0.3.0'), 'downgrade', /downgrades are refused/);
  refused(() => checkSignature(key.publicKey, s, 'unknown'), 'downgrade', /not newer/);
  refused(() => checkSignature(undefined, s, '0.1.0'), 'no_release_key', /no release key/);
  refused(() => checkSignature('not a key', s, '0.1.0'), 'no_release_key', /not an ed25519 public key/);
  refused(() => checkBytes(s, bytes.subarray(0, 10)), 'truncated', /10 of the 32 bytes signed/);
  refused(() => checkBytes(s, Buffer.concat([bytes, Buffer.from('x')])), 'tampered', /the signature says 32/);
  const flipped = Buffer.from(bytes);
  flipped[3] = flipped[3]! ^ 1;
  refused(() => checkBytes(s, flipped), 'tampered', /sha256 differs/);
  refused(() => parseSignature(null, 'r.sig'), 'unsigned', /no signature/);
  refused(() => parseSignature('{"format":"piswarm-release-signature"', 'r.sig'), 'unsigned', /not JSON/);
  refused(() => parseSignature(JSON.stringify({ ...s, signature: 'short' }), 'r.sig'), 'unsigned', /\/signature/);
  refused(() => parseSignature(JSON.stringify({ ...s, extra: 1 }), 'r.sig'), 'unsigned', /not a piswarm release signature/);
});
