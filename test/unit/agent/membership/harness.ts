import { seededRandom } from '../../../../agent/membership/clock.js';
import { createMembership, type Membership } from '../../../../agent/membership/membership.js';
import { DEFAULT_SIM_CONFIG } from '../../../../agent/membership/sim/cluster.js';
import { VirtualClock } from '../../../../agent/membership/sim/virtual-clock.js';
import type { MemberEvent, MembershipLog, PeerAddress, Transport } from '../../../../agent/membership/types.js';
import { decodeMessage, deriveGossipKeys, encodeMessage, open, seal, type GossipMessage } from '../../../../shared/wire/gossip.js';

export const KEY = 'unit-test-cluster-key-0123456789abcdef';
export const keys = deriveGossipKeys(KEY);
export const silent: MembershipLog = { debug() {}, info() {}, warn() {}, error() {} };

export const addrOf = (id: string): PeerAddress => ({ addr: `10.0.0.${id.slice(1)}`, port: 7070 });

export interface Sent {
  at: number;
  to: PeerAddress;
  bytes: number;
  /** Before compression: what the payload budget limits. */
  payloadBytes: number;
  msg: GossipMessage;
}

/** Records every datagram the node under test sends; `respond` may answer some. */
export class CaptureTransport implements Transport {
  handler: ((data: Uint8Array, from: PeerAddress) => void) | null = null;
  readonly sent: Sent[] = [];
  respond: ((s: Sent) => void) | null = null;
  constructor(private readonly clock: VirtualClock) {}
  send(to: PeerAddress, data: Uint8Array): void {
    const o = open(keys, data);
    if (!o.ok) throw new Error(`node under test sent an unreadable datagram: ${o.reason}`);
    const msg = decodeMessage(o.payload);
    if (!msg) throw new Error(`node under test sent an invalid message: ${o.payload.toString('hex')}`);
    const s = { at: this.clock.now(), to, bytes: data.length, payloadBytes: o.payload.length, msg };
    this.sent.push(s);
    this.respond?.(s);
  }
  onMessage(h: (data: Uint8Array, from: PeerAddress) => void): void {
    this.handler = h;
  }
}

export interface Harness {
  clock: VirtualClock;
  transport: CaptureTransport;
  m: Membership;
  events: MemberEvent[];
  /** Delivers an authentic message from `fromId` after `delayMs` (0: now). */
  deliver(fromId: string, msg: Record<string, unknown>, delayMs?: number): void;
  deliverRaw(data: Uint8Array, from?: PeerAddress): void;
  sentOf(t: GossipMessage['t']): Sent[];
}

export function harness(peers: string[], opts: { start?: boolean; log?: MembershipLog } = {}): Harness {
  const clock = new VirtualClock();
  const transport = new CaptureTransport(clock);
  const m = createMembership({
    config: { ...DEFAULT_SIM_CONFIG },
    clusterKey: KEY,
    self: { id: 'n0', addr: '10.0.0.0', port: 7070, meta: { role: 'worker' } },
    transport,
    clock,
    random: seededRandom(42),
    log: opts.log ?? silent,
    tuning: { pushPullIntervalMs: 1e9 },
  });
  const events: MemberEvent[] = [];
  m.on('change', (ev) => events.push(ev));
  m.installSnapshot(peers.map((id) => ({ id, ...addrOf(id), incarnation: 0, state: 'alive' as const, meta: { role: 'worker' } })));
  if (opts.start !== false) m.start();
  const deliverRaw = (data: Uint8Array, from: PeerAddress = addrOf('n1')) => transport.handler!(data, from);
  return {
    clock,
    transport,
    m,
    events,
    deliverRaw,
    deliver(fromId, msg, delayMs = 0) {
      const data = seal(keys, encodeMessage({ f: fromId, ...msg } as GossipMessage))!;
      if (delayMs === 0) deliverRaw(data, addrOf(fromId));
      else clock.setTimeout(() => deliverRaw(data, addrOf(fromId)), delayMs);
    },
    sentOf: (t) => transport.sent.filter((s) => s.msg.t === t),
  };
}

/** Answers pings addressed to `alive` members with an ack after 2 ms. */
export function ackPings(h: Harness, alive: (id: string) => boolean): void {
  h.transport.respond = (s) => {
    if (s.msg.t === 'p' && alive(s.msg.n)) h.deliver(s.msg.n, { t: 'a', s: s.msg.s }, 2);
  };
}
