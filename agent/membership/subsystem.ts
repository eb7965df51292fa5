import type { Config } from '../../shared/config-schema.js';
import type { Logger } from '../log/logger.js';
import type { Subsystem } from '../lifecycle/subsystem.js';
import type { Collector, MetricFamily } from '../metrics/types.js';
import { counter } from '../metrics/families.js';
import type { CheckResult, HealthCheck } from '../health/types.js';
import type { EngineMonitor } from '../docker/monitor.js';
import type { NodeContext } from '../identity/context.js';
import { MAX_META_BYTES, metaBytes } from '../../shared/wire/gossip.js';
import { createMembership, membershipPort, type Membership } from './membership.js';
import { createUdpTransport, type UdpTransport } from './udp-transport.js';
import { systemClock, systemRandom } from './clock.js';
import type { Meta, MemberEvent } from './types.js';
import { isPiswarmError } from '../../shared/errors.js';
import { backoffMs } from '../lifecycle/backoff.js';

/** Longest wait between two looks for an address while there is none. */
const ADDRESS_RETRY_MAX_MS = 10_000;

/** What this node tells its peers about itself; the autopilot ranks manager candidates by it. */
export interface HostFacts {
  /** Benchmarked sequential read speed of the boot disk, bytes/s (absent until measured). */
  diskBps?: number;
  /** Under-voltage now or since boot (Raspberry Pi firmware). */
  undervoltage?: boolean;
  tempC?: number;
}

export interface MembershipDeps {
  log: Logger;
  /** Identity, gossip keys and the advertise address, built once for the agent (agent/identity/context.ts). */
  node: Pick<NodeContext, 'identity' | 'gossipKeys' | 'address'>;
  monitor: EngineMonitor;
  facts: () => HostFacts;
  /** Addresses of peers formation has confirmed over authenticated HTTP: gossip seeds. */
  confirmedPeers: () => string[];
  /** The manager address this worker's engine is pinned to (Docker < 27), published as `joinAddr`. */
  joinAddress?: () => string | null;
  /** How often seeds are re-joined and our metadata refreshed. */
  refreshMs?: number;
  /** More metadata (agent/cluster's facts), given the bytes the rest leaves of MAX_META_BYTES. */
  extraMeta?: (budgetBytes: number) => Meta;
  /** Called on every membership event and after our own metadata changed (agent/cluster dates facts by it). */
  onChange?: () => void;
}

/**
 * Gossip membership (SWIM, agent/membership/core.ts) as a part of the agent:
 * joins the peers formation confirmed plus the static seeds, publishes this
 * node's role and health facts as metadata, and leaves on shutdown. Without a
 * cluster key it does nothing (formation's /health already says why).
 */
export function membershipSubsystem(config: Readonly<Config>, deps: MembershipDeps): Subsystem & { members: Membership['members'] } {
  const log = deps.log.child({ mod: 'membership' });
  let membership: Membership | null = null;
  let transport: UdpTransport | null = null;
  let timer: NodeJS.Timeout | null = null;
  let lastMeta = '';
  let stopped = false;
  /** Set while no address exists yet (why); start retries until one does. */
  let waitingForAddress: string | null = null;
  let addressAttempts = 0;
  let addressTimer: NodeJS.Timeout | null = null;
  const port = membershipPort(config);

  const meta = (): Meta => {
    const sw = deps.monitor.last().info?.swarm;
    const f = deps.facts();
    const m: Record<string, string | number | boolean> = { hostname: config.nodeName ?? '', role: sw?.state === 'active' ? (sw.isManager ? 'manager' : 'worker') : 'none' };
    if (sw?.nodeId) m.swarmNodeId = sw.nodeId;
    const joinAddr = deps.joinAddress?.() ?? null;
    if (joinAddr) m.joinAddr = joinAddr;
    if (f.diskBps !== undefined) m.diskBps = Math.round(f.diskBps);
    if (f.undervoltage !== undefined) m.undervoltage = f.undervoltage;
    if (f.tempC !== undefined) m.tempC = Math.round(f.tempC * 10) / 10;
    // + 1: the comma that joins the extra keys to the rest.
    return deps.extraMeta ? { ...m, ...deps.extraMeta(MAX_META_BYTES - metaBytes(m) - 1) } : m;
  };

  const refresh = async () => {
    const m = membership;
    if (!m) return;
    const next = meta();
    const text = JSON.stringify(next);
    if (text !== lastMeta) {
      try {
        m.updateMeta(next);
        lastMeta = text;
        deps.onChange?.();
      } catch (err) {
        log.warn({ err: (err as Error).message, code: (err as { code?: string }).code }, 'cannot publish member metadata');
      }
    }
    // Join whoever formation confirmed but gossip does not see alive: after a
    // reboot, a partition or a late start, this is how a node finds the rest.
    const alive = new Set(m.members().filter((x) => x.state === 'alive' || x.state === 'suspect').map((x) => x.addr));
    const seeds = [...new Set([...config.discovery.seeds.map((s) => s.split(':')[0]!), ...deps.confirmedPeers()])].filter((a) => !alive.has(a));
    if (seeds.length > 0) {
      const r = await m.join(seeds);
      log.debug({ seeds: seeds.length, responded: r.responded, invalid: r.invalid }, 'gossip join round');
    }
  };

  const onEvent = (ev: MemberEvent) => {
    deps.onChange?.();
    if (ev.member.self) return;
    const fields = { member: ev.member.id, hostname: ev.member.meta.hostname, addr: ev.member.addr, from: ev.previous, incarnation: ev.member.incarnation };
    if (ev.type === 'dead') log.warn(fields, 'member is dead');
    else if (ev.type === 'suspect') log.info(fields, 'member is suspect');
    else if (ev.type === 'joined') log.info(fields, 'member joined');
    else if (ev.type === 'left') log.info(fields, 'member left');
    else if (ev.type === 'alive' && ev.previous !== null) log.info(fields, 'member is alive again');
  };

  const collector: Collector = {
    name: 'membership',
    collect(): MetricFamily[] {
      if (!membership) return [];
      const s = membership.stats();
      const rtt = s.rtt.recentMs;
      return [
        { name: 'piswarm_gossip_members', help: 'Gossip members by state, this node included.', type: 'gauge', samples: (['alive', 'suspect', 'dead', 'left'] as const).map((st) => ({ labels: { state: st }, value: s.members[st] })) },
        counter('piswarm_gossip_probes_total', 'Failure-detector probes sent.', s.probesSent),
        counter('piswarm_gossip_probe_failures_total', 'Probes that got no ack, direct or indirect.', s.probesFailed),
        counter('piswarm_gossip_indirect_probes_total', 'Indirect probes sent on behalf of this node.', s.indirectProbesSent),
        counter('piswarm_gossip_suspicions_total', 'Suspicions this node raised.', s.suspicionsRaised),
        counter('piswarm_gossip_refutations_total', 'Suspicions of this node it refuted.', s.refutations),
        counter('piswarm_gossip_deaths_declared_total', 'Members this node declared dead.', s.deathsDeclared),
        counter('piswarm_gossip_messages_sent_total', 'Gossip datagrams sent.', s.messagesSent),
        counter('piswarm_gossip_messages_received_total', 'Gossip datagrams received.', s.messagesReceived),
        counter('piswarm_gossip_bytes_sent_total', 'Gossip bytes sent.', s.bytesSent),
        counter('piswarm_gossip_bytes_received_total', 'Gossip bytes received.', s.bytesReceived),
        { name: 'piswarm_gossip_dropped_total', help: 'Gossip datagrams refused, by reason (auth, wrongCluster, malformed, ...).', type: 'counter', samples: Object.entries(s.dropped).map(([reason, value]) => ({ labels: { reason }, value })) },
        { name: 'piswarm_gossip_health_score', help: 'Lifeguard local health score (0 is healthy).', type: 'gauge', samples: [{ value: s.healthScore }] },
        { name: 'piswarm_gossip_probe_rtt_seconds', help: 'Mean round-trip time of recent direct probes.', type: 'gauge', samples: [{ value: rtt.length ? rtt.reduce((a, b) => a + b, 0) / rtt.length / 1000 : 0 }] },
        { name: 'piswarm_gossip_probe_rtt_seconds_total', help: 'Sum of all direct probe round-trip times.', type: 'counter', samples: [{ value: s.rtt.sumMs / 1000 }] },
        counter('piswarm_gossip_probe_rtt_count_total', 'Direct probe round trips measured.', s.rtt.count),
      ];
    },
  };

  const check: HealthCheck = {
    name: 'cluster:members',
    run(): CheckResult[] {
      if (!membership && waitingForAddress) return [{ status: 'warn', observedValue: null, output: `gossip waits for an address: ${waitingForAddress}` }];
      if (!membership) return [{ status: 'pass', observedValue: null, output: config.clusterKey ? 'gossip not started yet' : 'gossip off: no cluster key' }];
      const others = membership.members().filter((m) => !m.self);
      const alive = others.filter((m) => m.state === 'alive').length + 1;
      const troubled = others.filter((m) => m.state === 'suspect' || m.state === 'dead');
      const names = troubled.map((m) => `${String(m.meta.hostname ?? m.id)} (${m.state})`).join(', ');
      return [{ status: troubled.length ? 'warn' : 'pass', observedValue: alive, observedUnit: 'members', ...(troubled.length ? { output: `unreachable members: ${names}` } : {}) }];
    },
  };

  return {
    name: 'membership',
    members: () => membership?.members() ?? [],
    collectors: [collector],
    checks: [check],
    async start() {
      if (!deps.node.gossipKeys) return;
      stopped = false;
      await startWhenAddressed();
    },
    async stop() {
      stopped = true;
      if (addressTimer) clearTimeout(addressTimer);
      addressTimer = null;
      if (timer) clearInterval(timer);
      timer = null;
      if (membership) {
        // leave() waits for acks; alone there is nobody to tell.
        if (membership.members().some((x) => !x.self && x.state === 'alive')) await membership.leave();
        membership.stop();
      }
      await transport?.close();
      membership = null;
      transport = null;
    },
  };

  /**
   * A Pi whose DHCP answer is late has no address yet: gossip waits for one
   * (capped backoff with jitter) instead of failing the agent's start, as
   * formation does. Before, start() threw PISWARM_ERR_NO_ADDRESS and the
   * agent exited 70, relying on systemd's restart.
   */
  async function startWhenAddressed(): Promise<void> {
    if (stopped) return;
    let address: string;
    try {
      address = deps.node.address().address;
    } catch (err) {
      if (!isPiswarmError(err) || err.code !== 'PISWARM_ERR_NO_ADDRESS') throw err;
      const delay = backoffMs(addressAttempts++, 500, ADDRESS_RETRY_MAX_MS, Math.random());
      waitingForAddress = err.message;
      if (addressAttempts === 1) log.info({ code: err.code, detail: err.message, retryInMs: delay }, 'gossip waits for an address');
      addressTimer = setTimeout(() => void startWhenAddressed().catch((e: unknown) => log.error({ code: isPiswarmError(e) ? e.code : 'error', detail: (e as Error).message }, 'gossip membership cannot start')), delay);
      addressTimer.unref();
      return;
    }
    waitingForAddress = null;
    await startGossip(address);
  }

  async function startGossip(address: string): Promise<void> {
    const { identity, gossipKeys } = deps.node;
    if (!gossipKeys) return;
    transport = await createUdpTransport({
      host: '0.0.0.0',
      port,
      onError: (err, ctx) => log.debug({ code: err.code, op: ctx.op, to: ctx.to?.addr }, 'gossip socket error'),
    });
    const m = createMembership({ config: { ...config.membership, port }, keys: gossipKeys, self: { id: identity.nodeId, addr: address, port, meta: meta() }, transport, clock: systemClock, random: systemRandom, log });
    lastMeta = JSON.stringify(meta());
    m.on('change', onEvent);
    m.start();
    membership = m;
    log.info({ nodeId: identity.nodeId, addr: address, port }, 'gossip membership started');
    const tick = () => void refresh().catch((err: unknown) => log.warn({ err: (err as Error).message }, 'gossip refresh failed'));
    tick();
    timer = setInterval(tick, deps.refreshMs ?? 5000);
    timer.unref();
  }
}
