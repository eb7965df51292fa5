import { createCipheriv, createDecipheriv, hkdfSync, timingSafeEqual } from 'node:crypto';
import { PiswarmError } from '../../shared/errors.js';
import { hmac, keysFor, sha256b64, type ClusterKeys } from '../identity/keys.js';

/**
 * The peer protocol, pure: callers pass nonces and clocks in, so every case
 * (replay, stale, tampered, rogue) is a microsecond unit test.
 *
 * Request: header `x-piswarm-auth: v=2,c=<cluster id>,n=<node id>,a=<addressee>,t=<unix ms>,r=<nonce>,m=<mac>`
 *   mac = HMAC(authKey, "piswarm-req-v2" | method | path | sha256(body) | nonce | t | n | c | a)
 * The addressee is the node the request is for: its node id when the caller
 * knows it, else the `host:port` it dialled. Each node keeps its own replay
 * cache, so without it a request captured on the LAN could be replayed to
 * every other node (and to its sender) once each; with it a request is good
 * for one node, once.
 * Answer: the same header from the server, with its own nonce and the
 * request's addressee, and
 *   mac = HMAC(authKey, "piswarm-res-v2" | request nonce | status | sha256(body) | nonce | t | n | c | a)
 * so an answer is bound to the one request it answers: whoever lacks the
 * cluster key cannot produce one the caller accepts, not even by replaying
 * an old answer. Version 1 (no addressee) is refused as `version`.
 *
 * Grant: the worker token is sealed with AES-256-GCM under
 *   HKDF(grantKey, salt = request nonce | answer nonce, "piswarm-grant-v1")
 * with the joiner id, manager id, swarm id and manager addresses as
 * additional data. A passive listener sees only ciphertext; a fresh key per
 * exchange means one captured grant says nothing about the next.
 */
export type AuthFailure = 'malformed' | 'version' | 'wrong_cluster' | 'bad_mac' | 'stale' | 'misaddressed' | 'replay';
export const AUTH_FAILURES: readonly AuthFailure[] = ['malformed', 'version', 'wrong_cluster', 'bad_mac', 'stale', 'misaddressed', 'replay'];
/** The peer protocol's version (the header's `v`). */
export const PEER_PROTOCOL_VERSION = 2;

const FAILURE_CODE = {
  malformed: 'PISWARM_ERR_AUTH_FAILED',
  version: 'PISWARM_ERR_PROTOCOL_VERSION',
  misaddressed: 'PISWARM_ERR_MISADDRESSED',
  bad_mac: 'PISWARM_ERR_AUTH_FAILED',
  wrong_cluster: 'PISWARM_ERR_WRONG_CLUSTER',
  stale: 'PISWARM_ERR_STALE',
  replay: 'PISWARM_ERR_REPLAY',
} as const;

export class AuthError extends PiswarmError {
  constructor(readonly reason: AuthFailure, message: string) {
    super(FAILURE_CODE[reason], message, { details: { reason } });
  }
}

export interface AuthHeader {
  v: number;
  clusterId: string;
  nodeId: string;
  /** Whom the request is for: a node id, or the `host:port` the caller dialled (see Addressee). */
  to: string;
  ts: number;
  nonce: string;
  mac: string;
}

const NONCE_RE = /^[A-Za-z0-9_-]{16,64}$/;
const NODE_ID_RE = /^[0-9a-f]{24}$/;
/** A node id, or host:port with a host of letters, digits, dots, dashes, colons (IPv6 in brackets). */
const ADDRESSEE_RE = /^(?:[0-9a-f]{24}|(?:[A-Za-z0-9.-]{1,253}|\[[0-9A-Fa-f:.]{2,45}\]):[0-9]{1,5})$/;

/** The node a request is addressed to: its node id when known, else where it was dialled. */
export function addressee(target: { nodeId?: string | null; addr: string; port: number }): string {
  if (target.nodeId) return target.nodeId;
  return `${target.addr.includes(':') ? `[${target.addr}]` : target.addr}:${target.port}`;
}

/** How a node recognises requests addressed to it. */
export interface SelfAddressing {
  nodeId: string;
  port: number;
  /** Whether `host` (an IP address or name, IPv6 without brackets) names this node. */
  isOwnHost(host: string): boolean;
}

export function isAddressedTo(to: string, self: SelfAddressing): boolean {
  if (NODE_ID_RE.test(to)) return to === self.nodeId;
  const colon = to.lastIndexOf(':');
  const host = to.slice(0, colon).replace(/^\[|\]$/g, '');
  return Number(to.slice(colon + 1)) === self.port && self.isOwnHost(host);
}

export function formatAuthHeader(h: AuthHeader): string {
  return `v=${h.v},c=${h.clusterId},n=${h.nodeId},a=${h.to},t=${h.ts},r=${h.nonce},m=${h.mac}`;
}

function headerFields(raw: unknown): Record<string, string> | null {
  if (typeof raw !== 'string' || raw.length > 700) return null;
  const f: Record<string, string> = {};
  for (const part of raw.split(',')) {
    const eq = part.indexOf('=');
    if (eq <= 0) return null;
    f[part.slice(0, eq).trim()] = part.slice(eq + 1).trim();
  }
  return f;
}

/** The header's protocol version, or null when it is not a header at all. */
export function authHeaderVersion(raw: unknown): number | null {
  const v = Number(headerFields(raw)?.v);
  return Number.isSafeInteger(v) && v > 0 ? v : null;
}

export function parseAuthHeader(raw: unknown): AuthHeader | null {
  const f = headerFields(raw);
  if (!f) return null;
  const ts = Number(f.t);
  if (f.v !== String(PEER_PROTOCOL_VERSION) || !f.c || !NODE_ID_RE.test(f.n ?? '') || !ADDRESSEE_RE.test(f.a ?? '') || !Number.isSafeInteger(ts) || !NONCE_RE.test(f.r ?? '') || !/^[A-Za-z0-9_-]{43}$/.test(f.m ?? '')) return null;
  return { v: PEER_PROTOCOL_VERSION, clusterId: f.c, nodeId: f.n!, to: f.a!, ts, nonce: f.r!, mac: f.m! };
}

function macEquals(a: string, b: string): boolean {
  const x = Buffer.from(a, 'base64url');
  const y = Buffer.from(b, 'base64url');
  return x.length === y.length && x.length > 0 && timingSafeEqual(x, y);
}

function requestMac(keys: ClusterKeys, method: string, path: string, body: string, h: Omit<AuthHeader, 'mac' | 'v'>): string {
  return hmac(keys.authKey, ['piswarm-req-v2', method.toUpperCase(), path, sha256b64(body), h.nonce, String(h.ts), h.nodeId, h.clusterId, h.to].join('\n')).toString('base64url');
}

function responseMac(keys: ClusterKeys, requestNonce: string, status: number, body: string, h: Omit<AuthHeader, 'mac' | 'v'>): string {
  return hmac(keys.authKey, ['piswarm-res-v2', requestNonce, String(status), sha256b64(body), h.nonce, String(h.ts), h.nodeId, h.clusterId, h.to].join('\n')).toString('base64url');
}

export function signRequest(keys: ClusterKeys, r: { method: string; path: string; body: string; nodeId: string; to: string; now: number; nonce: string }): string {
  const h = { clusterId: keys.clusterId, nodeId: r.nodeId, to: r.to, ts: r.now, nonce: r.nonce };
  return formatAuthHeader({ v: PEER_PROTOCOL_VERSION, ...h, mac: requestMac(keys, r.method, r.path, r.body, h) });
}

/**
 * Remembers nonces of accepted requests for twice the time window, so a
 * captured request can be replayed neither inside the window (nonce seen) nor
 * after it (stale). Only authentic requests enter, so a flood of forgeries
 * cannot fill it; it is bounded anyway.
 */
export class ReplayCache {
  private readonly seen = new Map<string, number>();
  constructor(private readonly ttlMs: number, private readonly max = 10_000) {}

  /** True when the nonce is new (and records it). */
  check(nonce: string, now: number): boolean {
    if (this.seen.size >= this.max / 2) for (const [n, exp] of this.seen) if (exp <= now) this.seen.delete(n);
    const exp = this.seen.get(nonce);
    if (exp !== undefined && exp > now) return false;
    if (this.seen.size >= this.max) this.seen.delete(this.seen.keys().next().value!);
    this.seen.set(nonce, now + this.ttlMs);
    return true;
  }

  get size(): number {
    return this.seen.size;
  }
}

/** Verifies a request; throws AuthError (with a stable code) on any failure. Returns the header and the keys it was made with (the answer goes under them). */
export function verifyRequest(
  keys: ClusterKeys,
  r: { method: string; path: string; body: string; header: unknown; now: number; windowMs: number; replay: ReplayCache; self: SelfAddressing },
): AuthHeader & { keys: ClusterKeys } {
  const h = parseAuthHeader(r.header);
  if (!h) throw unparsable(r.header);
  const k = keysFor(keys, h.clusterId);
  if (!k) throw new AuthError('wrong_cluster', 'the caller belongs to another cluster (different cluster key)');
  if (!macEquals(h.mac, requestMac(k, r.method, r.path, r.body, h))) throw new AuthError('bad_mac', 'request signature does not verify');
  // Checked after the MAC so a forger cannot probe our clock or fill the cache.
  if (Math.abs(r.now - h.ts) > r.windowMs) throw new AuthError('stale', `request timestamp is more than ${Math.round(r.windowMs / 1000)} s from this node's clock`);
  if (!isAddressedTo(h.to, r.self)) throw new AuthError('misaddressed', `request is addressed to ${h.to}, not to this node (${r.self.nodeId})`);
  if (!r.replay.check(h.nonce, r.now)) throw new AuthError('replay', 'request nonce was already used');
  return { ...h, keys: k };
}

/** A header that does not parse: an old protocol version says so, anything else is malformed. */
function unparsable(header: unknown): AuthError {
  const v = authHeaderVersion(header);
  if (v !== null && v !== PEER_PROTOCOL_VERSION) {
    return new AuthError('version', `peer protocol version ${v} is not spoken here (this node speaks ${PEER_PROTOCOL_VERSION}): run the same piswarm release on every node`);
  }
  return new AuthError('malformed', 'missing or malformed x-piswarm-auth header');
}

/** `to`: the addressee of the request answered (the answer is bound to it too). */
export function signResponse(keys: ClusterKeys, r: { requestNonce: string; to: string; status: number; body: string; nodeId: string; now: number; nonce: string }): string {
  const h = { clusterId: keys.clusterId, nodeId: r.nodeId, to: r.to, ts: r.now, nonce: r.nonce };
  return formatAuthHeader({ v: PEER_PROTOCOL_VERSION, ...h, mac: responseMac(keys, r.requestNonce, r.status, r.body, h) });
}

/** Verifies an answer is from a key holder and answers our request (its nonce and addressee). */
export function verifyResponse(
  keys: ClusterKeys,
  r: { requestNonce: string; to: string; status: number; body: string; header: unknown; now: number; windowMs: number },
): AuthHeader {
  const h = parseAuthHeader(r.header);
  if (!h) throw unparsable(r.header);
  const k = keysFor(keys, h.clusterId);
  if (!k) throw new AuthError('wrong_cluster', 'peer answered for another cluster');
  if (!macEquals(h.mac, responseMac(k, r.requestNonce, r.status, r.body, h))) throw new AuthError('bad_mac', 'peer answer signature does not verify');
  if (h.to !== r.to) throw new AuthError('misaddressed', `peer answered a request addressed to ${h.to}, not ours (${r.to})`);
  if (Math.abs(r.now - h.ts) > r.windowMs) throw new AuthError('stale', 'peer answer timestamp outside the allowed window');
  return h;
}

export interface SealedToken {
  iv: string;
  ciphertext: string;
  tag: string;
}

export interface GrantBinding {
  requestNonce: string;
  responseNonce: string;
  joinerId: string;
  managerId: string;
  swarmId: string;
  managerAddrs: readonly string[];
}

function grantKey(keys: ClusterKeys, b: GrantBinding): Buffer {
  const salt = Buffer.from(`${b.requestNonce}.${b.responseNonce}`);
  return Buffer.from(hkdfSync('sha256', keys.grantKey, salt, Buffer.from('piswarm-grant-v1'), 32));
}

function aad(b: GrantBinding): Buffer {
  return Buffer.from(['piswarm-grant-aad-v1', b.joinerId, b.managerId, b.swarmId, b.managerAddrs.join(',')].join('\n'));
}

/** AES-256-GCM with additional data: the sealing of grants and keys. */
function sealWith(key: Buffer, aad: Buffer, plaintext: string, iv: Buffer): SealedToken {
  const c = createCipheriv('aes-256-gcm', key, iv);
  c.setAAD(aad);
  const ct = Buffer.concat([c.update(plaintext, 'utf8'), c.final()]);
  return { iv: iv.toString('base64url'), ciphertext: ct.toString('base64url'), tag: c.getAuthTag().toString('base64url') };
}

/** Opens sealWith's output; any failure (wrong key or data, tampering, bad lengths) is `fail`. */
function openWith(key: Buffer, aad: Buffer, s: SealedToken, fail: (cause: unknown) => PiswarmError): string {
  try {
    const iv = Buffer.from(s.iv, 'base64url');
    const tag = Buffer.from(s.tag, 'base64url');
    if (iv.length !== 12 || tag.length !== 16) throw new Error('bad iv or tag length');
    const d = createDecipheriv('aes-256-gcm', key, iv);
    d.setAAD(aad);
    d.setAuthTag(tag);
    return Buffer.concat([d.update(Buffer.from(s.ciphertext, 'base64url')), d.final()]).toString('utf8');
  } catch (err) {
    throw fail(err);
  }
}

export function sealToken(keys: ClusterKeys, b: GrantBinding, token: string, iv: Buffer): SealedToken {
  return sealWith(grantKey(keys, b), aad(b), token, iv);
}

export function openToken(keys: ClusterKeys, b: GrantBinding, s: SealedToken): string {
  return openWith(grantKey(keys, b), aad(b), s, (cause) => new PiswarmError('PISWARM_ERR_PEER_UNVERIFIED', 'the grant does not decrypt: not sealed for this exchange or tampered with', { cause }));
}

/**
 * A cluster key sent to one node in one request (a key rotation): AES-256-GCM
 * under HKDF(grantKey of the request's key, salt = request nonce), bound to
 * the addressee and the new key's cluster id, so it opens for that request
 * only and a changed id or addressee is refused.
 */
export interface KeyBinding {
  requestNonce: string;
  to: string;
  clusterId: string;
}

function keyKey(keys: ClusterKeys, b: KeyBinding): Buffer {
  return Buffer.from(hkdfSync('sha256', keys.grantKey, Buffer.from(b.requestNonce), Buffer.from('piswarm-keyring-v1'), 32));
}

const keyAad = (b: KeyBinding) => Buffer.from(['piswarm-keyring-aad-v1', b.to, b.clusterId].join('\n'));

export function sealKey(keys: ClusterKeys, b: KeyBinding, key: string, iv: Buffer): SealedToken {
  return sealWith(keyKey(keys, b), keyAad(b), key, iv);
}

export function openKey(keys: ClusterKeys, b: KeyBinding, s: SealedToken): string {
  return openWith(keyKey(keys, b), keyAad(b), s, (cause) => new PiswarmError('PISWARM_ERR_KEYRING', 'the new key does not decrypt: not sealed for this request or tampered with', { cause }));
}
