import type { HealthDocument } from '../health/aggregate.js';
import type { HealthStatus } from '../health/types.js';
import type { HostSnapshot } from '../host/types.js';
import type { StorageKind } from '../host/storage.js';
import { metaBytes } from '../../shared/wire/gossip.js';

/**
 * The live facts a member publishes about itself, next to the metadata the
 * membership already carries (hostname, role, swarmNodeId, diskBps,
 * undervoltage, tempC). They travel in the same sealed gossip datagrams, as
 * one compact array under the meta key `x`, so they must fit what is left of
 * MAX_META_BYTES (256) after the rest of the metadata; `fitFacts` shortens
 * the model name and then the list of check names until they do.
 */
export interface NodeFacts {
  /** Publication counter: bumps every publish period, so a receiver can date the figures. */
  seq: number;
  version: string | null;
  health: HealthStatus | null;
  /** Checks that do not pass, failing ones first; "+N" when N more did not fit. */
  checks: string[];
  cpuPct: number | null;
  memPct: number | null;
  load1: number | null;
  /** The firmware says the SoC is throttled, capped or under-voltage right now (Pi only). */
  throttledNow: boolean | null;
  rootFreePct: number | null;
  uptimeS: number | null;
  arch: string | null;
  model: string | null;
  /** Raspberry Pi revision code (hex, agent/host/rpi-revision.ts); '' when known not to be a Pi. */
  rev: string | null;
  /** MemTotal, MiB. */
  memMb: number | null;
  /** The kind of the disk behind / (agent/host/storage.ts). */
  storage: StorageKind | null;
}

/** The position of each fact in the published `x` array (kept short for the datagram). */
const ORDER = ['seq', 'version', 'health', 'checks', 'cpuPct', 'memPct', 'load1', 'throttledNow', 'rootFreePct', 'uptimeS', 'arch', 'model', 'hw', 'memMb'] as const;

/**
 * `hw`: the revision code and the storage kind in one string, the kind as its
 * last letter, '?' for either when unknown: "d04170n" (a Pi 5 booting from
 * NVMe), "o" (not a Pi, other disk), "?s". The largest metadata has a few
 * bytes to spare, not more (test/unit/agent/labels/facts-encoding.test.ts).
 */
const STORAGE_CODE: Record<StorageKind, string> = { sd: 's', emmc: 'e', usb: 'u', nvme: 'n', other: 'o' };
const STORAGE_OF = new Map(Object.entries(STORAGE_CODE).map(([k, v]) => [v, k as StorageKind]));

function encodeHw(rev: string | null, storage: StorageKind | null): string | null {
  if (rev === null && storage === null) return null;
  return `${rev ?? '?'}${storage === null ? '?' : STORAGE_CODE[storage]}`;
}

function decodeHw(v: unknown): { rev: string | null; storage: StorageKind | null } {
  const none = { rev: null, storage: null };
  if (typeof v !== 'string' || v.length < 1 || v.length > 9) return none;
  const last = v.slice(-1);
  const storage = last === '?' ? null : STORAGE_OF.get(last);
  const head = v.slice(0, -1);
  if (storage === undefined || (head !== '?' && !/^[0-9a-f]{0,8}$/.test(head))) return none;
  return { rev: head === '?' ? null : head, storage };
}
const HEALTH: Record<string, HealthStatus> = { p: 'pass', w: 'warn', f: 'fail' };

export const META_FACTS_KEY = 'x';

const round = (v: number, digits = 0): number => {
  const f = 10 ** digits;
  return Math.round(v * f) / f;
};
const pct = (part: number, whole: number): number | null => (whole > 0 ? round((part / whole) * 100) : null);

export interface FactsInput {
  seq: number;
  version: string;
  health: HealthDocument | null;
  snapshot: HostSnapshot | null;
  cpuPct: number | null;
  uptimeS: number;
  arch: string;
  model: string | null;
  /** Read once from the host (agent/host/hardware.ts); absent: unknown. */
  hardware?: { rev: string | null; storage: StorageKind | null };
}

/** Names of the checks that do not pass, failing ones first, each once. */
export function troubledChecks(doc: HealthDocument | null): string[] {
  if (!doc) return [];
  const fail: string[] = [];
  const warn: string[] = [];
  for (const [name, results] of Object.entries(doc.checks)) {
    if (results.some((r) => r.status === 'fail')) fail.push(name);
    else if (results.some((r) => r.status === 'warn')) warn.push(name);
  }
  return [...fail.sort(), ...warn.sort()];
}

/** Pure: this node's facts from what the agent already samples. */
export function factsFrom(i: FactsInput): NodeFacts {
  const s = i.snapshot;
  const mem = s?.memory;
  const used = mem ? mem.totalBytes - (mem.availableBytes ?? mem.freeBytes) : null;
  const t = s?.throttling?.now;
  return {
    seq: i.seq,
    version: i.version,
    health: i.health?.status ?? null,
    checks: troubledChecks(i.health),
    cpuPct: i.cpuPct === null ? null : round(i.cpuPct),
    memPct: mem && used !== null ? pct(used, mem.totalBytes) : null,
    load1: s?.load ? round(s.load.load1, 2) : null,
    throttledNow: t ? Object.values(t).some(Boolean) : null,
    rootFreePct: s?.rootFs ? pct(s.rootFs.availBytes, s.rootFs.sizeBytes) : null,
    uptimeS: Math.round(i.uptimeS),
    arch: i.arch,
    model: i.model,
    rev: i.hardware?.rev ?? null,
    memMb: mem ? Math.round(mem.totalBytes / 2 ** 20) : null,
    storage: i.hardware?.storage ?? null,
  };
}

/** Only equality matters to a receiver, so the counter wraps to stay short. */
export const SEQ_WRAP = 10_000;

function encode(f: NodeFacts): unknown[] {
  const out = ORDER.map((k) => {
    if (k === 'hw') return encodeHw(f.rev, f.storage);
    const v = f[k];
    if (k === 'seq') return (v as number) % SEQ_WRAP;
    if (k === 'health') return v === null ? null : String(v)[0];
    if (k === 'throttledNow') return v === null ? null : v ? 1 : 0;
    return v;
  });
  while (out.length > 0 && out.at(-1) === null) out.pop(); // a missing tail reads as null
  return out;
}

const shortModel = (m: string): string => m.replace(/^Raspberry Pi /, 'Pi ').replace(/ Model /, ' ').replace(/ Rev /, ' r').slice(0, 24);

/**
 * The `x` entry for the metadata, made to fit `budget` bytes (what the rest of
 * the metadata leaves of MAX_META_BYTES): first the model name is shortened,
 * then check names are dropped from the end (replaced by "+N"), then the model,
 * then the total memory of a Pi (its revision code says how much it has), then
 * the other hardware facts, then the architecture. Dropped facts read as
 * unknown, which never changes a node label (agent/labels). Null when not
 * even the figures fit.
 */
export function fitFacts(f: NodeFacts, budget: number): { [META_FACTS_KEY]: unknown[] } | null {
  const size = (x: NodeFacts) => metaBytes({ [META_FACTS_KEY]: encode(x) }) - 2; // the braces are the base's
  let cur = f;
  if (size(cur) <= budget) return { [META_FACTS_KEY]: encode(cur) };
  if (cur.model) cur = { ...cur, model: shortModel(cur.model) };
  const names = f.checks.filter((c) => !c.startsWith('+'));
  for (let keep = names.length; size(cur) > budget && keep > 0; ) {
    keep--;
    cur = { ...cur, checks: [...names.slice(0, keep), `+${names.length - keep}`] };
  }
  if (size(cur) > budget) cur = { ...cur, model: null };
  if (size(cur) > budget && cur.rev) cur = { ...cur, memMb: null };
  if (size(cur) > budget) cur = { ...cur, rev: null, memMb: null, storage: null };
  if (size(cur) > budget) cur = { ...cur, arch: null };
  return size(cur) <= budget ? { [META_FACTS_KEY]: encode(cur) } : null;
}

const num = (v: unknown): number | null => (typeof v === 'number' && Number.isFinite(v) ? v : null);
const str = (v: unknown, max = 64): string | null => (typeof v === 'string' && v.length <= max ? v : null);
const positive = (v: unknown): number | null => (typeof v === 'number' && Number.isFinite(v) && v > 0 ? v : null);

/** Pure and total: whatever a peer published (or nothing) -> facts, unknown or malformed parts null. */
export function readFacts(meta: Readonly<Record<string, unknown>>): NodeFacts | null {
  const x = meta[META_FACTS_KEY];
  if (!Array.isArray(x)) return null;
  const at = (k: (typeof ORDER)[number]) => x[ORDER.indexOf(k)];
  const checks = at('checks');
  const t = at('throttledNow');
  return {
    seq: num(at('seq')) ?? 0,
    version: str(at('version'), 32),
    health: HEALTH[String(at('health'))] ?? null,
    checks: Array.isArray(checks) ? checks.filter((c): c is string => typeof c === 'string' && c.length <= 64).slice(0, 16) : [],
    cpuPct: num(at('cpuPct')),
    memPct: num(at('memPct')),
    load1: num(at('load1')),
    throttledNow: t === 1 ? true : t === 0 ? false : null,
    rootFreePct: num(at('rootFreePct')),
    uptimeS: num(at('uptimeS')),
    arch: str(at('arch'), 16),
    model: str(at('model')),
    // Peers older than these publish a shorter array: null, unknown.
    ...decodeHw(at('hw')),
    memMb: positive(at('memMb')),
  };
}
