import type { PeerAddress, Random, Transport } from '../types.js';
import type { VirtualClock } from './virtual-clock.js';

export interface NetworkOptions {
  /** Probability that any one datagram is lost. */
  loss: number;
  /** One-way delay, uniform in [min, max] ms. */
  delayMinMs: number;
  delayMaxMs: number;
}

const key = (a: PeerAddress) => `${a.addr}:${a.port}`;

/**
 * A virtual datagram network: loss, delay, crashed hosts and partitions.
 * It models only what the gossip core needs (send and one receive handler
 * per address); datagrams to unknown addresses vanish, as UDP's do.
 */
export class SimNetwork {
  private readonly handlers = new Map<string, (data: Uint8Array, from: PeerAddress) => void>();
  private readonly down = new Set<string>();
  private group: Map<string, number> | null = null;
  readonly counters = { sent: 0, delivered: 0, lost: 0, blocked: 0, bytes: 0 };

  constructor(
    private readonly clock: VirtualClock,
    private readonly random: Random,
    public options: NetworkOptions,
  ) {}

  attach(self: PeerAddress): Transport {
    const me = key(self);
    return {
      send: (to, data) => this.send(self, me, to, data),
      onMessage: (handler) => {
        this.handlers.set(me, handler);
      },
    };
  }

  /** A crashed host neither sends nor receives. */
  setDown(addr: PeerAddress, isDown: boolean): void {
    if (isDown) this.down.add(key(addr));
    else this.down.delete(key(addr));
  }

  /** Hosts in different groups cannot talk; hosts in no group talk to nobody in a group. */
  partition(groups: readonly (readonly PeerAddress[])[]): void {
    this.group = new Map();
    groups.forEach((g, i) => g.forEach((a) => this.group!.set(key(a), i)));
  }

  heal(): void {
    this.group = null;
  }

  private send(from: PeerAddress, fromKey: string, to: PeerAddress, data: Uint8Array): void {
    this.counters.sent++;
    this.counters.bytes += data.length;
    const toKey = key(to);
    if (this.down.has(fromKey)) return void this.counters.blocked++;
    if (this.group && this.group.get(fromKey) !== this.group.get(toKey)) return void this.counters.blocked++;
    if (this.random() < this.options.loss) return void this.counters.lost++;
    const { delayMinMs: lo, delayMaxMs: hi } = this.options;
    const delay = lo + this.random() * (hi - lo);
    this.clock.setTimeout(() => {
      if (this.down.has(toKey)) return void this.counters.blocked++;
      const h = this.handlers.get(toKey);
      if (!h) return void this.counters.blocked++;
      this.counters.delivered++;
      h(data, from);
    }, delay);
  }
}
