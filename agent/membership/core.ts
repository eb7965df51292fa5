/**
 * Gossip membership core: SWIM (Das, Gupta, Motivala 2002) with the Lifeguard
 * extensions (Dadgar et al. 2018), modelled on hashicorp/memberlist.
 *
 * Defaults (memberlist DefaultLANConfig unless noted; config section `membership`):
 *
 *   port                     7070/udp  same number as the HTTP API; NOT 7946, which dockerd's own memberlist uses
 *   probeIntervalMs          1000      one probe of one member per period, round-robin over a shuffled list
 *   probeTimeoutMs            500      direct ack deadline before indirect probes start (a Pi LAN RTT is ~1 ms)
 *   indirectChecks              3      members asked to ping-req the target
 *   suspicionMult               4      min suspicion = 4 * max(1, log10(n)) * probeInterval (n=20: 5.2 s)
 *   suspicionMaxTimeoutMult     6      max suspicion = 6 * min; shrinks toward min as independent
 *                                      confirmations arrive (k = suspicionMult - 2 expected)
 *   gossipNodes                 3      fan-out of each gossip round
 *   gossipIntervalMs          200      gossip round period (only when something is queued)
 *   retransmitMult              5      each update is sent 5 * ceil(log10(n + 1)) times. memberlist uses 4;
 *                                      simulated (N=20 and 50, 1% loss, 1500 updates each) 4 left 0.5% of
 *                                      updates missing some member after 2 s, 5 left 0.13%; such a miss is
 *                                      repaired by the next push/pull. The extra cost is only paid on changes

 *   pushPullIntervalMs      30000      full-state exchange with one random member (UDP, chunked), scaled
 *                                      by ceil(log2(n) - log2(32)) + 1 above 32 members
 *   gossipToTheDeadMs       30000      dead members still receive gossip (so a wrong verdict is refuted)
 *   (reconnect)                        each push/pull round also sends our state to one random dead member
 *                                      (Serf's reconnect), so halves of a healed partition merge again
 *   deadRetainMs           600000      dead/left members stay listed 10 min (memberlist reaps after 30 s;
 *                                      the swarm pruner wants to see them, and a restarted node learns
 *                                      its own death certificate and refutes it)
 *   awarenessMaxMultiplier      8      Lifeguard local health: probe interval and timeout are scaled by
 *                                      score + 1; +1 per missed nack on a failed probe (+1 per failed probe
 *                                      when no nacks are expected), +1 per refutation, -1 per acked probe
 *   datagram budget          1400 B   header 12 + binary payload + HMAC-SHA256-128 16; piggyback fills the rest
 *   limits                             node id and address: 1-64 chars of [A-Za-z0-9._:%-]; meta: a JSON
 *                                      object of at most 256 bytes (MAX_META_BYTES)
 *
 * The core is pure: transport, clock and random are injected, so the simulator
 * (agent/membership/sim/) runs a thousand of these in one process, deterministically.
 */
import {
  type GossipKeys,
  type GossipMessage,
  type Update,
  type DropReason,
  GOSSIP_WIRE_VERSION,
  decodeMessage,
  encodeMessage,
  encodeUpdate,
  encodeWithUpdates,
  type MessageHead,
  open,
  seal,
} from '../../shared/wire/gossip.js';
import type {
  Clock,
  Member,
  MemberEvent,
  MemberEventType,
  MemberState,
  MembershipLog,
  MembershipOptions,
  MembershipStats,
  Meta,
  PeerAddress,
  Random,
  TimerHandle,
  Transport,
} from './types.js';

export const DEFAULT_OPTIONS: Readonly<MembershipOptions> = Object.freeze({
  probeIntervalMs: 1000,
  probeTimeoutMs: 500,
  indirectChecks: 3,
  suspicionMult: 4,
  suspicionMaxTimeoutMult: 6,
  gossipNodes: 3,
  gossipIntervalMs: 200,
  retransmitMult: 5,
  pushPullIntervalMs: 30_000,
  gossipToTheDeadMs: 30_000,
  deadRetainMs: 600_000,
  awarenessMaxMultiplier: 8,
  joinTimeoutMs: 3000,
  leaveTimeoutMs: 3000,
});

const RTT_RECENT = 64;
const SYNC_REPLY_GAP_MS = 1000;

interface MemberRec {
  id: string;
  addr: string;
  port: number;
  incarnation: number;
  state: MemberState;
  meta: Meta;
  metaJson: string;
  stateChangedAt: number;
}

interface Encoded {
  bin: Buffer;
  bytes: number;
}

function encoded(u: Update): Encoded {
  const bin = encodeUpdate(u);
  return { bin, bytes: bin.length };
}

/** memberlist's suspicionTimeout: mult * max(1, log10(max(1, n))) * interval. */
export function suspicionTimeout(mult: number, n: number, intervalMs: number): number {
  const nodeScale = Math.max(1, Math.log10(Math.max(1, n)));
  return Math.floor(mult * nodeScale * intervalMs);
}

/** memberlist's retransmitLimit: mult * ceil(log10(n + 1)). */
export function retransmitLimit(mult: number, n: number): number {
  return mult * Math.ceil(Math.log10(n + 1));
}

/** Lifeguard: the suspicion deadline after c of k expected confirmations, never below min. */
export function suspicionDeadline(c: number, k: number, minMs: number, maxMs: number): number {
  if (k < 1) return minMs;
  const frac = Math.log(c + 1) / Math.log(k + 1);
  const raw = Math.floor(maxMs - frac * (maxMs - minMs));
  return Math.max(minMs, raw);
}

class Suspicion {
  private readonly confirmations = new Set<string>();
  private n = 0;
  private timer: TimerHandle;
  constructor(
    private readonly clock: Clock,
    from: string,
    private readonly k: number,
    private readonly minMs: number,
    private readonly maxMs: number,
    private readonly start: number,
    private readonly fire: () => void,
  ) {
    this.confirmations.add(from);
    this.timer = clock.setTimeout(fire, suspicionDeadline(0, k, minMs, maxMs));
  }

  /** True when `from` is a new independent confirmation (worth re-gossiping). */
  confirm(from: string): boolean {
    if (this.n >= this.k || this.confirmations.has(from)) return false;
    this.confirmations.add(from);
    this.n++;
    const remaining = suspicionDeadline(this.n, this.k, this.minMs, this.maxMs) - (this.clock.now() - this.start);
    this.clock.clearTimeout(this.timer);
    this.timer = this.clock.setTimeout(this.fire, Math.max(0, remaining));
    return true;
  }

  cancel(): void {
    this.clock.clearTimeout(this.timer);
  }
}

/** Latest pending update per member, sent fewest-transmits-first (memberlist's TransmitLimitedQueue). */
class BroadcastQueue {
  private readonly entries = new Map<string, { enc: Encoded; transmits: number; order: number }>();
  private order = 0;

  get size(): number {
    return this.entries.size;
  }

  set(memberId: string, u: Update): void {
    this.entries.set(memberId, { enc: encoded(u), transmits: 0, order: this.order++ });
  }

  has(memberId: string): boolean {
    return this.entries.has(memberId);
  }

  /** Picks what fits into `base`; counts a transmit for each and retires those past `limit`. */
  fill(base: MessageHead, limit: number, forced: Encoded | null, count = true): Buffer | null {
    const sorted = [...this.entries.entries()].sort(
      (a, b) => a[1].transmits - b[1].transmits || b[1].order - a[1].order,
    );
    const items: Encoded[] = forced ? [forced] : [];
    for (const [, e] of sorted) items.push(e.enc);
    const out = encodeWithUpdates(base, items);
    if (!out) return null;
    const offset = forced ? 1 : 0;
    if (!count) return out.payload;
    for (const i of out.taken) {
      if (i < offset) continue;
      const [id, e] = sorted[i - offset]!;
      e.transmits++;
      if (e.transmits >= limit) this.entries.delete(id);
    }
    return out.payload;
  }
}

/** Lifeguard's local health awareness. */
class Awareness {
  score = 0;
  constructor(private readonly max: number) {}
  apply(delta: number): void {
    this.score = Math.min(this.max - 1, Math.max(0, this.score + delta));
  }
  scale(ms: number): number {
    return ms * (this.score + 1);
  }
}

type AckHandler = {
  onAck: (from: string) => void;
  onNack: () => void;
};

export interface CoreDeps {
  options: MembershipOptions;
  keys: GossipKeys;
  self: { id: string; addr: string; port: number; meta: Meta };
  transport: Transport;
  clock: Clock;
  random: Random;
  log: MembershipLog;
  emit: (ev: MemberEvent) => void;
  onRtt?: (ms: number) => void;
}

export interface JoinResult {
  contacted: number;
  responded: number;
}

export class GossipCore {
  private readonly o: MembershipOptions;
  private readonly keys: GossipKeys;
  private readonly transport: Transport;
  private readonly clock: Clock;
  private readonly random: Random;
  private readonly log: MembershipLog;
  private readonly emit: (ev: MemberEvent) => void;
  private readonly onRtt: ((ms: number) => void) | undefined;

  private readonly selfRec: MemberRec;
  private readonly members = new Map<string, MemberRec>();
  /** Everyone but self, for O(1) random picks. */
  private others: MemberRec[] = [];
  private probeOrder: string[] = [];
  private probeIndex = 0;
  private readonly suspicions = new Map<string, Suspicion>();
  private readonly queue = new BroadcastQueue();
  private readonly awareness: Awareness;
  private readonly pending = new Map<number, AckHandler>();
  private readonly joins = new Map<number, () => void>();
  /** Settles every join still waiting (stop() must not leave promises hanging). */
  private readonly joinFinishers = new Set<() => void>();
  private seq = 0;
  private liveCache: number | null = null;
  private readonly syncReplies = new Map<string, number>();
  private running = false;
  private leaving = false;
  private probeTimer: TimerHandle | null = null;
  private gossipTimer: TimerHandle | null = null;
  /** The gossip rounds' grid: start's random phase plus whole intervals (see armGossip). */
  private gossipAnchor = 0;
  private lastGossipAt = -Infinity;
  private pushPullTimer: TimerHandle | null = null;
  private readonly inflight = new Set<TimerHandle>();
  private readonly versionWarned = new Set<string>();

  private readonly s: Omit<MembershipStats, 'healthScore' | 'incarnation' | 'members' | 'broadcastQueue'> = {
    probesSent: 0,
    probesFailed: 0,
    acksReceived: 0,
    acksSent: 0,
    nacksSent: 0,
    nacksReceived: 0,
    indirectProbesSent: 0,
    indirectProbesRelayed: 0,
    suspicionsRaised: 0,
    suspicionsReceived: 0,
    refutations: 0,
    deathsDeclared: 0,
    gossipMessagesSent: 0,
    pushPulls: 0,
    reconnectAttempts: 0,
    messagesSent: 0,
    bytesSent: 0,
    messagesReceived: 0,
    bytesReceived: 0,
    dropped: { oversize: 0, truncated: 0, version: 0, wrongCluster: 0, auth: 0, malformed: 0, misdirected: 0, unsendable: 0, rateLimited: 0 },
    rtt: { count: 0, sumMs: 0, recentMs: [] },
  };

  constructor(deps: CoreDeps) {
    this.o = deps.options;
    this.keys = deps.keys;
    this.transport = deps.transport;
    this.clock = deps.clock;
    this.random = deps.random;
    this.log = deps.log;
    this.emit = deps.emit;
    this.onRtt = deps.onRtt;
    this.awareness = new Awareness(this.o.awarenessMaxMultiplier);
    this.selfRec = {
      id: deps.self.id,
      addr: deps.self.addr,
      port: deps.self.port,
      incarnation: 0,
      state: 'alive',
      meta: Object.freeze({ ...deps.self.meta }),
      metaJson: JSON.stringify(deps.self.meta),
      stateChangedAt: this.clock.now(),
    };
    this.members.set(this.selfRec.id, this.selfRec);
    this.transport.onMessage((data, from) => this.receive(data, from));
  }

  // ---------------------------------------------------------------- lifecycle

  start(): void {
    if (this.running) return;
    this.running = true;
    this.leaving = false;
    if (this.selfRec.state !== 'alive') {
      // Back after leave(): a fresh incarnation out-bids our own goodbye.
      this.selfRec.state = 'alive';
      this.selfRec.incarnation++;
      this.liveCache = null;
    }
    this.queue.set(this.selfRec.id, this.aliveUpdate(this.selfRec)); // armed below, on the new phase
    // Random phase so a cluster started at once does not probe in lockstep.
    this.probeTimer = this.clock.setTimeout(() => this.probeTick(), Math.floor(this.random() * this.o.probeIntervalMs));
    this.gossipAnchor = this.clock.now() + Math.floor(this.random() * this.o.gossipIntervalMs);
    this.armGossip();
    this.schedulePushPull(true);
  }

  /** Stops every timer; the transport stays open (its owner closes it). Members are kept. */
  stop(): void {
    this.running = false;
    for (const t of [this.probeTimer, this.gossipTimer, this.pushPullTimer]) if (t !== null) this.clock.clearTimeout(t);
    this.probeTimer = this.gossipTimer = this.pushPullTimer = null;
    for (const t of this.inflight) this.clock.clearTimeout(t);
    this.inflight.clear();
    for (const s of this.suspicions.values()) s.cancel();
    this.suspicions.clear();
    this.pending.clear();
    this.joins.clear();
    for (const finish of [...this.joinFinishers]) finish();
  }

  get isRunning(): boolean {
    return this.running;
  }

  /** Pushes our state to each seed and pulls theirs. Resolves when all answered or joinTimeoutMs passed. */
  join(seeds: readonly PeerAddress[]): Promise<JoinResult> {
    const result: JoinResult = { contacted: 0, responded: 0 };
    if (!this.running || seeds.length === 0) return Promise.resolve(result);
    return new Promise((resolve) => {
      let outstanding = 0;
      const seqs: number[] = [];
      const finish = () => {
        this.joinFinishers.delete(finish);
        for (const s of seqs) this.joins.delete(s);
        if (timer !== null) {
          this.clock.clearTimeout(timer);
          this.inflight.delete(timer);
        }
        resolve(result);
      };
      for (const seed of seeds) {
        if (seed.addr === this.selfRec.addr && seed.port === this.selfRec.port) continue;
        const seq = this.nextSeq();
        seqs.push(seq);
        outstanding++;
        result.contacted++;
        this.joins.set(seq, () => {
          if (!this.joins.delete(seq)) return;
          result.responded++;
          if (--outstanding === 0) finish();
        });
        this.sendState(seed, 'y', seq);
      }
      let timer: TimerHandle | null = null;
      this.joinFinishers.add(finish);
      if (outstanding === 0) return finish();
      timer = this.later(finish, this.o.joinTimeoutMs);
    });
  }

  /** Broadcasts `left` and resolves once it was retransmitted enough or leaveTimeoutMs passed. */
  leave(): Promise<void> {
    if (!this.running || this.leaving) return Promise.resolve();
    this.leaving = true;
    this.selfRec.incarnation++;
    this.selfRec.state = 'left';
    this.liveCache = null;
    this.selfRec.stateChangedAt = this.clock.now();
    this.enqueue(this.selfRec.id, ['l', this.selfRec.id, this.selfRec.incarnation]);
    if (this.probeTimer !== null) this.clock.clearTimeout(this.probeTimer);
    this.probeTimer = null;
    if (this.gossipTimer !== null) this.clock.clearTimeout(this.gossipTimer);
    this.gossipTick(); // do not wait for the next round
    return new Promise((resolve) => {
      const deadline = this.clock.now() + this.o.leaveTimeoutMs;
      const check = () => {
        if (!this.running || !this.queue.has(this.selfRec.id) || this.clock.now() >= deadline) return resolve();
        this.later(check, this.o.gossipIntervalMs);
      };
      this.later(check, this.o.gossipIntervalMs);
    });
  }

  updateMeta(meta: Meta): void {
    this.selfRec.meta = Object.freeze({ ...meta });
    this.selfRec.metaJson = JSON.stringify(meta);
    this.selfRec.incarnation++;
    this.enqueue(this.selfRec.id, this.aliveUpdate(this.selfRec));
  }

  /**
   * Installs a converged member list without gossip or events (simulation
   * start-up, or restoring a persisted list). Entries about self are ignored.
   */
  installSnapshot(list: readonly Omit<Member, 'self' | 'stateChangedAt'>[]): void {
    for (const m of list) {
      if (m.id === this.selfRec.id || this.members.has(m.id)) continue;
      this.addMember({ ...m, meta: Object.freeze({ ...m.meta }), metaJson: JSON.stringify(m.meta), stateChangedAt: this.clock.now() });
    }
  }

  list(): Member[] {
    return [...this.members.values()].map((m) => this.snapshot(m));
  }

  member(id: string): Member | undefined {
    const m = this.members.get(id);
    return m ? this.snapshot(m) : undefined;
  }

  stats(): MembershipStats {
    const counts = { alive: 0, suspect: 0, dead: 0, left: 0 };
    for (const m of this.members.values()) counts[m.state]++;
    return {
      ...this.s,
      dropped: { ...this.s.dropped },
      rtt: { count: this.s.rtt.count, sumMs: this.s.rtt.sumMs, recentMs: [...this.s.rtt.recentMs] },
      healthScore: this.awareness.score,
      incarnation: this.selfRec.incarnation,
      members: counts,
      broadcastQueue: this.queue.size,
    };
  }

  // ---------------------------------------------------------------- probing

  private probeTick(): void {
    this.probeTimer = null;
    if (!this.running || this.leaving) return;
    const interval = this.awareness.scale(this.o.probeIntervalMs);
    this.probeTimer = this.clock.setTimeout(() => this.probeTick(), interval);
    const target = this.nextProbeTarget();
    if (target) this.probe(target, interval);
  }

  private nextProbeTarget(): MemberRec | null {
    for (let tries = 0; tries <= this.probeOrder.length; tries++) {
      if (this.probeIndex >= this.probeOrder.length) this.resetProbeOrder();
      const id = this.probeOrder[this.probeIndex++];
      if (id === undefined) return null;
      const m = this.members.get(id);
      if (m && (m.state === 'alive' || m.state === 'suspect')) return m;
    }
    return null;
  }

  /** Start of a round: reap long-dead members and reshuffle (memberlist's resetNodes). */
  private resetProbeOrder(): void {
    const now = this.clock.now();
    for (const m of this.others) {
      if ((m.state === 'dead' || m.state === 'left') && now - m.stateChangedAt > this.o.deadRetainMs) this.members.delete(m.id); // not live: cache unaffected
    }
    if (this.others.length !== this.members.size - 1) this.others = this.others.filter((m) => this.members.get(m.id) === m);
    const ids = this.others.filter((m) => m.state === 'alive' || m.state === 'suspect').map((m) => m.id);
    for (let i = ids.length - 1; i > 0; i--) {
      const j = Math.floor(this.random() * (i + 1));
      [ids[i], ids[j]] = [ids[j]!, ids[i]!];
    }
    this.probeOrder = ids;
    this.probeIndex = 0;
  }

  private probe(target: MemberRec, interval: number): void {
    const seq = this.nextSeq();
    const sentAt = this.clock.now();
    let acked = false;
    let nacks = 0;
    let expectedNacks = 0;
    let indirectTimer: TimerHandle | null = null;
    const done = () => {
      this.pending.delete(seq);
      if (indirectTimer !== null) this.cancel(indirectTimer);
      this.cancel(deadline);
    };
    this.pending.set(seq, {
      onAck: (from) => {
        if (acked) return;
        acked = true;
        this.s.acksReceived++;
        if (from === target.id) this.recordRtt(this.clock.now() - sentAt);
        this.awareness.apply(-1);
        done();
      },
      onNack: () => {
        nacks++;
        this.s.nacksReceived++;
      },
    });
    this.s.probesSent++;
    // Lifeguard's buddy system: tell a suspect it is suspected so it refutes at once.
    const forced = target.state === 'suspect' ? encoded(['s', target.id, target.incarnation, this.selfRec.id]) : null;
    this.sendWithPiggyback(target, { t: 'p', s: seq, f: this.selfRec.id, n: target.id }, forced);

    indirectTimer = this.later(() => {
      indirectTimer = null;
      if (acked || !this.running) return;
      const relays = this.kRandom(this.o.indirectChecks, (m) => m.state === 'alive' && m.id !== target.id);
      expectedNacks = relays.length;
      for (const r of relays) {
        this.s.indirectProbesSent++;
        this.sendWithPiggyback(r, { t: 'r', s: seq, f: this.selfRec.id, n: target.id, h: target.addr, o: target.port }, null);
      }
    }, this.awareness.scale(this.o.probeTimeoutMs));

    const deadline = this.later(() => {
      this.pending.delete(seq);
      if (indirectTimer !== null) this.cancel(indirectTimer);
      if (acked || !this.running) return;
      this.s.probesFailed++;
      // Lifeguard: missing nacks mean our own links may be the problem.
      this.awareness.apply(expectedNacks > 0 ? Math.max(0, expectedNacks - nacks) : 1);
      const cur = this.members.get(target.id);
      if (!cur || cur !== target || (cur.state !== 'alive' && cur.state !== 'suspect')) return;
      if (cur.state === 'alive') this.s.suspicionsRaised++; // later failures only confirm
      this.log.debug({ peer: cur.id, incarnation: cur.incarnation }, 'probe failed, suspecting member');
      this.onSuspect(cur.id, cur.incarnation, this.selfRec.id);
    }, interval);
  }

  private recordRtt(ms: number): void {
    const r = this.s.rtt;
    r.count++;
    r.sumMs += ms;
    r.recentMs.push(ms);
    if (r.recentMs.length > RTT_RECENT) r.recentMs.shift();
    this.onRtt?.(ms);
  }

  // ---------------------------------------------------------------- gossip and push/pull

  /**
   * Arms the next gossip round unless one is armed. Rounds fall on a fixed grid
   * (start's random phase plus whole gossipIntervalMs), the instants a free-running
   * ticker would use, but only while something is queued: an idle member does not
   * wake up five times a second to find nothing to send (a Pi's idle CPU).
   */
  private armGossip(): void {
    if (this.gossipTimer !== null || !this.running) return;
    const now = this.clock.now();
    const i = this.o.gossipIntervalMs;
    let at = this.gossipAnchor + Math.max(0, Math.ceil((now - this.gossipAnchor) / i)) * i;
    if (at <= this.lastGossipAt) at += i; // this instant's round ran already
    this.gossipTimer = this.clock.setTimeout(() => this.gossipTick(), at - now);
  }

  /** Queues an update for gossip and makes sure a round will carry it. */
  private enqueue(id: string, u: Update): void {
    this.queue.set(id, u);
    this.armGossip();
  }

  private gossipTick(): void {
    this.gossipTimer = null;
    if (!this.running) return;
    const now = this.clock.now();
    this.lastGossipAt = now;
    if (this.queue.size === 0) return; // the next enqueue arms the next round
    const targets = this.kRandom(
      this.o.gossipNodes,
      (m) => m.state === 'alive' || m.state === 'suspect' || now - m.stateChangedAt < this.o.gossipToTheDeadMs,
    );
    // No one to tell (a lone member): the next member added arms the next round.
    if (targets.length === 0) return;
    this.armGossip();
    for (const t of targets) {
      if (this.queue.size === 0) break;
      this.s.gossipMessagesSent++;
      // What we tell the (probably) dead does not count toward the retransmit
      // limit: counting it starved live members of updates right after crashes.
      const live = t.state === 'alive' || t.state === 'suspect';
      this.sendWithPiggyback(t, { t: 'g', f: this.selfRec.id }, null, live);
    }
  }

  private schedulePushPull(first: boolean): void {
    const n = this.liveCount();
    // memberlist's pushPullScale: above 32 members, back off logarithmically.
    const scale = n <= 32 ? 1 : Math.ceil(Math.log2(n) - Math.log2(32)) + 1;
    const base = this.o.pushPullIntervalMs * scale;
    const delay = first ? Math.floor(this.random() * base) : base;
    this.pushPullTimer = this.clock.setTimeout(() => {
      this.pushPullTimer = null;
      if (!this.running) return;
      this.schedulePushPull(false);
      if (this.leaving) return;
      const [peer] = this.kRandom(1, (m) => m.state === 'alive');
      if (peer) {
        this.s.pushPulls++;
        this.sendState(peer, 'y', this.nextSeq());
      }
      // Serf's reconnect: a member we think dead may be behind a healed
      // partition. If it answers, each side sees its own death certificate
      // in the other's state and refutes it, and the halves merge again.
      const [dead] = this.kRandom(1, (m) => m.state === 'dead');
      if (dead) {
        this.s.reconnectAttempts++;
        this.sendState(dead, 'y', this.nextSeq());
      }
    }, delay);
  }

  /** Full state in as many datagrams as it takes; a 'y' asks the peer to answer with its own. */
  private sendState(to: PeerAddress, kind: 'y' | 'Y', seq: number): void {
    const items: Encoded[] = [];
    // Self first: the first datagram always introduces us.
    items.push(encoded(this.selfUpdate()));
    for (const m of this.others) items.push(encoded(this.stateUpdate(m)));
    let rest = items;
    let first = true;
    while (rest.length > 0) {
      const out = encodeWithUpdates({ t: first ? kind : 'Y', s: seq, f: this.selfRec.id }, rest);
      if (!out || out.taken.length === 0) {
        this.s.dropped.unsendable += rest.length;
        return;
      }
      this.sendPayload(to, out.payload);
      first = false;
      const taken = new Set(out.taken);
      rest = rest.filter((_, i) => !taken.has(i));
    }
  }

  // ---------------------------------------------------------------- receive path

  private receive(data: Uint8Array, from: PeerAddress): void {
    try {
      const opened = open(this.keys, data);
      if (!opened.ok) {
        if (opened.reason === 'version') this.warnVersion(data, from);
        return this.drop(opened.reason, from, data.length);
      }
      const msg = decodeMessage(opened.payload);
      if (!msg) return this.drop('malformed', from, data.length);
      // Our own datagram (a seed that resolves to us) or a node id clash.
      if (msg.f === this.selfRec.id) return this.drop('misdirected', from, data.length);
      this.s.messagesReceived++;
      this.s.bytesReceived += data.length;
      if (!this.running) return;
      this.handle(msg, from);
    } catch (err) {
      // A bug in a handler must not take the agent down with it; count and log.
      this.s.dropped.malformed++;
      this.log.error({ err, peer: `${from.addr}:${from.port}`, code: 'PISWARM_ERR_GOSSIP_MALFORMED' }, 'gossip datagram handling failed');
    }
  }

  /** Once per sender address (a bounded set): an agent of another release speaks another wire version. */
  private warnVersion(data: Uint8Array, from: PeerAddress): void {
    const peer = `${from.addr}:${from.port}`;
    if (this.versionWarned.has(peer) || this.versionWarned.size >= 64) return;
    this.versionWarned.add(peer);
    this.log.warn({ peer, code: 'PISWARM_ERR_GOSSIP_VERSION', theirs: data[2], ours: GOSSIP_WIRE_VERSION }, 'gossip datagrams of another wire version are dropped: run the same piswarm release on every node');
  }

  private drop(reason: keyof MembershipStats['dropped'], from: PeerAddress, bytes: number): void {
    this.s.dropped[reason]++;
    this.log.debug({ peer: `${from.addr}:${from.port}`, reason, bytes }, 'gossip datagram dropped');
  }

  private handle(msg: GossipMessage, from: PeerAddress): void {
    switch (msg.t) {
      case 'p':
        if (msg.u) this.applyUpdates(msg.u);
        if (msg.n !== this.selfRec.id) {
          // Someone else used to live at this address (restart under a new id).
          this.s.dropped.misdirected++;
          return;
        }
        this.s.acksSent++;
        this.sendWithPiggyback(from, { t: 'a', s: msg.s, f: this.selfRec.id }, null);
        return;
      case 'a':
        if (msg.u) this.applyUpdates(msg.u);
        this.pending.get(msg.s)?.onAck(msg.f);
        return;
      case 'n':
        if (msg.u) this.applyUpdates(msg.u);
        this.pending.get(msg.s)?.onNack();
        return;
      case 'r':
        if (msg.u) this.applyUpdates(msg.u);
        if (msg.n === this.selfRec.id) {
          // The origin cannot reach us directly but the relay path works: answer it ourselves.
          this.sendWithPiggyback(from, { t: 'a', s: msg.s, f: this.selfRec.id }, null);
          return;
        }
        this.relay(msg, from);
        return;
      case 'g':
        if (msg.u) this.applyUpdates(msg.u);
        return;
      case 'y':
        this.mergeState(msg.m ?? []);
        if (this.syncReplyAllowed(from)) this.sendState(from, 'Y', msg.s);
        return;
      case 'Y':
        this.mergeState(msg.m ?? []);
        this.joins.get(msg.s)?.();
        return;
    }
  }

  /**
   * A full-state answer is many datagrams for one request. There is no replay
   * window (Pis may lack a good clock at boot), so a captured request replayed
   * with a forged source could aim that burst at a third host: answer each
   * address at most once per SYNC_REPLY_GAP_MS. Joiners and push/pull rounds
   * never ask that often.
   */
  private syncReplyAllowed(from: PeerAddress): boolean {
    const key = `${from.addr}:${from.port}`;
    const now = this.clock.now();
    const last = this.syncReplies.get(key);
    if (last !== undefined && now - last < SYNC_REPLY_GAP_MS) {
      this.s.dropped.rateLimited++;
      return false;
    }
    if (this.syncReplies.size >= 4096) {
      for (const [k, t] of this.syncReplies) if (now - t >= SYNC_REPLY_GAP_MS) this.syncReplies.delete(k);
      if (this.syncReplies.size >= 4096) {
        this.s.dropped.rateLimited++;
        return false;
      }
    }
    this.syncReplies.set(key, now);
    return true;
  }

  private relay(msg: Extract<GossipMessage, { t: 'r' }>, origin: PeerAddress): void {
    this.s.indirectProbesRelayed++;
    const seq = this.nextSeq();
    const timer = this.later(() => {
      this.pending.delete(seq);
      this.s.nacksSent++;
      this.sendWithPiggyback(origin, { t: 'n', s: msg.s, f: this.selfRec.id }, null);
    }, this.o.probeTimeoutMs);
    this.pending.set(seq, {
      onAck: () => {
        this.pending.delete(seq);
        this.cancel(timer);
        this.sendWithPiggyback(origin, { t: 'a', s: msg.s, f: this.selfRec.id }, null);
      },
      onNack: () => {},
    });
    this.sendWithPiggyback({ addr: msg.h, port: msg.o }, { t: 'p', s: seq, f: this.selfRec.id, n: msg.n }, null);
  }

  private applyUpdates(us: readonly Update[]): void {
    for (const u of us) {
      switch (u[0]) {
        case 'a':
          this.onAlive(u[1], u[2], u[3], u[4], u[5]);
          break;
        case 's':
          this.onSuspect(u[1], u[2], u[3]);
          break;
        case 'd':
          this.onDead(u[1], u[2], u[3], 'dead');
          break;
        case 'l':
          this.onDead(u[1], u[2], u[1], 'left');
          break;
      }
    }
  }

  /** memberlist's mergeState: a remote "dead" only makes us suspect, so we check for ourselves. */
  private mergeState(us: readonly Update[]): void {
    for (const u of us) {
      switch (u[0]) {
        case 'a':
          this.onAlive(u[1], u[2], u[3], u[4], u[5]);
          break;
        case 's':
        case 'd':
          this.onSuspect(u[1], u[2], this.selfRec.id);
          break;
        case 'l':
          this.onDead(u[1], u[2], u[1], 'left');
          break;
      }
    }
  }

  // ---------------------------------------------------------------- state machine

  private onAlive(id: string, inc: number, addr: string, port: number, meta: Meta): void {
    if (id === this.selfRec.id) {
      const self = this.selfRec;
      const same = addr === self.addr && port === self.port && JSON.stringify(meta) === self.metaJson;
      if (inc < self.incarnation || (inc === self.incarnation && same)) return;
      if (this.leaving) return;
      if (addr !== self.addr || port !== self.port) {
        this.log.warn({ peer: `${addr}:${port}`, incarnation: inc }, 'another address claims our node id; refuting');
      }
      // Someone claims a newer or different us (e.g. our previous life): out-bid it.
      this.refute(inc);
      return;
    }
    const m = this.members.get(id);
    if (!m) {
      const rec: MemberRec = { id, addr, port, incarnation: inc, state: 'alive', meta: Object.freeze(meta), metaJson: JSON.stringify(meta), stateChangedAt: this.clock.now() };
      this.addMember(rec);
      this.enqueue(id, this.aliveUpdate(rec));
      this.fire('joined', rec, null);
      return;
    }
    if (inc <= m.incarnation) return;
    const prev = m.state;
    const metaJson = JSON.stringify(meta);
    const changed = metaJson !== m.metaJson || addr !== m.addr || port !== m.port;
    this.clearSuspicion(id);
    m.incarnation = inc;
    m.addr = addr;
    m.port = port;
    m.meta = Object.freeze(meta);
    m.metaJson = metaJson;
    if (prev !== 'alive') {
      m.state = 'alive';
      this.liveCache = null;
      m.stateChangedAt = this.clock.now();
    }
    this.enqueue(id, this.aliveUpdate(m));
    if (prev === 'dead' || prev === 'left') {
      this.insertIntoProbeOrder(id);
      this.fire('joined', m, prev);
    } else {
      if (prev === 'suspect') this.fire('alive', m, prev);
      if (changed) this.fire('updated', m, prev);
    }
  }

  private onSuspect(id: string, inc: number, from: string): void {
    const m = this.members.get(id);
    if (!m) return;
    const timer = this.suspicions.get(id);
    if (timer) {
      // An independent confirmation shortens the timeout and is worth passing on.
      if (inc >= m.incarnation && timer.confirm(from)) this.enqueue(id, ['s', id, m.incarnation, from]);
      return;
    }
    if (inc < m.incarnation) return;
    if (id === this.selfRec.id) {
      if (!this.leaving) {
        this.s.suspicionsReceived++;
        this.refute(inc);
      }
      return;
    }
    // A suspect without a timer: restarted after stop(), or installed by a snapshot.
    if (m.state !== 'alive' && m.state !== 'suspect') return;
    const prev = m.state;
    if (from !== this.selfRec.id) this.s.suspicionsReceived++;
    m.incarnation = inc;
    m.state = 'suspect';
    this.liveCache = null;
    m.stateChangedAt = this.clock.now();
    this.enqueue(id, ['s', id, inc, from]);
    const n = this.liveCount();
    // Expect k confirmations, reaching the nominal timeout two probe periods
    // early; with too few members to confirm, expect none (memberlist).
    let k = this.o.suspicionMult - 2;
    if (n - 2 < k) k = 0;
    const min = suspicionTimeout(this.o.suspicionMult, n, this.o.probeIntervalMs);
    const max = this.o.suspicionMaxTimeoutMult * min;
    const suspectedAt = this.clock.now();
    this.suspicions.set(
      id,
      new Suspicion(this.clock, from, k, min, max, suspectedAt, () => {
        this.suspicions.delete(id);
        const cur = this.members.get(id);
        if (!cur || cur.state !== 'suspect') return;
        this.s.deathsDeclared++;
        this.log.info({ peer: id, incarnation: cur.incarnation, suspectedForMs: this.clock.now() - suspectedAt }, 'member declared dead');
        this.onDead(id, cur.incarnation, this.selfRec.id, 'dead');
      }),
    );
    if (prev === 'alive') this.fire('suspect', m, prev);
  }

  private onDead(id: string, inc: number, from: string, kind: 'dead' | 'left'): void {
    const m = this.members.get(id);
    if (!m) return;
    if (inc < m.incarnation) return;
    if (id === this.selfRec.id) {
      if (!this.leaving) this.refute(inc);
      return;
    }
    if (m.state === 'dead' || m.state === 'left') {
      // A leave that arrives after we declared it dead still tells the truth.
      if (!(kind === 'left' && m.state === 'dead')) return;
    }
    this.clearSuspicion(id);
    const prev = m.state;
    m.incarnation = inc;
    m.state = kind;
    this.liveCache = null;
    m.stateChangedAt = this.clock.now();
    this.enqueue(id, kind === 'left' ? ['l', id, inc] : ['d', id, inc, from]);
    this.fire(kind, m, prev);
  }

  private refute(inc: number): void {
    this.selfRec.incarnation = Math.max(this.selfRec.incarnation, inc) + 1;
    this.s.refutations++;
    this.awareness.apply(1);
    this.enqueue(this.selfRec.id, this.aliveUpdate(this.selfRec));
    this.log.debug({ incarnation: this.selfRec.incarnation }, 'refuting suspicion of self');
  }

  private clearSuspicion(id: string): void {
    const t = this.suspicions.get(id);
    if (t) {
      t.cancel();
      this.suspicions.delete(id);
    }
  }

  private addMember(rec: MemberRec): void {
    this.liveCache = null;
    this.members.set(rec.id, rec);
    this.others.push(rec);
    if (rec.state === 'alive' || rec.state === 'suspect') this.insertIntoProbeOrder(rec.id);
    if (this.queue.size > 0) this.armGossip(); // someone new to tell what is queued
  }

  /** New members go to a random place in the current round (memberlist does the same). */
  private insertIntoProbeOrder(id: string): void {
    const lo = this.probeIndex;
    const pos = lo + Math.floor(this.random() * (this.probeOrder.length - lo + 1));
    this.probeOrder.splice(pos, 0, id);
  }

  private fire(type: MemberEventType, m: MemberRec, previous: MemberState | null): void {
    this.emit({ type, member: this.snapshot(m), previous });
  }

  // ---------------------------------------------------------------- helpers

  /** Alive + suspect members, self included; cached because every send asks for it. */
  private liveCount(): number {
    if (this.liveCache === null) {
      let n = 0;
      for (const m of this.members.values()) if (m.state === 'alive' || m.state === 'suspect') n++;
      this.liveCache = n;
    }
    return this.liveCache;
  }

  private aliveUpdate(m: MemberRec): Update {
    return ['a', m.id, m.incarnation, m.addr, m.port, m.meta];
  }

  private selfUpdate(): Update {
    return this.selfRec.state === 'left' ? ['l', this.selfRec.id, this.selfRec.incarnation] : this.aliveUpdate(this.selfRec);
  }

  private stateUpdate(m: MemberRec): Update {
    switch (m.state) {
      case 'alive':
        return this.aliveUpdate(m);
      case 'suspect':
        return ['s', m.id, m.incarnation, this.selfRec.id];
      case 'dead':
        return ['d', m.id, m.incarnation, this.selfRec.id];
      case 'left':
        return ['l', m.id, m.incarnation];
    }
  }

  /** Up to k distinct random members (not self) passing `ok` (memberlist's kRandomNodes). */
  private kRandom(k: number, ok: (m: MemberRec) => boolean): MemberRec[] {
    const out: MemberRec[] = [];
    const n = this.others.length;
    if (n === 0 || k <= 0) return out;
    for (let i = 0; i < 3 * n && out.length < k; i++) {
      const m = this.others[Math.floor(this.random() * n)]!;
      if (this.members.get(m.id) !== m || !ok(m) || out.includes(m)) continue;
      out.push(m);
    }
    return out;
  }

  private sendWithPiggyback(to: PeerAddress, base: MessageHead, forced: Encoded | null, count = true): void {
    const limit = retransmitLimit(this.o.retransmitMult, this.liveCount());
    const payload = this.queue.size > 0 || forced ? this.queue.fill(base, limit, forced, count) : encodeMessage(base);
    if (payload === null) {
      this.s.dropped.unsendable++;
      return;
    }
    this.sendPayload(to, payload);
  }

  private sendPayload(to: PeerAddress, payload: Buffer): void {
    const data = seal(this.keys, payload);
    if (!data) {
      this.s.dropped.unsendable++;
      return;
    }
    this.s.messagesSent++;
    this.s.bytesSent += data.length;
    // A fresh address object: the transport must not hold on to our member records.
    this.transport.send({ addr: to.addr, port: to.port }, data);
  }

  private later(fn: () => void, ms: number): TimerHandle {
    const h = this.clock.setTimeout(() => {
      this.inflight.delete(h);
      fn();
    }, ms);
    this.inflight.add(h);
    return h;
  }

  private cancel(h: TimerHandle): void {
    this.clock.clearTimeout(h);
    this.inflight.delete(h);
  }

  private nextSeq(): number {
    this.seq = (this.seq + 1) >>> 0;
    return this.seq;
  }

  private snapshot(m: MemberRec): Member {
    return {
      id: m.id,
      addr: m.addr,
      port: m.port,
      incarnation: m.incarnation,
      state: m.state,
      meta: m.meta,
      stateChangedAt: m.stateChangedAt,
      self: m === this.selfRec,
    };
  }
}

