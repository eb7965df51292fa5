import { createHash, createPrivateKey, createPublicKey, generateKeyPairSync, sign, verify, type KeyObject } from 'node:crypto';
import { Value } from '@sinclair/typebox/value';
import { PiswarmError } from '../../shared/errors.js';
import { MAX_RELEASE_BYTES, ReleaseSignature, SIGNATURE_FORMAT, type RefusalReason } from '../../shared/wire/release.js';
import { compareVersions } from './version.js';

/**
 * Release signatures: ed25519. The operator's private key never leaves the
 * operator (made by `piswarm release keygen`, beside the cluster file); every
 * node holds only the public half (config upgrade.releaseKey). Why not a MAC
 * under the cluster key: every node holds that key, and installing a release
 * runs code as root on every Pi, so one stolen card (or one compromised
 * agent) could then sign a release for the whole cluster. With a signature
 * key kept off the cards, a card holds nothing that can make a release.
 */
export class ReleaseRefused extends PiswarmError {
  constructor(readonly reason: RefusalReason, message: string) {
    super('PISWARM_ERR_RELEASE_REFUSED', message, { details: { reason } });
  }
}

/** The raw 32-byte public key is carried as base64url (43 characters). */
const SPKI_PREFIX = Buffer.from('302a300506032b6570032100', 'hex');
const PUBLIC_KEY_RE = /^[A-Za-z0-9_-]{43}$/;

export function publicKeyObject(raw: string): KeyObject {
  if (!PUBLIC_KEY_RE.test(raw)) throw new ReleaseRefused('no_release_key', 'upgrade.releaseKey is not an ed25519 public key (43 base64url characters)');
  return createPublicKey({ key: Buffer.concat([SPKI_PREFIX, Buffer.from(raw, 'base64url')]), format: 'der', type: 'spki' });
}

/** A short public name for a release key (shown and carried in signatures as a hint). */
export function releaseKeyId(publicKey: string): string {
  return createHash('sha256').update(`piswarm-release-key\n${publicKey}`).digest('base64url').slice(0, 11);
}

export function generateReleaseKey(): { privatePem: string; publicKey: string } {
  const { privateKey, publicKey } = generateKeyPairSync('ed25519');
  const der = publicKey.export({ format: 'der', type: 'spki' });
  return { privatePem: privateKey.export({ format: 'pem', type: 'pkcs8' }).toString(), publicKey: der.subarray(SPKI_PREFIX.length).toString('base64url') };
}

/** The public half of a private key file's key. */
export function publicKeyOf(privatePem: string): string {
  const der = createPublicKey(createPrivateKey(privatePem)).export({ format: 'der', type: 'spki' });
  return der.subarray(SPKI_PREFIX.length).toString('base64url');
}

const message = (s: { version: string; size: number; sha256: string }) => Buffer.from(['piswarm-release-v1', s.version, String(s.size), s.sha256].join('\n'));

export const sha256hex = (data: Buffer) => createHash('sha256').update(data).digest('hex');

export function signRelease(privatePem: string, release: { version: string; bytes: Buffer }): ReleaseSignature {
  const key = createPrivateKey(privatePem);
  if (key.asymmetricKeyType !== 'ed25519') throw new PiswarmError('PISWARM_ERR_RELEASE_REFUSED', 'the release key is not an ed25519 private key (make one with `piswarm release keygen`)');
  const body = { version: release.version, size: release.bytes.length, sha256: sha256hex(release.bytes) };
  return {
    format: SIGNATURE_FORMAT,
    v: 1,
    ...body,
    keyId: releaseKeyId(publicKeyOf(privatePem)),
    signature: sign(null, message(body), key).toString('base64url'),
  };
}

/** Parses a signature file's text; anything that is not one is `unsigned` (there is no signature to check). */
export function parseSignature(text: string | null, source: string): ReleaseSignature {
  if (text === null) throw new ReleaseRefused('unsigned', `no signature for the release (${source}): sign it with \`piswarm release sign\``);
  let v: unknown;
  try {
    v = JSON.parse(text);
  } catch {
    throw new ReleaseRefused('unsigned', `${source} is not a piswarm release signature (not JSON)`);
  }
  if (!Value.Check(ReleaseSignature, v)) {
    const first = Value.Errors(ReleaseSignature, v).First();
    throw new ReleaseRefused('unsigned', `${source} is not a piswarm release signature (${first ? `${first.path || '/'} ${first.message}` : 'invalid'})`);
  }
  return v;
}

/**
 * Is the signature the release key's, for a version newer than `running`?
 * The bytes themselves are checked by checkBytes once they are all there.
 */
export function checkSignature(publicKey: string | undefined, s: ReleaseSignature, running: string): void {
  if (!publicKey) throw new ReleaseRefused('no_release_key', 'this node has no release key (upgrade.releaseKey): it accepts no release over the network; install one by hand with install.sh');
  if (s.size > MAX_RELEASE_BYTES) throw new ReleaseRefused('too_large', `the release is ${s.size} bytes; at most ${MAX_RELEASE_BYTES} are accepted`);
  let ok = false;
  try {
    ok = verify(null, message(s), publicKeyObject(publicKey), Buffer.from(s.signature, 'base64url'));
  } catch (err) {
    if (err instanceof ReleaseRefused) throw err;
    ok = false;
  }
  if (!ok) throw new ReleaseRefused('bad_signature', `the release signature does not verify with this cluster's release key ${releaseKeyId(publicKey)} (signed with ${s.keyId}, or altered)`);
  const order = compareVersions(s.version, running);
  if (order === null || order <= 0) throw new ReleaseRefused('downgrade', `release ${s.version} is not newer than the running ${running}: downgrades are refused`);
}

/** The whole release against its signature: its size first (truncated), then its hash (tampered). */
export function checkBytes(s: ReleaseSignature, bytes: Buffer): void {
  if (bytes.length < s.size) throw new ReleaseRefused('truncated', `the release is ${bytes.length} of the ${s.size} bytes signed: truncated`);
  if (bytes.length > s.size) throw new ReleaseRefused('tampered', `the release is ${bytes.length} bytes, the signature says ${s.size}`);
  if (sha256hex(bytes) !== s.sha256) throw new ReleaseRefused('tampered', 'the release does not match its signature (sha256 differs): altered after signing');
}
