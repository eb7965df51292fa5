import { createHmac, hkdfSync, timingSafeEqual } from 'node:crypto';
import { deflateRawSync, inflateRawSync } from 'node:zlib';
import { keyRing } from '../key-ring.js';
import { ReadError, Reader, Writer } from './gossip-codec.js';

/**
 * Wire format of the gossip membership (agent <-> agent, UDP), version 2.
 *
 *   offset  size  field
 *   0       2     magic "PG"
 *   2       1     version (GOSSIP_WIRE_VERSION)
 *   3       1     flags: 0x01 the payload is raw DEFLATE (RFC 1951); other bits reserved, must be 0
 *   4       8     cluster tag: HKDF(clusterKey, info "piswarm gossip v1 cluster-tag")
 *   12      n     payload: one GossipMessage, binary (below)
 *   12+n    16    HMAC-SHA256(authKey, bytes 0..12+n) truncated to 128 bits (RFC 2104 sec. 5,
 *                 as IPsec's HMAC-SHA-256-128, RFC 4868), authKey = HKDF(clusterKey, info "piswarm gossip v1")
 *
 * Payload: the message type as its ASCII letter, then its fields in a fixed
 * order (s: varint; f, n, h: str; o: u16 big-endian), then a varint count of
 * updates and the updates. An update is its kind letter, str id, varint
 * incarnation, then for alive: str addr, u16 port, varint length + the meta
 * as UTF-8 JSON; for suspect and dead: str from; for left nothing. str is
 * one length byte and that many ASCII bytes (ids and addresses have a closed
 * ASCII charset of at most 64); varint is unsigned LEB128 up to 2^53.
 *
 * A payload of COMPRESS_FROM_BYTES or more is sent deflated when that is
 * smaller (full-state exchanges: ids, addresses and meta keys repeat). The
 * MAC covers the bytes as sent, so nothing unauthenticated is inflated, and
 * inflating stops at MAX_PAYLOAD_BYTES (no sender builds a larger payload).
 *
 * Version 1 (the JSON payload and a 32-byte MAC) cost 2.4 times memberlist's
 * bytes per node at N = 20 (issue 14); its datagrams are refused as 'version'.
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
export const GOSSIP_WIRE_VERSION = 2;
export const MAX_DATAGRAM_BYTES = 1400;
export const HEADER_BYTES = 12;
export const MAC_BYTES = 16;
export const MAX_PAYLOAD_BYTES = MAX_DATAGRAM_BYTES - HEADER_BYTES - MAC_BYTES;
/** Largest metadata record, as JSON bytes; keeps one alive update well under the payload budget. */
export const MAX_META_BYTES = 256;
export const MAX_ID_LENGTH = 64;
export const HKDF_LABEL = 'piswarm gossip v1';
const TAG_LABEL = 'piswarm gossip v1 cluster-tag';
const MAGIC0 = 0x50; // 'P'
const MAGIC1 = 0x47; // 'G'
const TAG_BYTES = 8;
const MAX_UPDATES = 256;
const FLAG_DEFLATE = 0x01;
export const COMPRESS_FROM_BYTES = 256;
// Node ids and addresses have a closed ASCII charset: hostnames, IPv4/IPv6
// literals and Docker node ids all fit.
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

/**
 * The gossip keys of every cluster key a node accepts during a key rotation
 * (agent/identity/keys.ts Keyring): datagrams are sealed with the primary's
 * and opened with the key whose cluster tag they carry.
 */
export class GossipKeyring implements GossipKeys {
  #ring: readonly GossipKeys[];

  constructor(primary: GossipKeys, accepted: readonly GossipKeys[] = []) {
    this.#ring = keyRing(primary, accepted, sameTag);
  }

  get authKey(): Buffer { return this.#ring[0]!.authKey; }
  get tag(): Buffer { return this.#ring[0]!.tag; }

  find(tag: Uint8Array): GossipKeys | null {
    return this.#ring.find((k) => k.tag.equals(tag)) ?? null;
  }

  set(primary: GossipKeys, accepted: readonly GossipKeys[] = []): void {
    this.#ring = keyRing(primary, accepted, sameTag);
  }
}

const sameTag = (a: GossipKeys, b: GossipKeys) => a.tag.equals(b.tag);

function keysForTag(keys: GossipKeys, tag: Uint8Array): GossipKeys | null {
  if (keys instanceof GossipKeyring) return keys.find(tag);
  return keys.tag.equals(tag) ? keys : null;
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
export function seal(keys: GossipKeys, payload: Uint8Array): Buffer | null {
  if (payload.length > MAX_PAYLOAD_BYTES) return null;
  let flags = 0;
  let body = payload;
  if (payload.length >= COMPRESS_FROM_BYTES) {
    const deflated = deflateRawSync(payload);
    if (deflated.length < payload.length) {
      flags = FLAG_DEFLATE;
      body = deflated;
    }
  }
  const plen = body.length;
  const out = Buffer.allocUnsafe(HEADER_BYTES + plen + MAC_BYTES);
  out[0] = MAGIC0;
  out[1] = MAGIC1;
  out[2] = GOSSIP_WIRE_VERSION;
  out[3] = flags;
  keys.tag.copy(out, 4);
  out.set(body, HEADER_BYTES);
  mac(keys, out.subarray(0, HEADER_BYTES + plen)).copy(out, HEADER_BYTES + plen);
  return out;
}

const mac = (keys: GossipKeys, bytes: Uint8Array): Buffer => createHmac('sha256', keys.authKey).update(bytes).digest().subarray(0, MAC_BYTES);

export type OpenResult = { ok: true; payload: Buffer } | { ok: false; reason: DropReason };

/** Checks size, header, cluster tag and MAC, in that order; never throws. */
export function open(keys: GossipKeys, data: Uint8Array): OpenResult {
  if (data.length > MAX_DATAGRAM_BYTES) return { ok: false, reason: 'oversize' };
  if (data.length < HEADER_BYTES + MAC_BYTES + 2) return { ok: false, reason: 'truncated' };
  if (data[0] !== MAGIC0 || data[1] !== MAGIC1) return { ok: false, reason: 'malformed' };
  // Before the tag: a version-1 agent (32-byte MAC) would otherwise look tampered.
  if (data[2] !== GOSSIP_WIRE_VERSION || (data[3]! & ~FLAG_DEFLATE) !== 0) return { ok: false, reason: 'version' };
  const buf = Buffer.from(data.buffer, data.byteOffset, data.length);
  const k = keysForTag(keys, buf.subarray(4, HEADER_BYTES));
  if (!k) return { ok: false, reason: 'wrongCluster' };
  const end = buf.length - MAC_BYTES;
  if (!timingSafeEqual(mac(k, buf.subarray(0, end)), buf.subarray(end))) return { ok: false, reason: 'auth' };
  const body = buf.subarray(HEADER_BYTES, end);
  if ((buf[3]! & FLAG_DEFLATE) === 0) return { ok: true, payload: body };
  try {
    return { ok: true, payload: inflateRawSync(body, { maxOutputLength: MAX_PAYLOAD_BYTES }) };
  } catch {
    return { ok: false, reason: 'malformed' }; // not DEFLATE, or it inflates past the budget
  }
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

// ---- the binary payload (layout at the top) ----

/** A message without its update list (what the core builds before piggybacking). */
export type MessageHead = { [K in GossipMessage['t']]: Omit<Extract<GossipMessage, { t: K }>, 'u' | 'm'> }[GossipMessage['t']];

const code = (c: string) => c.charCodeAt(0);

function writeHead(w: Writer, m: MessageHead): void {
  w.u8(code(m.t));
  switch (m.t) {
    case 'p':
      w.varint(m.s).str(m.f).str(m.n);
      break;
    case 'a':
    case 'n':
    case 'y':
    case 'Y':
      w.varint(m.s).str(m.f);
      break;
    case 'r':
      w.varint(m.s).str(m.f).str(m.n).str(m.h).u16(m.o);
      break;
    case 'g':
      w.str(m.f);
      break;
  }
}

/** One update as payload bytes (pre-encoded once, sent many times). */
export function encodeUpdate(u: Update): Buffer {
  const w = new Writer().u8(code(u[0])).str(u[1]).varint(u[2]);
  switch (u[0]) {
    case 'a': {
      const meta = Buffer.from(JSON.stringify(u[5]), 'utf8');
      w.str(u[3]).u16(u[4]).varint(meta.length).bytes(meta);
      break;
    }
    case 's':
    case 'd':
      w.str(u[3]);
      break;
    case 'l':
      break;
  }
  return w.done();
}

/** A whole message (tests, and sends without piggyback). */
export function encodeMessage(m: GossipMessage): Buffer {
  const list = ('u' in m ? m.u : 'm' in m ? m.m : undefined) ?? [];
  const w = new Writer();
  writeHead(w, m);
  w.varint(list.length);
  for (const u of list) w.bytes(encodeUpdate(u));
  return w.done();
}

function readUpdate(r: Reader): Update | null {
  const kind = String.fromCharCode(r.u8());
  const id = r.str();
  const inc = r.varint();
  let u: unknown;
  switch (kind) {
    case 'a': {
      const addr = r.str();
      const port = r.u16();
      const n = r.varint();
      if (n > MAX_META_BYTES) return null;
      let meta: unknown;
      try {
        meta = JSON.parse(r.bytes(n).toString('utf8'));
      } catch {
        return null;
      }
      u = ['a', id, inc, addr, port, meta];
      break;
    }
    case 's':
    case 'd':
      u = [kind, id, inc, r.str()];
      break;
    case 'l':
      u = ['l', id, inc];
      break;
    default:
      return null;
  }
  return isValidUpdate(u) ? u : null;
}

function readHead(r: Reader): Record<string, unknown> | null {
  const t = String.fromCharCode(r.u8());
  switch (t) {
    case 'p':
      return { t, s: r.varint(), f: r.str(), n: r.str() };
    case 'a':
    case 'n':
    case 'y':
    case 'Y':
      return { t, s: r.varint(), f: r.str() };
    case 'r':
      return { t, s: r.varint(), f: r.str(), n: r.str(), h: r.str(), o: r.u16() };
    case 'g':
      return { t, f: r.str() };
    default:
      return null;
  }
}

function validHead(o: Record<string, unknown>): boolean {
  if (!isId(o.f)) return false;
  if (o.t !== 'g' && !isSeq(o.s)) return false;
  if ((o.t === 'p' || o.t === 'r') && !isId(o.n)) return false;
  return o.t !== 'r' || (isId(o.h) && isPort(o.o));
}

/** Parses and validates one payload; null when anything is off (the whole datagram is dropped). */
export function decodeMessage(payload: Buffer): GossipMessage | null {
  try {
    const r = new Reader(payload);
    const head = readHead(r);
    if (!head || !validHead(head)) return null;
    const count = r.varint();
    if (count > MAX_UPDATES) return null;
    const list: Update[] = [];
    for (let i = 0; i < count; i++) {
      const u = readUpdate(r);
      if (!u) return null;
      list.push(u);
    }
    if (r.left !== 0) return null;
    if (list.length > 0) head[head.t === 'y' || head.t === 'Y' ? 'm' : 'u'] = list;
    return head as GossipMessage;
  } catch (err) {
    if (err instanceof ReadError) return null; // counted as 'malformed' by the caller
    throw err;
  }
}

/**
 * Encodes `base` and appends as many pre-encoded updates as fit the payload
 * budget, greedily in order, skipping any that do not fit. Returns the
 * payload and the indices of the updates that went in, or null when even
 * `base` alone does not fit.
 */
export function encodeWithUpdates(
  base: MessageHead,
  items: readonly { bin: Buffer; bytes: number }[],
  budget = MAX_PAYLOAD_BYTES,
): { payload: Buffer; taken: number[] } | null {
  const w = new Writer();
  writeHead(w, base);
  const COUNT_BYTES = 2; // a varint of at most MAX_UPDATES
  let used = w.length + COUNT_BYTES;
  if (used > budget) return null;
  const taken: number[] = [];
  for (let i = 0; i < items.length && used < budget && taken.length < MAX_UPDATES; i++) {
    const it = items[i]!;
    if (used + it.bytes > budget) continue;
    used += it.bytes;
    taken.push(i);
  }
  w.varint(taken.length);
  for (const i of taken) w.bytes(items[i]!.bin);
  return { payload: w.done(), taken };
}
