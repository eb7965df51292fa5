import { seededRandom } from '../clock.js';
import { DEFAULT_OPTIONS } from '../core.js';
import { createMembership, type CreateMembershipArgs, type Membership, type MembershipConfig } from '../membership.js';
import type { MemberEvent, MembershipLog, PeerAddress } from '../types.js';
import { SimNetwork, type NetworkOptions } from './network.js';
import { VirtualClock } from './virtual-clock.js';

export const SIM_CLUSTER_KEY = 'simulated-cluster-key-0123456789abcdef';

// The agent's own defaults (core.ts), so a simulation runs what a Pi runs.
export const DEFAULT_SIM_CONFIG: MembershipConfig = Object.freeze({
  port: 7070,
  probeIntervalMs: DEFAULT_OPTIONS.probeIntervalMs,
  probeTimeoutMs: DEFAULT_OPTIONS.probeTimeoutMs,
  indirectChecks: DEFAULT_OPTIONS.indirectChecks,
  suspicionMult: DEFAULT_OPTIONS.suspicionMult,
  suspicionMaxTimeoutMult: DEFAULT_OPTIONS.suspicionMaxTimeoutMult,
  gossipNodes: DEFAULT_OPTIONS.gossipNodes,
  gossipIntervalMs: DEFAULT_OPTIONS.gossipIntervalMs,
  retransmitMult: DEFAULT_OPTIONS.retransmitMult,
});

const silent: MembershipLog = { debug() {}, info() {}, warn() {}, error() {} };

export interface SimNode {
  readonly index: number;
  readonly id: string;
  readonly address: PeerAddress;
  readonly membership: Membership;
  crashed: boolean;
}

export interface SimClusterOptions {
  n: number;
  seed: number;
  network?: Partial<NetworkOptions>;
  config?: Partial<MembershipConfig>;
  tuning?: CreateMembershipArgs['tuning'];
  /** 'snapshot': everyone starts knowing everyone (alive, incarnation 0); 'join': node i joins via node 0. */
  bootstrap?: 'snapshot' | 'join';
  /** Called for every member event on every node, with the simulated time. */
  onEvent?: (observer: SimNode, ev: MemberEvent, at: number) => void;
  log?: MembershipLog;
}

/** N real memberships over a virtual clock and network, in one process. */
export class SimCluster {
  readonly clock = new VirtualClock();
  readonly network: SimNetwork;
  readonly nodes: SimNode[] = [];

  constructor(opts: SimClusterOptions) {
    this.network = new SimNetwork(this.clock, seededRandom(opts.seed ^ 0x5eed), {
      loss: 0,
      delayMinMs: 1,
      delayMaxMs: 5,
      ...opts.network,
    });
    const config = { ...DEFAULT_SIM_CONFIG, ...opts.config };
    for (let i = 0; i < opts.n; i++) {
      const address = { addr: `10.${(i >> 16) & 255}.${(i >> 8) & 255}.${i & 255}`, port: config.port };
      const id = `n${i}`;
      const membership = createMembership({
        config,
        clusterKey: SIM_CLUSTER_KEY,
        self: { id, addr: address.addr, port: address.port, meta: { role: 'worker' } },
        transport: this.network.attach(address),
        clock: this.clock,
        random: seededRandom(opts.seed * 7919 + i + 1),
        log: opts.log ?? silent,
        ...(opts.tuning ? { tuning: opts.tuning } : {}),
      });
      const node: SimNode = { index: i, id, address, membership, crashed: false };
      if (opts.onEvent) {
        const cb = opts.onEvent;
        membership.on('change', (ev) => cb(node, ev, this.clock.now()));
      }
      this.nodes.push(node);
    }
    if ((opts.bootstrap ?? 'snapshot') === 'snapshot') {
      const all = this.nodes.map((nd) => ({ id: nd.id, addr: nd.address.addr, port: nd.address.port, incarnation: 0, state: 'alive' as const, meta: { role: 'worker' } }));
      for (const nd of this.nodes) nd.membership.installSnapshot(all);
    }
    for (const nd of this.nodes) nd.membership.start();
    if (opts.bootstrap === 'join') {
      for (const nd of this.nodes.slice(1)) void nd.membership.join([this.nodes[0]!.address]);
    }
  }

  get now(): number {
    return this.clock.now();
  }

  runFor(ms: number): void {
    this.clock.runFor(ms);
  }

  /** Steps until `pred` holds or `maxMs` passed; returns the simulated time it held, or null. */
  runUntil(pred: () => boolean, maxMs: number, stepMs = 50): number | null {
    const end = this.clock.now() + maxMs;
    while (this.clock.now() < end) {
      if (pred()) return this.clock.now();
      this.clock.runUntil(Math.min(end, this.clock.now() + stepMs));
    }
    return pred() ? this.clock.now() : null;
  }

  /** A crash: no goodbye, no more datagrams either way, timers stopped. */
  crash(i: number): void {
    const nd = this.nodes[i]!;
    nd.crashed = true;
    this.network.setDown(nd.address, true);
    nd.membership.stop();
  }

  live(): SimNode[] {
    return this.nodes.filter((nd) => !nd.crashed);
  }

  /** Nodes whose view of `id` satisfies `pred`, among live nodes other than `id`. */
  countViews(id: string, pred: (state: string | undefined) => boolean): number {
    let c = 0;
    for (const nd of this.nodes) if (!nd.crashed && nd.id !== id && pred(nd.membership.member(id)?.state)) c++;
    return c;
  }
}

/** The q-quantile (0..1) by nearest rank; NaN for no samples. */
export function quantile(xs: readonly number[], q: number): number {
  if (xs.length === 0) return NaN;
  const s = [...xs].sort((a, b) => a - b);
  const idx = Math.min(s.length - 1, Math.max(0, Math.ceil(q * s.length) - 1));
  return s[idx]!;
}
