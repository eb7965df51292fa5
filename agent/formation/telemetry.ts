import type { Collector, MetricFamily } from '../metrics/types.js';
import { counter, countersBy, gauge } from '../metrics/families.js';
import type { HealthCheck, CheckResult } from '../health/types.js';
import { MDNS_ERROR_KINDS, MDNS_PORT_FIX } from '../discovery/discovery.js';
import { candidates } from './peer-book.js';
import type { FormationContext } from './types.js';

/** Metrics and health checks: they read the state, never change it. */

const FORMING_WARN_MS = 120_000;
/** What /health net:address tells the operator when the advertise address is gone. */
const ADDRESS_FIX =
  'piswarm chooses its address at start: give this Pi a fixed one (a DHCP reservation on the router), then "sudo systemctl restart piswarm". ' +
  'Docker keeps the address a node joined the swarm with: on a worker, run "docker swarm leave" and then restart piswarm, which joins it again with the new address; ' +
  'demote a manager first ("docker node demote NAME" on another manager).';
const PHASES = ['discovering', 'candidate', 'waiting', 'initialising', 'joining', 'member', 'manager', 'degraded', 'disabled'] as const;


export function formationCollector(ctx: FormationContext): Collector {
  return { name: 'formation', collect: () => [...formationFamilies(ctx), ...discoveryFamilies(ctx)] };
}

function formationFamilies(ctx: FormationContext): MetricFamily[] {
  const { s, clock } = ctx;
  const k = s.counters;
  return [
    { name: 'piswarm_formation_phase', help: 'Formation phase of this node (state set: 1 for the current phase)', type: 'gauge', samples: PHASES.map((p) => ({ labels: { phase: p }, value: p === s.phase ? 1 : 0 })) },
    gauge('piswarm_formation_confirmed_peers', 'Peers confirmed over authenticated HTTP', s.peers.size),
    gauge('piswarm_formation_phase_seconds', 'Seconds since the last phase change', Math.max(0, (clock.now() - s.phaseSince) / 1000)),
    counter('piswarm_formation_elections_total', 'Times the peer set became a candidate set for the first-manager election', k.elections),
    counter('piswarm_formation_inits_total', 'Swarms created by this node', k.inits),
    counter('piswarm_formation_init_failures_total', 'swarm init calls that failed', k.initFailures),
    counter('piswarm_formation_joins_total', 'Swarms joined by this node', k.joins),
    counter('piswarm_formation_join_failures_total', 'Join rounds in which no manager granted a join', k.joinFailures),
    counter('piswarm_formation_split_leaves_total', 'Losing split swarms this node left', k.leaves),
    counter('piswarm_formation_splits_detected_total', 'Times two swarms of this cluster were seen', k.splits),
    {
      name: 'piswarm_formation_rejoins_total',
      help: 'Times this node left its own swarm to join it again, by reason: join-manager-gone (engines that pin their join address, moby PR #47854) or pruned (removed while away)',
      type: 'counter',
      samples: (['join-manager-gone', 'pruned'] as const).map((r) => ({ labels: { reason: r }, value: k.rejoins.get(r) ?? 0 })),
    },
    counter('piswarm_formation_grants_issued_total', 'Join grants issued by this node', k.grantsIssued),
    countersBy('piswarm_formation_grants_refused_total', 'Join grant requests refused (every one, bodies that are not JSON included), by reason', k.grantsRefused, 'reason'),
    counter('piswarm_formation_token_rotations_total', 'Worker join token rotations after a burst of joins', k.rotations),
    gauge('piswarm_advertise_address_stale', 'Whether the address this node advertises (and gave Docker) is no longer an address of this host, e.g. after a DHCP change: 1 while it is gone', s.drift ? 1 : 0),
    counter('piswarm_advertise_address_losses_total', 'Times the advertise address stopped being an address of this host', k.addressLosses),
    counter('piswarm_peer_hello_failures_total', 'Outbound peer confirmations that failed', k.helloFailures),
    countersBy('piswarm_peer_auth_failures_total', 'Inbound peer requests refused, by reason', k.authFailures, 'reason'),
  ];
}

function discoveryFamilies(ctx: FormationContext): MetricFamily[] {
  const discovery = ctx.deps.discovery;
  const dropped: Record<string, number> = discovery?.dropped() ?? {};
  const mdnsErrors = discovery?.socket?.().errors;
  return [
    {
      name: 'piswarm_discovery_adverts_dropped_total',
      help: 'mDNS adverts dropped, by reason',
      type: 'counter',
      samples: Object.entries(dropped).filter(([r]) => r !== 'self').map(([r, v]) => ({ labels: { reason: r }, value: v })),
    },
    gauge('piswarm_discovery_candidates', 'Peer candidates from mDNS and seeds (unconfirmed hints)', ctx.enabled ? candidates(ctx, ctx.clock.now()).length : 0),
    {
      name: 'piswarm_discovery_mdns_errors_total',
      help: 'mDNS socket errors, by reason: bind (UDP 5353 cannot be bound, e.g. another responder holds it), send',
      type: 'counter',
      samples: MDNS_ERROR_KINDS.map((r) => ({ labels: { reason: r }, value: mdnsErrors?.[r] ?? 0 })),
    },
  ];
}

export function formationHealthChecks(ctx: FormationContext): HealthCheck[] {
  return [
    { name: 'swarm:formation', run: () => formationCheck(ctx) },
    { name: 'discovery:peers', run: () => peersCheck(ctx) },
    { name: 'net:address', run: () => addressCheck(ctx) },
    // Only while the mDNS socket cannot bind its port: the agent runs on, discovering through seeds and hellos.
    { name: 'discovery:mdns', run: () => mdnsCheck(ctx) },
  ];
}

function formationCheck(ctx: FormationContext): CheckResult[] {
  const { s, clock, deps } = ctx;
  const base = { componentType: 'system', observedValue: s.phase, time: new Date(clock.now()).toISOString() };
  if (!ctx.enabled) {
    const why = deps.disabledReason
      ? `formation is off: ${deps.disabledReason}`
      : ctx.keys === null
        ? 'formation is off: no cluster key (set clusterKeyFile to a file holding the shared key, the same on every node)'
        : 'formation is off (formation.enabled=false)';
    return [{ ...base, status: 'warn', output: why }];
  }
  if (s.phase === 'member' || s.phase === 'manager') return [{ ...base, status: 'pass' }];
  if (s.phase === 'degraded') return [{ ...base, status: 'warn', output: s.reason }];
  if (clock.now() - s.phaseSince > FORMING_WARN_MS) return [{ ...base, status: 'warn', output: `still ${s.phase} after ${Math.round((clock.now() - s.phaseSince) / 1000)} s: ${s.reason}` }];
  return [{ ...base, status: 'pass', output: s.reason }];
}

function peersCheck(ctx: FormationContext): CheckResult[] {
  const { s } = ctx;
  const base = { componentType: 'system', observedValue: s.peers.size, observedUnit: 'peers', time: new Date(ctx.clock.now()).toISOString() };
  const foreign = ctx.deps.discovery?.foreign() ?? [];
  const wrong = s.counters.authFailures.get('wrong_cluster') ?? 0;
  if (foreign.length > 0) {
    const list = foreign.slice(0, 5).map((f) => `${f.clusterId} at ${f.addr}`).join(', ');
    return [{ ...base, status: 'warn', output: `adverts of another piswarm cluster are seen (${list}): those nodes hold a different cluster key. If they should be in this cluster, give them this cluster's key; if this node is the odd one out, fix its clusterKeyFile` }];
  }
  if (wrong > 0) return [{ ...base, status: 'warn', output: `${wrong} peer requests came from another cluster (different cluster key)` }];
  const stale = s.counters.authFailures.get('stale') ?? 0;
  if (stale > 0 && s.peers.size === 0) {
    // A Pi has no RTC: before NTP syncs its clock can be hours off, and
    // every signed request looks stale to its peers.
    return [{ ...base, status: 'warn', output: `${stale} peer requests were refused as stale: clocks differ by more than ${ctx.config.formation.authWindowMs / 1000} s; check time sync on every node (timedatectl)` }];
  }
  return [{ ...base, status: 'pass' }];
}

function addressCheck(ctx: FormationContext): CheckResult[] {
  const { address, drift } = ctx.s;
  const time = new Date(ctx.clock.now()).toISOString();
  if (!address) return [{ componentType: 'system', time, status: 'pass', observedValue: null, output: ctx.enabled ? 'no advertise address chosen yet' : 'formation is off: no advertise address is used' }];
  if (!drift) return [{ componentType: 'system', time, status: 'pass', observedValue: address.address }];
  const output = `${drift.why}, since ${new Date(drift.since).toISOString()}. Peers and the swarm still use ${address.address}. ${ADDRESS_FIX}`;
  return [{ componentType: 'system', time, status: 'warn', observedValue: address.address, output }];
}

function mdnsCheck(ctx: FormationContext): CheckResult[] {
  const time = new Date(ctx.clock.now()).toISOString();
  const discovery = ctx.deps.discovery;
  const u = discovery?.socket?.().unbound;
  if (!u) return [{ componentType: 'component', time, status: 'pass', ...(discovery?.socket ? {} : { output: 'mDNS discovery is off (discovery.mdns=false or no cluster key)' }) }];
  const output =
    `mDNS cannot bind UDP ${u.port} (${u.code}) since ${new Date(u.since).toISOString()}: another program holds it, so peers are found only through ` +
    `discovery.seeds and the peers that say hello first; piswarm doctor names the program. ${MDNS_PORT_FIX}`;
  return [{ componentType: 'component', observedValue: u.code, time, status: 'warn', output }];
}
