import { createHmac, hkdfSync, timingSafeEqual } from 'node:crypto';

/**
 * Wire format of the gossip membership (agent <-> agent, UDP).
 *
 *   offset  size  field
 *   0       2     magic "PG"
 *   2       1     version (GOSSIP_WIRE_VERSION)
 *   3       1     flags, reserved, must be 0
 *   4       8     cluster tag: HKDF(clusterKey, info "piswarm gossip v1 cluster-tag")
 *   12      n     payload: UTF-8 JSON, one GossipMessage
 *   12+n    32    HMAC-SHA256(authKey, bytes 0..12+n), authKey = HKDF(clusterKey, info "piswarm gossip v1")
 *
 * The whole datagram never exceeds MAX_DATAGRAM_BYTES (1400: fits a 1500-byte
 * Ethernet MTU with IPv4/IPv6 + UDP headers and some tunnel overhead, so no IP
 * fragmentation). The cluster tag lets a receiver tell "another cluster" from
 * "tampered": it is a separate HKDF output, so it reveals nothing about the auth key.
 * There is no replay window: every state message is ordered by incarnation
 * numbers, so a replayed datagram can at worst re-raise a suspicion that the
 * subject refutes, and pings/acks carry sequence numbers the receiver only
 * honours while a probe is pending.
 */
export const GOSSIP_WIRE_VERSION = 1;
export const MAX_DATAGRAM_BYTES = 1400;
export const HEADER_BYTES = 12;
export const MAC_BYTES = 32;
export const MAX_PAYLOAD_BYTES = MAX_DATAGRAM_BYTES - HEADER_BYTES - MAC_BYTES;
/** Largest metadata record, as JSON bytes; keeps one alive update well under the payload budget. */
export const MAX_META_BYTES = 256;
export const MAX_ID_LENGTH = 64;
export const HKDF_LABEL = 'piswarm gossip v1';
const TAG_LABEL = 'piswarm gossip v1 cluster-tag';
const MAGIC0 = 0x50; // 'P'
const MAGIC1 = 0x47; // 'G'
const TAG_BYTES = 8;
// Node ids and addresses travel unescaped in JSON, so their charset is closed:
// hostnames, IPv4/IPv6 literals and Docker node ids all fit.
const ID_RE = /^[A-Za-z0-9._:%-]{1,64}$/;

export type Meta = Record<string, unknown>;

/** One membership change (piggybacked) or one entry of a full-state exchange. */
export type Update =
  | readonly ['a', string, number, string, number, Meta] // alive: id, incarnation, addr, port, meta
  | readonly ['s', string, number, string] // suspect: id, incarnation, from
  | readonly ['d', string, number, string] // dead: id, incarnation, from
  | readonly ['l', string, number]; // left: id, incarnation

/**
 * t: p ping, a ack, n nack, r ping-req (indirect probe), g gossip,
 * y sync request (push my state, pull yours), Y sync state chunk.
 * u = piggybacked updates, m = full state (merged more cautiously: dead -> suspect).
 */
export type GossipMessage =
  | { t: 'p'; s: number; f: string; n: string; u?: Update[] }
  | { t: 'a'; s: number; f: string; u?: Update[] }
  | { t: 'n'; s: number; f: string; u?: Update[] }
  | { t: 'r'; s: number; f: string; n: string; h: string; o: number; u?: Update[] }
  | { t: 'g'; f: string; u?: Update[] }
  | { t: 'y'; s: number; f: string; m?: Update[] }
  | { t: 'Y'; s: number; f: string; m?: Update[] };

export interface GossipKeys {
  readonly authKey: Buffer;
  readonly tag: Buffer;
}

export type DropReason = 'oversize' | 'truncated' | 'version' | 'wrongCluster' | 'auth' | 'malformed';

export function deriveGossipKeys(clusterKey: string | Uint8Array): GossipKeys {
  const ikm = typeof clusterKey === 'string' ? Buffer.from(clusterKey, 'utf8') : Buffer.from(clusterKey);
  const salt = Buffer.alloc(0);
  return Object.freeze({
    authKey: Buffer.from(hkdfSync('sha256', ikm, salt, HKDF_LABEL, 32)),
    tag: Buffer.from(hkdfSync('sha256', ikm, salt, TAG_LABEL, TAG_BYTES)),
  });
}

/** Header + payload + MAC. Returns null when the payload would exceed the budget (the caller counts it). */
export function seal(keys: GossipKeys, payload: string): Buffer | null {
  const plen = Buffer.byteLength(payload, 'utf8');
  if (plen > MAX_PAYLOAD_BYTES) return null;
  const out = Buffer.allocUnsafe(HEADER_BYTES + plen + MAC_BYTES);
  out[0] = MAGIC0;
  out[1] = MAGIC1;
  out[2] = GOSSIP_WIRE_VERSION;
  out[3] = 0;
  keys.tag.copy(out, 4);
  out.write(payload, HEADER_BYTES, 'utf8');
  const mac = createHmac('sha256', keys.authKey).update(out.subarray(0, HEADER_BYTES + plen)).digest();
  mac.copy(out, HEADER_BYTES + plen);
  return out;
}

export type OpenResult = { ok: true; payload: string } | { ok: false; reason: DropReason };

/** Checks size, header, cluster tag and MAC, in that order; never throws. */
export function open(keys: GossipKeys, data: Uint8Array): OpenResult {
  if (data.length > MAX_DATAGRAM_BYTES) return { ok: false, reason: 'oversize' };
  if (data.length < HEADER_BYTES + MAC_BYTES + 2) return { ok: false, reason: 'truncated' };
  if (data[0] !== MAGIC0 || data[1] !== MAGIC1) return { ok: false, reason: 'malformed' };
  if (data[2] !== GOSSIP_WIRE_VERSION || data[3] !== 0) return { ok: false, reason: 'version' };
  const buf = Buffer.from(data.buffer, data.byteOffset, data.length);
  if (!buf.subarray(4, HEADER_BYTES).equals(keys.tag)) return { ok: false, reason: 'wrongCluster' };
  const end = buf.length - MAC_BYTES;
  const mac = createHmac('sha256', keys.authKey).update(buf.subarray(0, end)).digest();
  if (!timingSafeEqual(mac, buf.subarray(end))) return { ok: false, reason: 'auth' };
  return { ok: true, payload: buf.toString('utf8', HEADER_BYTES, end) };
}

// ---- payload validation: authenticated peers can still run buggy or newer code ----

const isId = (v: unknown): v is string => typeof v === 'string' && ID_RE.test(v);
const isSeq = (v: unknown): v is number => typeof v === 'number' && Number.isInteger(v) && v >= 0 && v <= 0xffffffff;
const isInc = (v: unknown): v is number => typeof v === 'number' && Number.isSafeInteger(v) && v >= 0;
const isPort = (v: unknown): v is number => typeof v === 'number' && Number.isInteger(v) && v >= 1 && v <= 65535;

export function isValidId(v: unknown): v is string {
  return isId(v);
}

export function metaBytes(meta: unknown): number {
  return Buffer.byteLength(JSON.stringify(meta) ?? '', 'utf8');
}

function isMeta(v: unknown): v is Meta {
  return typeof v === 'object' && v !== null && !Array.isArray(v) && metaBytes(v) <= MAX_META_BYTES;
}

export function isValidUpdate(u: unknown): u is Update {
  if (!Array.isArray(u)) return false;
  switch (u[0]) {
    case 'a':
      return u.length === 6 && isId(u[1]) && isInc(u[2]) && isId(u[3]) && isPort(u[4]) && isMeta(u[5]);
    case 's':
    case 'd':
      return u.length === 4 && isId(u[1]) && isInc(u[2]) && isId(u[3]);
    case 'l':
      return u.length === 3 && isId(u[1]) && isInc(u[2]);
    default:
      return false;
  }
}

function updates(v: unknown, required: boolean): boolean {
  if (v === undefined) return !required;
  return Array.isArray(v) && v.length <= 256 && v.every(isValidUpdate);
}

/** Parses and validates one payload; null when anything is off (the whole datagram is dropped). */
export function decodeMessage(payload: string): GossipMessage | null {
  let m: unknown;
  try {
    m = JSON.parse(payload);
  } catch {
    return null; // counted as 'malformed' by the caller
  }
  if (typeof m !== 'object' || m === null || Array.isArray(m)) return null;
  const o = m as Record<string, unknown>;
  if (!isId(o.f)) return null;
  switch (o.t) {
    case 'p':
      return isSeq(o.s) && isId(o.n) && updates(o.u, false) ? (o as GossipMessage) : null;
    case 'a':
    case 'n':
      return isSeq(o.s) && updates(o.u, false) ? (o as GossipMessage) : null;
    case 'r':
      return isSeq(o.s) && isId(o.n) && isId(o.h) && isPort(o.o) && updates(o.u, false) ? (o as GossipMessage) : null;
    case 'g':
      return updates(o.u, false) ? (o as GossipMessage) : null;
    case 'y':
    case 'Y':
      return isSeq(o.s) && updates(o.m, false) ? (o as GossipMessage) : null;
    default:
      return null;
  }
}

/**
 * Serialises `base` and appends as many pre-encoded updates (JSON strings with
 * their byte lengths) as fit the payload budget, greedily in order, skipping
 * any that do not fit. Returns the payload and the indices of the updates that
 * went in, or null when even `base` alone does not fit.
 */
export function encodeWithUpdates(
  base: Record<string, unknown>,
  field: 'u' | 'm',
  items: readonly { json: string; bytes: number }[],
  budget = MAX_PAYLOAD_BYTES,
): { payload: string; taken: number[] } | null {
  const head = JSON.stringify(base);
  const headBytes = Buffer.byteLength(head, 'utf8');
  if (headBytes > budget) return null;
  // head ends with '}'; the list is spliced in before it.
  const open = `,"${field}":[`;
  let used = headBytes + open.length + 1; // + ']'
  const parts: string[] = [];
  const taken: number[] = [];
  for (let i = 0; i < items.length && used < budget; i++) {
    const it = items[i]!;
    const add = it.bytes + (parts.length > 0 ? 1 : 0);
    if (used + add > budget) continue;
    used += add;
    parts.push(it.json);
    taken.push(i);
  }
  if (parts.length === 0) return { payload: head, taken };
  return { payload: head.slice(0, -1) + open + parts.join(',') + ']}', taken };
}
