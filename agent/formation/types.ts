import type { FastifyPluginAsync } from 'fastify';
import type { Config } from '../../shared/config-schema.js';
import type { FormationStatus } from '../../shared/wire/peer.js';
import type { DockerEngine, NodeListing } from '../docker/engine.js';
import type { EngineSample } from '../docker/monitor.js';
import type { Logger } from '../log/logger.js';
import type { Collector } from '../metrics/types.js';
import type { HealthCheck } from '../health/types.js';
import type { NodeIdentity } from '../identity/identity.js';
import type { ClusterKeys } from '../identity/keys.js';
import type { AddressChoice, InterfaceTable } from '../net/address.js';
import type { Discovery } from '../discovery/discovery.js';
import type { PeerClient } from '../peers/client.js';
import type { PeerRouteContext } from '../peers/routes.js';
import type { FormationStore } from './store.js';
import type { FormationState } from './state.js';
import type { Clock } from '../lifecycle/clock.js';
import type { JoinRelay } from './join-relay.js';

/** The agent's one clock; formation's is the wall clock (its times are shown to operators). */
export type { Clock } from '../lifecycle/clock.js';

/**
 * What agent/formation/subsystem.ts wires:
 *
 *   const { identity, keys, address } = createNodeContext(config, log); // once, shared with gossip
 *   const formation = createFormation({
 *     config, log, docker, clock: { now: Date.now, setTimeout, clearTimeout }, identity,
 *     discovery: keys && config.discovery.mdns ? createMdnsDiscovery({ keys, identity, log, now: Date.now,
 *       maxAgeMs: config.discovery.advertMaxAgeMs, republishMs: config.discovery.republishMs }) : null,
 *     peerClient: keys ? createPeerClient({ keys, identity, timeoutMs: config.discovery.requestTimeoutMs,
 *       windowMs: config.formation.authWindowMs }) : null,
 *     address,
 *   });
 *   plugins: [formation.routes]; collectors: [formation.collector]; checks: formation.healthChecks;
 *   start: await formation.start() (returns at once; formation runs in the background);
 *   stop:  await formation.stop()  (goodbye packets, bounded by a deadline).
 */
export interface FormationDeps {
  config: Config;
  log: Logger;
  docker: DockerEngine;
  clock: Clock;
  identity: NodeIdentity;
  /** null when mDNS is off or there is no cluster key (seeds still work). */
  discovery: Discovery | null;
  /** null when there is no cluster key. */
  peerClient: PeerClient | null;
  /** Chooses the advertise address; throws PISWARM_ERR_NO_ADDRESS until one exists. */
  address: () => AddressChoice;
  /**
   * The host's interfaces, read every discovery.addressRecheckMs to see whether
   * the chosen address is still this host's (/health net:address). Absent: the
   * address is not re-checked (unit tests that do not model the host).
   */
  interfaces?: () => InterfaceTable;
  store?: FormationStore;
  random?: () => number;
  /** PIN_SETTLE_MS, shorter in tests. */
  pinSettleMs?: number;
  /** Keys derived from config.clusterKey (derived here when absent). */
  keys?: ClusterKeys | null;
  /** Set when formation cannot run (e.g. no identity): /health says why. */
  disabledReason?: string;
  /**
   * What the peer routes answer to on-demand reads (agent/cluster supplies
   * it); absent, POST /v1/peers/checks and /v1/peers/services answer UNAVAILABLE.
   */
  peerReads?: Pick<PeerRouteContext, 'checks' | 'services'>;
  /** Cluster key changes (agent/keyring), answered on the peer API. */
  keyring?: Pick<PeerRouteContext, 'keyringStep' | 'rotate' | 'revoke'>;
  /** Rolling upgrades (agent/upgrade), answered on the peer API. */
  release?: PeerRouteContext['release'];
  /**
   * The agent's engine monitor (agent/docker/monitor.ts): each tick reads its
   * last sample, asking it for a new one when that is older than half a tick,
   * so the agent makes one `docker info` call per tick, not one for formation
   * and one for /metrics. Absent: formation calls `docker info` itself.
   */
  engine?: EngineSource;
  /**
   * The autopilot's node list (taken every autopilot.intervalMs on every
   * manager, `at` in wall-clock ms): a manager's list for hello answers is
   * taken from it when it is newer than the last one, instead of listing
   * again. Absent: formation lists the nodes itself.
   */
  recentNodes?: () => NodeListing | null;
  /** The join relay (agent/formation/join-relay.ts); absent or not listening: joins go to the manager directly. */
  joinRelay?: Pick<JoinRelay, 'address' | 'joining'>;
}

/** What formation reads the engine through (EngineMonitor has it). */
export interface EngineSource {
  last(): EngineSample;
  /** Samples now; never throws. */
  refresh(): Promise<void>;
}

export interface Formation {
  start(): Promise<void>;
  stop(): Promise<void>;
  routes: FastifyPluginAsync;
  collector: Collector;
  healthChecks: HealthCheck[];
  status(): FormationStatus;
  /**
   * The manager address this worker joined through, when its engine would
   * dial only that address if promoted (pinsJoinAddress); null otherwise. Gossip
   * publishes it so the autopilot never promotes a worker pinned to a
   * manager that is gone.
   */
  joinAddress(): string | null;
  /** Where the join relay forwards outside a join (agent/formation/relay-managers.ts). */
  relayManagers(): string[];
  /** Runs one evaluation now (tests and the bench drive it). */
  tick(): Promise<void>;
}

/**
 * What every part of formation is handed: the dependencies, what is derived
 * from them once, and the one mutable state record. Built by createFormation.
 */
export interface FormationContext {
  deps: FormationDeps;
  config: Config;
  docker: DockerEngine;
  clock: Clock;
  identity: NodeIdentity;
  log: Logger;
  keys: ClusterKeys | null;
  enabled: boolean;
  store: FormationStore;
  random: () => number;
  /** This node's HTTP (peer API) port. */
  port: number;
  /** Aborted by stop(): in-flight peer requests end. */
  abort: AbortController;
  s: FormationState;
}

/** The swarm's management port (docker swarm init/join --listen-addr). */
export const SWARM_PORT = 2377;
/**
 * How long a worker's join manager must be missing from the manager list
 * (see trackPin), or a manager must have said it no longer lists this node
 * (see noteListing), before the worker joins again.
 */
export const PIN_SETTLE_MS = 15_000;
