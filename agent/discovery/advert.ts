import { createHash, timingSafeEqual } from 'node:crypto';
import { PROTOCOL_VERSION } from '../../shared/constants.js';
import { hmac, keysFor, type ClusterKeys } from '../identity/keys.js';

/**
 * The mDNS TXT record of `_piswarm._tcp`. It is a hint, never proof: a peer
 * found here is only a candidate until an authenticated HTTP exchange
 * confirms it. The signature stops a stranger from steering discovery with
 * fake adverts (and tells clusters apart); freshness stops old captures.
 *
 * Keys are one letter to stay under TXT_MAX_BYTES with an IPv6 address:
 *   v protocol, c cluster id, n node id, a address, p API port,
 *   r role (- none, w worker, m manager, i initialising), s swarm id,
 *   t unix ms, q sequence, g signature (HMAC-SHA256/128, base64url).
 */
export const TXT_MAX_BYTES = 200;
const SIG_BYTES = 16;

export type AdvertRole = 'none' | 'worker' | 'manager' | 'initialising';
const ROLE_CODE: Record<AdvertRole, string> = { none: '-', worker: 'w', manager: 'm', initialising: 'i' };
const CODE_ROLE: Record<string, AdvertRole> = { '-': 'none', w: 'worker', m: 'manager', i: 'initialising' };

export interface Advert {
  nodeId: string;
  addr: string;
  port: number;
  role: AdvertRole;
  swarmId: string | null;
  ts: number;
  seq: number;
}

export type AdvertDropReason = 'unsigned' | 'malformed' | 'version' | 'wrong_cluster' | 'bad_signature' | 'stale' | 'self';
export const ADVERT_DROP_REASONS: readonly AdvertDropReason[] = ['unsigned', 'malformed', 'version', 'wrong_cluster', 'bad_signature', 'stale', 'self'];

export type AdvertVerdict =
  | { ok: true; advert: Advert }
  | { ok: false; reason: AdvertDropReason; clusterId?: string };

const FIELDS = ['v', 'c', 'n', 'a', 'p', 'r', 's', 't', 'q'] as const;

function canonical(txt: Record<string, string>): string {
  return FIELDS.map((f) => `${f}=${txt[f] ?? ''}`).join('\n');
}

function sign(keys: ClusterKeys, txt: Record<string, string>): string {
  return hmac(keys.advertKey, `piswarm-advert-v1\n${canonical(txt)}`).subarray(0, SIG_BYTES).toString('base64url');
}

/** Bytes a TXT record takes on the wire: one length byte plus "key=value" per entry. */
export function txtWireSize(txt: Record<string, string>): number {
  return Object.entries(txt).reduce((n, [k, v]) => n + 1 + Buffer.byteLength(`${k}=${v}`), 0);
}

export function encodeAdvert(keys: ClusterKeys, a: Advert): Record<string, string> {
  const txt: Record<string, string> = {
    v: String(PROTOCOL_VERSION),
    c: keys.clusterId,
    n: a.nodeId,
    a: a.addr,
    p: String(a.port),
    r: ROLE_CODE[a.role],
    s: a.swarmId ?? '',
    t: String(a.ts),
    q: String(a.seq),
  };
  txt.g = sign(keys, txt);
  const size = txtWireSize(txt);
  if (size > TXT_MAX_BYTES) throw new RangeError(`advert TXT record is ${size} bytes, over ${TXT_MAX_BYTES}`);
  return txt;
}

function str(v: unknown): string | undefined {
  if (typeof v === 'string') return v;
  if (Buffer.isBuffer(v)) return v.toString('utf8');
  if (typeof v === 'number' || typeof v === 'boolean') return String(v);
  return undefined;
}

/**
 * Pure verification of a received TXT record (as bonjour-service decodes it:
 * values may be strings, Buffers, or `true` for a key without value).
 */
/** What a cluster id looks like (8 bytes of HKDF output, base64url). */
const CLUSTER_ID_RE = /^[A-Za-z0-9_-]{11}$/;

/**
 * Another cluster's advert cannot be verified (we lack its key), yet it is
 * reported: anyone on the LAN can send one, so what it can make /health and
 * /v1/formation show is bounded to a well-formed cluster id, or the hash of
 * whatever else it claimed (never its text: it was seen carrying markup).
 */
export function shownClusterId(claimed: string): string {
  return CLUSTER_ID_RE.test(claimed) ? claimed : `unverifiable-${createHash('sha256').update(claimed).digest('hex').slice(0, 12)}`;
}

export function verifyAdvert(
  keys: ClusterKeys,
  raw: unknown,
  now: number,
  opts: { maxAgeMs: number; selfNodeId?: string },
): AdvertVerdict {
  if (typeof raw !== 'object' || raw === null) return { ok: false, reason: 'malformed' };
  const txt: Record<string, string> = {};
  for (const [k, v] of Object.entries(raw as Record<string, unknown>)) {
    const s = str(v);
    if (s !== undefined) txt[k] = s;
  }
  if (txtWireSize(txt) > TXT_MAX_BYTES * 2) return { ok: false, reason: 'malformed' };
  if (txt.v !== String(PROTOCOL_VERSION)) return { ok: false, reason: txt.v === undefined ? 'malformed' : 'version' };
  if (!txt.g) return { ok: false, reason: 'unsigned' };
  const k = keysFor(keys, txt.c);
  if (!k) return { ok: false, reason: 'wrong_cluster', ...(txt.c ? { clusterId: shownClusterId(txt.c) } : {}) };
  const expected = Buffer.from(sign(k, txt), 'base64url');
  const got = Buffer.from(txt.g, 'base64url');
  if (got.length !== expected.length || !timingSafeEqual(got, expected)) return { ok: false, reason: 'bad_signature' };
  const port = Number(txt.p);
  const ts = Number(txt.t);
  const seq = Number(txt.q);
  const role = CODE_ROLE[txt.r ?? ''];
  if (!/^[0-9a-f]{24}$/.test(txt.n ?? '') || !txt.a || !Number.isInteger(port) || port < 1 || port > 65535 || !Number.isSafeInteger(ts) || !Number.isSafeInteger(seq) || !role) {
    return { ok: false, reason: 'malformed' };
  }
  if (Math.abs(now - ts) > opts.maxAgeMs) return { ok: false, reason: 'stale' };
  if (opts.selfNodeId !== undefined && txt.n === opts.selfNodeId) return { ok: false, reason: 'self' };
  return { ok: true, advert: { nodeId: txt.n!, addr: txt.a, port, role, swarmId: txt.s ? txt.s : null, ts, seq } };
}
