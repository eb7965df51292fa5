import { EventEmitter } from 'node:events';
import type { Config } from '../../shared/config-schema.js';
import { PiswarmError } from '../../shared/errors.js';
import { MAX_META_BYTES, deriveGossipKeys, isValidId, metaBytes, type GossipKeys } from '../../shared/wire/gossip.js';
import { DEFAULT_OPTIONS, GossipCore, type JoinResult } from './core.js';
import type {
  Clock,
  Member,
  MemberEvent,
  MemberEventType,
  MembershipLog,
  MembershipOptions,
  MembershipStats,
  Meta,
  PeerAddress,
  Random,
  Transport,
} from './types.js';

/** The `membership` section with its port resolved (see membershipPort). */
export type MembershipConfig = Config['membership'] & { port: number };

/** Gossip runs on the agent's own port number, over UDP, unless configured apart. */
export function membershipPort(config: Pick<Config, 'membership' | 'http'>): number {
  return config.membership.port ?? config.http.port;
}

export interface CreateMembershipArgs {
  /** The `membership` section of the config. */
  config: MembershipConfig;
  /** The key the cluster shares, or what the agent already derived from it (agent/identity/context.ts). */
  clusterKey?: string | Uint8Array;
  keys?: GossipKeys;
  self: { id: string; addr: string; port: number; meta?: Meta };
  transport: Transport;
  clock: Clock;
  random: Random;
  log: MembershipLog;
  /** Protocol knobs that are not in the config (tests and the simulator). */
  tuning?: Partial<Pick<MembershipOptions, 'pushPullIntervalMs' | 'gossipToTheDeadMs' | 'deadRetainMs' | 'awarenessMaxMultiplier' | 'joinTimeoutMs' | 'leaveTimeoutMs'>>;
}

export interface JoinOutcome extends JoinResult {
  /** Seeds that could not be parsed (logged, skipped). */
  invalid: string[];
}

export type MembershipListener<E> = E extends 'rtt' ? (ms: number) => void : (ev: MemberEvent) => void;

export interface Membership {
  /** Starts probing and gossiping. Idempotent. */
  start(): void;
  /** Push/pull state with seeds ("host", "host:port", "[v6]:port" or {addr, port}); default port = config.port. */
  join(seeds: readonly (string | PeerAddress)[]): Promise<JoinOutcome>;
  /** Broadcasts `left`; resolves when sent enough times or after a deadline. Call before stop(). */
  leave(): Promise<void>;
  /** Stops timers. Does not close the transport. */
  stop(): void;
  /** Everyone known, self included (self: true), dead and left members until they are reaped. */
  members(): Member[];
  member(id: string): Member | undefined;
  /** Replaces own metadata and bumps the incarnation so it spreads; throws PISWARM_ERR_GOSSIP_META_TOO_LARGE. */
  updateMeta(meta: Meta): void;
  /** 'change' receives every member event; 'rtt' receives direct probe round-trip times in ms. Returns an unsubscribe. */
  on<E extends MemberEventType | 'change' | 'rtt'>(event: E, fn: MembershipListener<E>): () => void;
  stats(): MembershipStats;
  /** Starts from a known member list without gossip (simulation, persisted state). */
  installSnapshot(list: readonly Omit<Member, 'self' | 'stateChangedAt'>[]): void;
}

const ADDR_RE = /^[A-Za-z0-9._:%-]{1,64}$/;

/** "host", "host:port", "[v6]:port" -> PeerAddress; null when unusable. */
export function parseSeed(seed: string | PeerAddress, defaultPort: number): PeerAddress | null {
  if (typeof seed !== 'string') {
    return ADDR_RE.test(seed.addr) && Number.isInteger(seed.port) && seed.port >= 1 && seed.port <= 65535 ? seed : null;
  }
  let host = seed.trim();
  let port = defaultPort;
  const v6 = /^\[([^\]]+)\](?::(\d+))?$/.exec(host);
  if (v6) {
    host = v6[1]!;
    if (v6[2] !== undefined) port = Number(v6[2]);
  } else if (host.split(':').length === 2) {
    const [h, p] = host.split(':') as [string, string];
    if (!/^\d+$/.test(p)) return null;
    host = h;
    port = Number(p);
  }
  if (!ADDR_RE.test(host) || !Number.isInteger(port) || port < 1 || port > 65535) return null;
  return { addr: host, port };
}

function gossipKeysOf(args: Pick<CreateMembershipArgs, 'clusterKey' | 'keys'>): GossipKeys {
  if (args.keys) return args.keys;
  if (args.clusterKey === undefined) throw new PiswarmError('PISWARM_ERR_CONFIG_INVALID', 'membership needs the cluster key or the keys derived from it');
  return deriveGossipKeys(args.clusterKey);
}

function checkMeta(meta: Meta): void {
  if (typeof meta !== 'object' || meta === null || Array.isArray(meta)) {
    throw new PiswarmError('PISWARM_ERR_GOSSIP_META_TOO_LARGE', 'member metadata must be a plain JSON object');
  }
  let bytes: number;
  try {
    bytes = metaBytes(meta);
  } catch (cause) {
    throw new PiswarmError('PISWARM_ERR_GOSSIP_META_TOO_LARGE', 'member metadata is not JSON-serialisable', { cause });
  }
  if (bytes > MAX_META_BYTES) {
    throw new PiswarmError('PISWARM_ERR_GOSSIP_META_TOO_LARGE', undefined, { details: { bytes, max: MAX_META_BYTES } });
  }
}

/**
 * The membership the agent uses. Throws PiswarmError (PISWARM_ERR_CONFIG_INVALID,
 * PISWARM_ERR_GOSSIP_BAD_ADDRESS, PISWARM_ERR_GOSSIP_META_TOO_LARGE) on bad arguments;
 * after that nothing a peer sends can make it throw.
 */
export function createMembership(args: CreateMembershipArgs): Membership {
  const { config, self, log } = args;
  if (config.probeTimeoutMs >= config.probeIntervalMs) {
    throw new PiswarmError('PISWARM_ERR_CONFIG_INVALID', 'membership.probeTimeoutMs must be below membership.probeIntervalMs', {
      details: { probeTimeoutMs: config.probeTimeoutMs, probeIntervalMs: config.probeIntervalMs },
    });
  }
  if (!isValidId(self.id)) {
    throw new PiswarmError('PISWARM_ERR_GOSSIP_BAD_ADDRESS', 'node id must be 1-64 characters of [A-Za-z0-9._:%-]', { details: { id: self.id } });
  }
  if (!parseSeed({ addr: self.addr, port: self.port }, self.port)) {
    throw new PiswarmError('PISWARM_ERR_GOSSIP_BAD_ADDRESS', 'advertised gossip address or port is invalid', { details: { addr: self.addr, port: self.port } });
  }
  const meta = self.meta ?? {};
  checkMeta(meta);

  const options: MembershipOptions = {
    ...DEFAULT_OPTIONS,
    probeIntervalMs: config.probeIntervalMs,
    probeTimeoutMs: config.probeTimeoutMs,
    indirectChecks: config.indirectChecks,
    suspicionMult: config.suspicionMult,
    suspicionMaxTimeoutMult: config.suspicionMaxTimeoutMult,
    gossipNodes: config.gossipNodes,
    gossipIntervalMs: config.gossipIntervalMs,
    retransmitMult: config.retransmitMult,
    ...args.tuning,
  };
  const events = new EventEmitter();
  const deliver = (name: string, value: unknown) => {
    try {
      events.emit(name, value);
    } catch (err) {
      // A listener's bug must not corrupt the protocol state machine that called us.
      log.error({ err, event: name }, 'membership listener threw');
    }
  };
  const core = new GossipCore({
    options,
    keys: gossipKeysOf(args),
    self: { id: self.id, addr: self.addr, port: self.port, meta },
    transport: args.transport,
    clock: args.clock,
    random: args.random,
    log,
    emit: (ev) => {
      deliver(ev.type, ev);
      deliver('change', ev);
    },
    onRtt: (ms) => {
      if (events.listenerCount('rtt') > 0) deliver('rtt', ms);
    },
  });

  return {
    start: () => core.start(),
    async join(seeds) {
      const invalid: string[] = [];
      const addrs: PeerAddress[] = [];
      for (const s of seeds) {
        const a = parseSeed(s, config.port);
        if (a) addrs.push(a);
        else invalid.push(typeof s === 'string' ? s : `${String(s.addr)}:${String(s.port)}`);
      }
      if (invalid.length > 0) log.warn({ seeds: invalid, code: 'PISWARM_ERR_GOSSIP_BAD_ADDRESS' }, 'ignoring invalid gossip seeds');
      const r = await core.join(addrs);
      return { ...r, invalid };
    },
    leave: () => core.leave(),
    stop: () => core.stop(),
    members: () => core.list(),
    member: (id) => core.member(id),
    updateMeta(m) {
      checkMeta(m);
      core.updateMeta(m);
    },
    on(event, fn) {
      events.on(event, fn as (...a: unknown[]) => void);
      return () => events.off(event, fn as (...a: unknown[]) => void);
    },
    stats: () => core.stats(),
    installSnapshot: (list) => core.installSnapshot(list),
  };
}
