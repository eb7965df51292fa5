import { ADVERT_DROP_REASONS, verifyAdvert, type Advert, type AdvertDropReason, type AdvertRole } from './advert.js';
import type { ClusterKeys } from '../identity/keys.js';

/**
 * Discovery produces candidates: addresses where a peer of this cluster may
 * answer. A candidate is never a peer until the formation controller has
 * confirmed it over authenticated HTTP.
 */
export interface Candidate {
  /** nodeId for adverts, `seed:host:port` for static seeds. */
  key: string;
  nodeId: string | null;
  addr: string;
  port: number;
  /** inbound: a caller that proved the key by saying hello to us first. */
  source: 'mdns' | 'seed' | 'inbound';
  advert: Advert | null;
  seenAt: number;
}

export interface ForeignSighting {
  clusterId: string;
  addr: string;
  lastSeen: number;
}

export interface LocalAdvert {
  addr: string;
  port: number;
  role: AdvertRole;
  swarmId: string | null;
}

/** What went wrong on the mDNS socket: `bind`, UDP 5353 could not be bound; `send`, a packet could not be sent. */
export type MdnsErrorKind = 'bind' | 'send';
export const MDNS_ERROR_KINDS: readonly MdnsErrorKind[] = ['bind', 'send'];

export interface MdnsSocketState {
  errors: Record<MdnsErrorKind, number>;
  /** Set while the port cannot be bound (the errno code, the port, since when); null once it is. */
  unbound: { code: string; port: number; since: number } | null;
}

/** What to do when another program holds UDP 5353: piswarm doctor and /health say the same. */
export const MDNS_PORT_FIX =
  'Stop the other mDNS responder (Raspberry Pi OS: "sudo systemctl disable --now avahi-daemon.socket avahi-daemon.service"), or set discovery.mdns=false and list the other nodes in discovery.seeds.';

/** How many foreign-cluster sightings /health and /v1/formation show at most (anyone on the LAN can make one). */
export const FOREIGN_SHOWN = 8;

export interface Discovery {
  /** Publishes (or republishes, on change) this node's signed advert. */
  publish(advert: LocalAdvert): void;
  candidates(): Candidate[];
  dropped(): Record<AdvertDropReason, number>;
  foreign(): ForeignSighting[];
  /** The mDNS socket's trouble, where there is a socket. */
  socket?(): MdnsSocketState;
  stop(): Promise<void>;
}

/**
 * Pure bookkeeping of received adverts: verification, drop counters,
 * foreign-cluster sightings and expiry. The mDNS adapter feeds it; tests
 * feed it directly.
 */
export class AdvertBook {
  private readonly byNode = new Map<string, Candidate>();
  private readonly drops = Object.fromEntries(ADVERT_DROP_REASONS.map((r) => [r, 0])) as Record<AdvertDropReason, number>;
  private readonly foreignSeen = new Map<string, ForeignSighting>();

  constructor(
    private readonly keys: ClusterKeys,
    private readonly selfNodeId: string,
    private readonly maxAgeMs: number,
  ) {}

  /** `referer` is the source address of the packet, used only to report foreign clusters. */
  ingest(txt: unknown, referer: string, now: number): { ok: true; candidate: Candidate } | { ok: false; reason: AdvertDropReason } {
    const v = verifyAdvert(this.keys, txt, now, { maxAgeMs: this.maxAgeMs, selfNodeId: this.selfNodeId });
    if (!v.ok) {
      if (v.reason !== 'self') this.drops[v.reason]++;
      if (v.reason === 'wrong_cluster') {
        const id = v.clusterId ?? '?';
        this.foreignSeen.set(`${id}@${referer}`, { clusterId: id, addr: referer, lastSeen: now });
        if (this.foreignSeen.size > 64) this.foreignSeen.delete(this.foreignSeen.keys().next().value!);
      }
      return { ok: false, reason: v.reason };
    }
    const prev = this.byNode.get(v.advert.nodeId);
    // An older sequence after a newer one is a replayed capture or a reordered packet.
    if (prev?.advert && prev.advert.ts > v.advert.ts) {
      this.drops.stale++;
      return { ok: false, reason: 'stale' };
    }
    // The address comes from the signed TXT, never from A records: those are
    // published for every interface, docker0 and veths included.
    const c: Candidate = { key: v.advert.nodeId, nodeId: v.advert.nodeId, addr: v.advert.addr, port: v.advert.port, source: 'mdns', advert: v.advert, seenAt: now };
    this.byNode.set(c.key, c);
    return { ok: true, candidate: c };
  }

  forget(nodeId: string): void {
    this.byNode.delete(nodeId);
  }

  candidates(now: number): Candidate[] {
    for (const [k, c] of this.byNode) if (c.advert && Math.abs(now - c.advert.ts) > this.maxAgeMs) this.byNode.delete(k);
    return [...this.byNode.values()];
  }

  dropped(): Record<AdvertDropReason, number> {
    return { ...this.drops };
  }

  /** The most recent sightings (at most FOREIGN_SHOWN) within the window. */
  foreign(now: number, windowMs: number): ForeignSighting[] {
    return [...this.foreignSeen.values()].filter((f) => now - f.lastSeen <= windowMs).sort((a, b) => b.lastSeen - a.lastSeen).slice(0, FOREIGN_SHOWN);
  }
}

/** Parses `host` or `host:port` (IPv6 as `[addr]:port`) seeds. */
export function parseSeed(seed: string, defaultPort: number): { addr: string; port: number } | null {
  const s = seed.trim();
  const v6 = /^\[([^\]]+)\](?::(\d+))?$/.exec(s);
  if (v6) return { addr: v6[1]!, port: v6[2] ? Number(v6[2]) : defaultPort };
  const parts = s.split(':');
  if (parts.length === 1 && parts[0]) return { addr: parts[0], port: defaultPort };
  if (parts.length === 2 && parts[0] && /^\d+$/.test(parts[1]!)) {
    const port = Number(parts[1]);
    return port >= 1 && port <= 65535 ? { addr: parts[0], port } : null;
  }
  return null;
}

export function seedCandidates(seeds: readonly string[], defaultPort: number, now: number): Candidate[] {
  const out: Candidate[] = [];
  for (const s of seeds) {
    const p = parseSeed(s, defaultPort);
    if (p) out.push({ key: `seed:${p.addr}:${p.port}`, nodeId: null, addr: p.addr, port: p.port, source: 'seed', advert: null, seenAt: now });
  }
  return out;
}
