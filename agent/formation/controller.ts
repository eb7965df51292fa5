import { randomBytes } from 'node:crypto';
import type { FastifyPluginAsync } from 'fastify';
import type { Config } from '../../shared/config-schema.js';
import { PiswarmError, isPiswarmError } from '../../shared/errors.js';
import type { FormationPhase, FormationStatus, GrantRequest, HelloRequest, HelloResponse, PeerSwarm, PeerView, TimelineEntry } from '../../shared/wire/peer.js';
import type { DockerEngine, EngineInfo } from '../docker/engine.js';
import type { Logger } from '../log/logger.js';
import type { Collector, MetricFamily } from '../metrics/types.js';
import type { HealthCheck, CheckResult } from '../health/types.js';
import type { NodeIdentity } from '../identity/identity.js';
import { deriveClusterKeys, type ClusterKeys } from '../identity/keys.js';
import { addressDrift, hostOf, joinHostPort, type AddressChoice, type InterfaceTable } from '../net/address.js';
import { MDNS_ERROR_KINDS, MDNS_PORT_FIX, seedCandidates, type Candidate, type Discovery } from '../discovery/discovery.js';
import type { AdvertRole } from '../discovery/advert.js';
import type { PeerClient } from '../peers/client.js';
import { ReplayCache } from '../peers/protocol.js';
import { createPeerRoutes, type GrantSource } from '../peers/routes.js';
import { createSelfAddressing } from '../peers/self-addressing.js';
import { decide, effectiveHoldOffMs, type Decision, type ElectionInput, type PeerState } from './rule.js';
import { backoffMs } from '../lifecycle/backoff.js';
import { pinsJoinAddress } from '../docker/engine-recovery.js';
import { createFileFormationStore, type FormationStore, type PersistedFormation } from './store.js';

export interface Clock {
  now(): number;
  setTimeout(fn: () => void, ms: number): unknown;
  clearTimeout(handle: unknown): void;
}

/**
 * What the lead wires (agent/agent.ts):
 *
 *   const keys = config.clusterKey ? deriveClusterKeys(config.clusterKey) : null;
 *   const identity = loadOrCreateIdentity(config.stateDir, config.nodeName!);
 *   const formation = createFormation({
 *     config, log, docker, clock: { now: Date.now, setTimeout, clearTimeout }, identity,
 *     discovery: keys && config.discovery.mdns ? createMdnsDiscovery({ keys, identity, log, now: Date.now,
 *       maxAgeMs: config.discovery.advertMaxAgeMs, republishMs: config.discovery.republishMs }) : null,
 *     peerClient: keys ? createPeerClient({ keys, identity, timeoutMs: config.discovery.requestTimeoutMs,
 *       windowMs: config.formation.authWindowMs }) : null,
 *     address: () => detectAdvertiseAddress(config),
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
   * dial only that address if promoted (Docker < 27); null otherwise. Gossip
   * publishes it so the autopilot never promotes a worker pinned to a
   * manager that is gone.
   */
  joinAddress(): string | null;
  /** Runs one evaluation now (tests and the bench drive it). */
  tick(): Promise<void>;
}

interface PeerRecord {
  nodeId: string;
  name: string;
  addr: string;
  port: number;
  source: 'mdns' | 'seed' | 'inbound';
  state: HelloResponse | null;
  confirmedAt: number | null;
  /** When this node first saw the peer in its current phase (our clock, not the peer's). */
  phaseSince: number;
  lastError: string | null;
}

interface Attempt {
  lastTry: number;
  failures: number;
}

const TIMELINE_MAX = 64;
/**
 * How long a worker's join manager must be missing from the manager list
 * (see trackPin), or a manager must have said it no longer lists this node
 * (see noteListing), before the worker joins again.
 */
export const PIN_SETTLE_MS = 15_000;
/** A manager re-reads its node list for hello answers at most this often... */
const NODE_LIST_REFRESH_MS = 5_000;
/** ...and answers `listsAsker` only from a list this fresh. */
const NODE_LIST_FRESH_MS = 15_000;
const SWARM_PORT = 2377;
const FORMING_WARN_MS = 120_000;
/** What /health net:address tells the operator when the advertise address is gone. */
const ADDRESS_FIX =
  'piswarm chooses its address at start: give this Pi a fixed one (a DHCP reservation on the router), then "sudo systemctl restart piswarm". ' +
  'Docker keeps the address a node joined the swarm with: on a worker, run "docker swarm leave" and then restart piswarm, which joins it again with the new address; ' +
  'demote a manager first ("docker node demote NAME" on another manager).';

export function createFormation(deps: FormationDeps): Formation {
  const { config, docker, clock, identity } = deps;
  const log = deps.log.child({ mod: 'formation' });
  const keys = deps.keys !== undefined ? deps.keys : config.clusterKey ? deriveClusterKeys(config.clusterKey) : null;
  const enabled = config.formation.enabled && keys !== null && deps.peerClient !== null && !deps.disabledReason;
  const store = deps.store ?? createFileFormationStore(config.stateDir, (err) => log.warn({ err: { message: (err as Error).message } }, 'formation state cannot be persisted'));
  const random = deps.random ?? Math.random;
  const port = config.http.port;
  const replay = new ReplayCache(config.formation.authWindowMs * 2);

  let persisted: PersistedFormation = store.load();
  let phase: FormationPhase = enabled ? 'discovering' : 'disabled';
  let reason = enabled ? 'starting' : deps.disabledReason ?? (keys === null ? 'no cluster key configured' : 'formation.enabled is false');
  let phaseSince = clock.now();
  const timeline: TimelineEntry[] = [];
  const peers = new Map<string, PeerRecord>();
  const attempts = new Map<string, Attempt>();
  const selfKeys = new Set<string>(); // candidate keys that turned out to be this node
  const inbound = new Map<string, Candidate>();
  let peerSetKey = '';
  let stableSince = clock.now();
  let address: AddressChoice | null = null;
  /** Set while `address` is no longer this host's (a DHCP change): what it has now, why, since when. */
  let drift: { now: AddressChoice | null; why: string; since: number } | null = null;
  let addressCheckedAt = 0;
  let info: EngineInfo | null = null;
  let selfSwarm: PeerSwarm | null = null;
  const createdAtById = new Map<string, string>();
  let lastDecision: Decision | null = null;
  /** The last election result, kept after the swarm exists (see FormationStatus.election). */
  let lastElection: FormationStatus['election'] = persisted.election ?? null;
  let joinAttempt = 0;
  let nextJoinAt = 0;
  /** swarm init failures in this node's current turn, and when it may try again. */
  let initFailures = 0;
  let nextInitAt = 0;
  /** When a manager's node list last showed a node it did not list before (a join). */
  let lastJoinSeenAt: number | null = null;
  /** Whether this node is the Raft leader, from the last node list. */
  let selfLeader = false;
  let engineError: string | null = null;
  let pinnedSince: number | null = null;
  let removedSince: number | null = null;
  let listedIds: { at: number; ids: Set<string> } | null = null;
  /** Swarm node ids that asked and were not in the node list, and when first missed. */
  const missedAt = new Map<string, number>();
  let timer: unknown = null;
  let running: Promise<void> | null = null;
  let stopped = false;
  const abort = new AbortController();

  const counters = {
    elections: 0,
    inits: 0,
    initFailures: 0,
    joins: 0,
    joinFailures: 0,
    leaves: 0,
    rejoins: new Map<string, number>(),
    grantsIssued: 0,
    rotations: 0,
    splits: 0,
    grantsRefused: new Map<string, number>(),
    authFailures: new Map<string, number>(),
    helloFailures: 0,
    addressLosses: 0,
  };
  const bump = (m: Map<string, number>, k: string) => m.set(k, (m.get(k) ?? 0) + 1);

  const setPhase = (to: FormationPhase, why: string) => {
    if (to === phase && why === reason) return;
    const from = phase;
    reason = why;
    if (to === phase) return;
    phase = to;
    phaseSince = clock.now();
    if (to === 'candidate') counters.elections++;
    timeline.push({ at: new Date(clock.now()).toISOString(), from, to, reason: why });
    if (timeline.length > TIMELINE_MAX) timeline.shift();
    log.info({ from, to, reason: why }, 'formation phase changed');
  };

  const rememberSwarm = (id: string, createdAt: string | null, joined: boolean, joinAddr: string | null = null) => {
    let changed = false;
    const seen = persisted.seenSwarms.find((s) => s.id === id);
    if (!seen) {
      persisted.seenSwarms.push({ id, createdAt, firstSeen: new Date(clock.now()).toISOString() });
      persisted.seenSwarms = persisted.seenSwarms.slice(-16);
      changed = true;
    } else if (!seen.createdAt && createdAt) {
      seen.createdAt = createdAt;
      changed = true;
    }
    if (joined && (persisted.joined?.id !== id || (joinAddr !== null && persisted.joined.joinAddr !== joinAddr))) {
      persisted.joined = { id, createdAt: createdAt ?? (persisted.joined?.id === id ? persisted.joined.createdAt : null), joinAddr };
      changed = true;
    }
    if (changed) store.save(persisted);
  };

  const advertRole = (): AdvertRole =>
    phase === 'initialising' ? 'initialising' : selfSwarm ? (selfSwarm.role === 'manager' ? 'manager' : 'worker') : 'none';

  // ---------------------------------------------------------------- engine
  async function readEngine(): Promise<void> {
    try {
      info = await docker.info();
      engineError = null;
    } catch (err) {
      info = null;
      engineError = isPiswarmError(err) ? err.code : 'error';
      selfSwarm = null;
      return;
    }
    const s = info.swarm;
    if (s.state !== 'active') {
      selfSwarm = null;
      pinnedSince = null;
      // A pending engine keeps what the managers said of it: an engine whose
      // node was removed while it was off stays pending for good, and that
      // word is the only way out (noteListing, the rule's pending branch).
      if (s.state !== 'pending') removedSince = null;
      return;
    }
    // A worker's engine does not name its swarm: take it from the grant we
    // persisted, else from a confirmed manager whose address our engine lists.
    const managerSet = new Set(s.remoteManagers.map((m) => m.addr));
    const viaManager = [...peers.values()].find((p) => p.state?.swarm?.role === 'manager' && managerSet.has(joinHostPort(p.addr, SWARM_PORT)))?.state?.swarm?.id;
    const id = s.clusterId ?? persisted.joined?.id ?? viaManager ?? null;
    if (!id) {
      selfSwarm = null;
      return;
    }
    let createdAt = createdAtById.get(id) ?? (persisted.joined?.id === id ? persisted.joined.createdAt : null) ?? persisted.seenSwarms.find((x) => x.id === id)?.createdAt ?? null;
    if (s.isManager && !createdAtById.has(id)) {
      try {
        const d = await docker.swarmInspect();
        createdAt = d.createdAt;
        createdAtById.set(id, d.createdAt);
      } catch (err) {
        log.debug({ code: (err as PiswarmError).code }, 'swarm inspect failed');
      }
    }
    const managerAddrs = s.remoteManagers.map((m) => m.addr).slice(0, 16);
    // A manager's engine names its swarm: that is the truth about which swarm
    // this node is in (formation.json of releases before this fix holds the
    // creator's node id there instead).
    if (s.isManager && s.clusterId && persisted.joined?.id !== s.clusterId) {
      log.info({ was: persisted.joined?.id ?? null, swarmId: s.clusterId }, 'the swarm this node is in recorded from its engine');
      persisted.joined = { id: s.clusterId, createdAt, joinAddr: persisted.joined?.joinAddr ?? null };
      store.save(persisted);
    }
    trackPin(s, id);
    await refreshListedIds(s.isManager);
    selfSwarm = { id, createdAt, role: s.isManager ? 'manager' : 'worker', nodes: s.isManager ? s.nodes : null, managerAddrs, runningTasks: selfSwarm?.id === id ? selfSwarm.runningTasks : null };
    rememberSwarm(id, createdAt, false);
  }

  /**
   * A worker whose engine pins its join address (moby PR #47854, Docker < 27)
   * and whose join manager is no longer among the swarm's managers: since
   * when. The engine's manager list lags a demotion by a heartbeat or two, so
   * the rule acts only after PIN_SETTLE_MS.
   */
  function trackPin(s: EngineInfo['swarm'], id: string): void {
    const joinAddr = pinnedJoinAddr();
    const gone = !s.isManager && joinAddr !== null && persisted.joined?.id === id && s.remoteManagers.length > 0 &&
      !s.remoteManagers.some((m) => hostOf(m.addr) === hostOf(joinAddr));
    if (!gone) pinnedSince = null;
    else if (pinnedSince === null) {
      pinnedSince = clock.now();
      log.info({ joinAddr, managers: s.remoteManagers.map((m) => m.addr) }, 'the manager this worker joined through is no longer a manager; this engine would dial only it if promoted');
    }
  }

  /** The join address, when this engine pins it (null on engines with the fix, or when unknown). */
  function pinnedJoinAddr(): string | null {
    if (!info || !pinsJoinAddress(info.serverVersion)) return null;
    return persisted.joined?.joinAddr ?? null;
  }

  /**
   * The hello answer `listsAsker`. "No" only from a node list read after the
   * asker was first missed: a node that joined a moment ago is in the next
   * list, so only a node the swarm really dropped is ever told so.
   */
  function listing(askerId: string | undefined): { listsAsker?: boolean } {
    if (askerId === undefined || listedIds === null || clock.now() - listedIds.at > NODE_LIST_FRESH_MS) return {};
    if (listedIds.ids.has(askerId)) {
      missedAt.delete(askerId);
      return { listsAsker: true };
    }
    const missed = missedAt.get(askerId);
    if (missed !== undefined && listedIds.at > missed) return { listsAsker: false };
    if (missed === undefined) {
      if (missedAt.size >= 256) missedAt.clear();
      missedAt.set(askerId, clock.now());
    }
    return {};
  }

  /** A manager's node ids, for the hello answer `listsAsker`; null on workers. */
  async function refreshListedIds(isManager: boolean): Promise<void> {
    if (!isManager) {
      listedIds = null;
      selfLeader = false;
      lastJoinSeenAt = null;
      missedAt.clear();
      return;
    }
    const missPending = [...missedAt.values()].some((t) => listedIds === null || t >= listedIds.at);
    if (listedIds !== null && clock.now() - listedIds.at < NODE_LIST_REFRESH_MS && !missPending) return;
    try {
      const nodes = await docker.listNodes();
      const ids = new Set(nodes.map((n) => n.id));
      if (listedIds !== null && [...ids].some((id) => !listedIds!.ids.has(id))) lastJoinSeenAt = clock.now();
      listedIds = { at: clock.now(), ids };
      selfLeader = nodes.some((n) => n.leader && n.id === info?.swarm.nodeId);
    } catch (err) {
      log.debug({ code: (err as PiswarmError).code }, 'node list for hello answers failed');
    }
  }

  /**
   * A manager of our own swarm answered whether it lists this node. A node
   * the swarm removed while it was away (down past the TTL, then back) keeps
   * an engine that says "active" forever: a worker only logs "node ... was
   * removed from swarm" on every session attempt, a manager that was demoted
   * and removed meanwhile still runs its own Raft with no leader. The
   * answering manager read its list from a Raft with a leader, after this
   * node was first missed, so its word is authoritative; it is the only way
   * to know.
   */
  function noteListing(response: HelloResponse): void {
    const mine = ownSwarmId();
    if (response.listsAsker === undefined || response.swarm?.role !== 'manager' || mine === null || response.swarm.id !== mine) return;
    if (response.listsAsker) {
      if (removedSince !== null) log.info('a manager lists this node again');
      removedSince = null;
    } else if (removedSince === null) {
      removedSince = clock.now();
      log.warn({ manager: response.name, swarmNodeId: info?.swarm.nodeId }, 'a manager of this swarm no longer lists this node (removed while away?)');
    }
  }

  /** The swarm this engine is in, or (while pending) trying to reach: the one it last joined or created. */
  function ownSwarmId(): string | null {
    if (selfSwarm) return selfSwarm.id;
    return info?.swarm.state === 'pending' ? persisted.joined?.id ?? null : null;
  }

  async function countUserTasks(): Promise<number | null> {
    try {
      if (docker.runningServiceContainers) return await docker.runningServiceContainers();
      if (info?.swarm.nodeId) return await docker.runningTasksOnNode(info.swarm.nodeId);
    } catch (err) {
      log.debug({ code: (err as PiswarmError).code }, 'cannot count user tasks');
    }
    return null;
  }

  // ----------------------------------------------------------------- peers
  const helloBody = (): HelloRequest => {
    const b: HelloRequest = { v: 1, nodeId: identity.nodeId, name: identity.name, addr: address?.address ?? '0.0.0.0', port };
    if ((info?.swarm.state === 'active' || info?.swarm.state === 'pending') && info.swarm.nodeId) b.swarmNodeId = info.swarm.nodeId;
    return b;
  };

  /** Seed keys (`seed:host:port`) that answered, and the node each turned out to be. */
  const resolvedSeeds = new Map<string, string>();

  function candidates(now: number): Candidate[] {
    const out = new Map<string, Candidate>();
    const covered = new Set<string>();
    const add = (c: Candidate) => {
      if (c.nodeId === identity.nodeId || selfKeys.has(c.key)) return;
      if (address && c.addr === address.address && c.port === port) return;
      const id = c.nodeId ?? resolvedSeeds.get(c.key);
      if (id !== undefined && covered.has(id)) return;
      out.set(c.key, c);
      if (id !== undefined) covered.add(id);
    };
    for (const c of deps.discovery?.candidates() ?? []) add(c);
    for (const c of seedCandidates(config.discovery.seeds, port, now)) add(c);
    // Callers that proved the key are hints too, unless already known another way.
    for (const c of inbound.values()) add(c);
    // Confirmed peers are re-confirmed at their last known address even when
    // their advert is gone: liveness comes from HTTP only.
    for (const p of peers.values()) add({ key: p.nodeId, nodeId: p.nodeId, addr: p.addr, port: p.port, source: p.source, advert: null, seenAt: now });
    return [...out.values()];
  }

  /** Says hello to the candidates that are due; `everyPeer`: to every confirmed peer now, too. */
  async function confirm(now: number, everyPeer = false): Promise<void> {
    const client = deps.peerClient!;
    const forming = phase !== 'member' && phase !== 'manager';
    const interval = forming ? config.formation.tickMs : config.discovery.confirmIntervalMs;
    const due = candidates(now).filter((c) => {
      const id = c.nodeId ?? resolvedSeeds.get(c.key);
      if (everyPeer && id !== undefined && peers.has(id)) return true;
      const a = attempts.get(c.key);
      if (!a) return true;
      const wait = a.failures === 0 ? interval : Math.min(30_000, interval * 2 ** Math.min(a.failures, 5));
      return now - a.lastTry >= wait;
    });
    const live = new Set(candidates(now).map((c) => c.key));
    for (const k of attempts.keys()) if (!live.has(k)) attempts.delete(k);
    await Promise.all(
      due.map(async (c) => {
        const a = attempts.get(c.key) ?? { lastTry: 0, failures: 0 };
        a.lastTry = now;
        attempts.set(c.key, a);
        try {
          const expected = c.nodeId ?? resolvedSeeds.get(c.key) ?? null;
          const { nodeId, response } = await client.hello({ addr: c.addr, port: c.port, nodeId: expected }, helloBody(), abort.signal);
          if (nodeId === identity.nodeId) {
            selfKeys.add(c.key);
            return;
          }
          a.failures = 0;
          if (c.source === 'seed') resolvedSeeds.set(c.key, nodeId);
          const prev = peers.get(nodeId);
          const rec: PeerRecord = {
            nodeId,
            name: response.name,
            // The answer is signed: its address is the one the peer chose, not
            // whichever of its interfaces we happened to reach.
            addr: response.addr,
            port: response.port,
            source: c.source,
            state: response,
            confirmedAt: clock.now(),
            phaseSince: prev?.state?.phase === response.phase ? prev.phaseSince : clock.now(),
            lastError: null,
          };
          peers.set(nodeId, rec);
          noteListing(response);
          if (response.swarm) rememberSwarm(response.swarm.id, response.swarm.createdAt, false);
          for (const id of response.seenSwarms) rememberSwarm(id, null, false);
        } catch (err) {
          a.failures++;
          counters.helloFailures++;
          const code = isPiswarmError(err) ? err.code : 'error';
          const p = c.nodeId ? peers.get(c.nodeId) : undefined;
          if (p) p.lastError = code;
          log.debug({ candidate: c.key, addr: c.addr, code, detail: (err as Error).message }, 'peer not confirmed');
        }
      }),
    );
    for (const [id, p] of peers) if (p.confirmedAt !== null && clock.now() - p.confirmedAt > config.discovery.peerTtlMs) {
      peers.delete(id);
      log.info({ peer: id, addr: p.addr }, 'peer forgotten (no authenticated answer within peerTtlMs)');
    }
    for (const [k, c] of inbound) if (clock.now() - c.seenAt > config.discovery.peerTtlMs) inbound.delete(k);
    const key = [...peers.keys()].sort().join(',');
    if (key !== peerSetKey) {
      peerSetKey = key;
      stableSince = clock.now();
    }
  }

  const confirmedPeerStates = (): PeerState[] =>
    [...peers.values()].filter((p) => p.state).map((p) => ({ nodeId: p.nodeId, addr: p.addr, port: p.port, phase: p.state!.phase, phaseSince: p.phaseSince, swarm: p.state!.swarm, seenSwarms: p.state!.seenSwarms }));

  // ------------------------------------------------------------------ acts
  const swarmAddrs = () => ({ advertiseAddr: address!.address, listenAddr: joinHostPort(address!.address, SWARM_PORT), dataPathAddr: address!.address });

  async function doInit(d: Extract<Decision, { action: 'init' }>): Promise<void> {
    if (clock.now() < nextInitAt) return; // backing off after a failed init, still in this node's turn
    if (d.takeover) {
      // A takeover acts on peer states up to a tick old: ask every confirmed
      // peer now and decide again, so a swarm that appeared meanwhile is joined, not doubled.
      await confirm(clock.now(), true);
      const again = decide(electionInput(), port);
      if (again.action !== 'init') {
        log.info({ why: again.reason }, 'takeover called off: the peers answered otherwise');
        return;
      }
    }
    setPhase('initialising', d.reason);
    deps.discovery?.publish({ addr: address!.address, port, role: 'initialising', swarmId: null });
    // Last look before the irreversible step: a restart may have raced us.
    const fresh = await docker.info();
    if (fresh.swarm.state !== 'inactive') {
      log.warn({ state: fresh.swarm.state }, 'engine already in a swarm: not initialising');
      return;
    }
    try {
      // The engine answers swarm init with this node's id, not the swarm's.
      const swarmNodeId = await docker.swarmInit(swarmAddrs());
      counters.inits++;
      initFailures = 0;
      const created = await createdSwarm();
      if (created) {
        if (created.createdAt) createdAtById.set(created.id, created.createdAt);
        rememberSwarm(created.id, created.createdAt, true);
      }
      log.info({ swarmId: created?.id ?? null, swarmNodeId, rank: d.rank, why: d.reason }, 'created the swarm');
    } catch (err) {
      counters.initFailures++;
      // Not every tick: back off within the turn; the rule ends the turn after initDeadlineMs.
      const delay = backoffMs(initFailures++, config.formation.tickMs, Math.max(config.formation.tickMs, config.formation.initDeadlineMs / 4), random());
      nextInitAt = clock.now() + delay;
      const code = isPiswarmError(err) ? err.code : 'error';
      log.warn({ code, detail: (err as Error).message, retryInMs: delay }, 'swarm init failed');
      setPhase('initialising', `swarm init failed (${code}); retrying in ${delay} ms while it is this node's turn`);
      await readEngine();
    }
  }

  /** The swarm this engine just created: its real id (swarm inspect, else docker info), or null (the next tick's readEngine learns it). */
  async function createdSwarm(): Promise<{ id: string; createdAt: string | null } | null> {
    try {
      const d = await docker.swarmInspect();
      return { id: d.id, createdAt: d.createdAt };
    } catch (err) {
      log.debug({ code: isPiswarmError(err) ? err.code : 'error' }, 'swarm inspect after init failed');
    }
    const id = (await docker.info().catch(() => null))?.swarm.clusterId ?? null;
    return id ? { id, createdAt: null } : null;
  }

  /** A decision other than init: this node's turn to create the swarm, if it had one, is over. */
  function endInitTurn(d: Decision): void {
    if (initFailures > 0 && d.action === 'wait') {
      log.warn({ failures: initFailures, why: d.reason }, 'swarm init kept failing for this node\'s whole turn; the next in rank takes over');
    }
    initFailures = 0;
    nextInitAt = 0;
  }

  async function doJoin(d: Extract<Decision, { action: 'join' }>, now: number): Promise<void> {
    if (now < nextJoinAt) return;
    setPhase('joining', d.reason);
    const client = deps.peerClient!;
    const req: GrantRequest = { v: 1, nodeId: identity.nodeId, name: identity.name, addr: address!.address };
    for (const target of d.via) {
      if (abort.signal.aborted) return;
      let grant;
      try {
        grant = await client.grant({ addr: target.addr, port: target.port, nodeId: target.nodeId }, req, abort.signal);
      } catch (err) {
        log.debug({ via: target.addr, code: isPiswarmError(err) ? err.code : 'error' }, 'grant refused or failed');
        continue;
      }
      if (grant.swarmId !== d.swarmId) {
        log.debug({ via: target.addr, expected: d.swarmId, got: grant.swarmId }, 'grant is for another swarm');
        continue;
      }
      // The engine joins through the first address only (and, before Docker
      // 27, dials it again when promoted): make it the manager that just
      // answered, the one address known to be alive.
      const granting = grant.managerAddrs.find((a) => hostOf(a) === target.addr);
      const remoteAddrs = granting ? [granting, ...grant.managerAddrs.filter((a) => a !== granting)] : [...grant.managerAddrs];
      try {
        const engineState = d.leaveFirst ? (await docker.info()).swarm.state : 'inactive';
        if (engineState === 'active' || engineState === 'pending') {
          if (d.rejoin) log.warn({ swarmId: d.swarmId, via: target.addr, why: d.reason }, 'leaving the swarm to join it again through a live manager');
          else log.warn({ from: selfSwarm?.id, to: d.swarmId }, 'leaving the losing swarm of a split');
          await docker.swarmLeave(true);
          if (d.rejoin) bump(counters.rejoins, d.rejoin);
          else counters.leaves++;
        }
        await docker.swarmJoin({ ...swarmAddrs(), remoteAddrs, joinToken: grant.token });
      } catch (err) {
        // A join that timed out may still have succeeded: ask the engine
        // before trying again, or we would leave and re-join in a loop.
        const state = (await docker.info().catch(() => null))?.swarm.state;
        if (state === undefined) {
          // The engine cannot say whether that join went through: asking the
          // next manager now would be retrying blind. Back off and ask again.
          log.warn({ via: target.addr, code: (err as PiswarmError).code }, 'swarm join failed and the engine cannot say whether it joined; backing off');
          break;
        }
        if (state !== 'active' && state !== 'pending') {
          log.warn({ via: target.addr, code: (err as PiswarmError).code, detail: (err as Error).message }, 'swarm join failed');
          continue;
        }
        log.info({ via: target.addr, state }, 'swarm join reported an error but the engine is in the swarm');
      }
      counters.joins++;
      joinAttempt = 0;
      rememberSwarm(d.swarmId, grant.createdAt, true, remoteAddrs[0] ?? null);
      pinnedSince = null;
      removedSince = null;
      log.info({ swarmId: d.swarmId, via: target.addr, joinAddr: remoteAddrs[0] }, 'joined the swarm');
      return;
    }
    counters.joinFailures++;
    const delay = backoffMs(joinAttempt++, 500, config.formation.joinBackoffMaxMs, random());
    nextJoinAt = clock.now() + delay;
    setPhase('waiting', `no manager of ${d.swarmId} granted a join yet; retrying in ${delay} ms`);
  }

  /**
   * The Raft leader alone rotates the worker token, once the node list has
   * been quiet for rotateAfterMs after new nodes appeared in it (joins through
   * any manager count). Before, every manager that had issued a grant rotated:
   * a grant request replayed to three managers made three racing rotations.
   */
  async function managerDuties(now: number): Promise<void> {
    if (!selfLeader || lastJoinSeenAt === null || now - lastJoinSeenAt < config.formation.rotateAfterMs) return;
    lastJoinSeenAt = null;
    try {
      await docker.rotateWorkerToken();
      counters.rotations++;
      log.info('worker join token rotated after a burst of joins');
    } catch (err) {
      lastJoinSeenAt = now; // try again after another quiet period
      log.warn({ code: isPiswarmError(err) ? err.code : 'error', detail: (err as Error).message }, 'worker token rotation failed');
    }
  }

  // ------------------------------------------------------------------ tick
  /** The rule's input: the engine's view of this node (read by the last readEngine) and the confirmed peers. */
  function electionInput(): ElectionInput {
    return {
      self: {
        nodeId: identity.nodeId,
        engine: info!.swarm.state,
        swarm: selfSwarm,
        seenSwarms: persisted.seenSwarms.map((s) => s.id),
        pinnedTo: pinnedSince !== null && clock.now() - pinnedSince >= (deps.pinSettleMs ?? PIN_SETTLE_MS) ? pinnedJoinAddr() : null,
        unlisted: removedSince !== null && clock.now() - removedSince >= (deps.pinSettleMs ?? PIN_SETTLE_MS),
        pendingSwarm: info!.swarm.state === 'pending' ? ownSwarmId() : null,
      },
      peers: confirmedPeerStates(),
      now: clock.now(),
      stableSince,
      expect: config.formation.expect,
      holdOffMs: effectiveHoldOffMs(config.formation),
      initDeadlineMs: config.formation.initDeadlineMs,
    };
  }

  async function tick(): Promise<void> {
    if (!enabled) return;
    const now = clock.now();
    if (!address) {
      try {
        address = deps.address();
        log.info({ address: address.address, iface: address.interface, why: address.reason }, 'advertise address chosen');
        addressCheckedAt = now;
      } catch (err) {
        setPhase('discovering', isPiswarmError(err) ? err.message : 'no address yet');
        return;
      }
    } else if (deps.interfaces && now - addressCheckedAt >= config.discovery.addressRecheckMs) {
      addressCheckedAt = now;
      recheckAddress(address, deps.interfaces, now);
    }
    await readEngine();
    if (!info) {
      setPhase('degraded', `the Docker engine does not answer (${engineError})`);
      return;
    }
    deps.discovery?.publish({ addr: address.address, port, role: advertRole(), swarmId: selfSwarm?.id ?? null });
    await confirm(now);
    // The split rule needs to know whether this node runs user services.
    if (selfSwarm && confirmedPeerStates().some((p) => p.swarm && p.swarm.id !== selfSwarm!.id)) selfSwarm.runningTasks = await countUserTasks();
    const d = decide(electionInput(), port);
    if ('split' in d && d.split && !(lastDecision && 'split' in lastDecision && lastDecision.split)) {
      counters.splits++;
      log.warn({ swarms: d.split.swarms, winner: d.split.winner }, 'split swarm detected');
    }
    lastDecision = d;
    noteElection(d);
    if (d.action !== 'init') endInitTurn(d);
    switch (d.action) {
      case 'member':
        setPhase(d.phase, d.reason);
        if (selfSwarm?.role === 'manager') await managerDuties(clock.now());
        break;
      case 'wait':
        setPhase(d.phase, d.reason);
        break;
      case 'init':
        await doInit(d);
        await readEngine();
        break;
      case 'join':
        await doJoin(d, clock.now());
        await readEngine();
        break;
    }
    if (selfSwarm) deps.discovery?.publish({ addr: address.address, port, role: advertRole(), swarmId: selfSwarm.id });
    // Kept once the swarm exists (while electing, `why` changes every tick: no card writes for that).
    if (selfSwarm && lastElection && JSON.stringify(persisted.election ?? null) !== JSON.stringify(lastElection)) {
      persisted.election = lastElection;
      store.save(persisted);
    }
  }

  /**
   * Reports, never repairs: the address went to Docker at init or join and to
   * the gossip peers at start, and the engine keeps it; a restart re-chooses
   * for piswarm, the swarm side is the operator's call (README troubleshooting).
   */
  function recheckAddress(inUse: AddressChoice, interfaces: () => InterfaceTable, now: number): void {
    let table: InterfaceTable;
    try {
      table = interfaces();
    } catch (err) {
      log.debug({ err: { message: (err as Error).message } }, 'interfaces cannot be read; advertise address not re-checked');
      return;
    }
    const d = addressDrift(inUse, table, deps.address);
    if (d && (!drift || drift.now?.address !== d.now?.address)) {
      if (!drift) counters.addressLosses++;
      log.warn({ code: 'PISWARM_ERR_ADDRESS_CHANGED', address: inUse.address, now: d.now?.address ?? null, iface: d.now?.interface ?? null }, d.why);
      drift = { ...d, since: drift?.since ?? now };
    } else if (!d && drift) {
      log.info({ address: inUse.address, after: Math.round((now - drift.since) / 1000) }, 'the advertise address is this host\'s again');
      drift = null;
    }
  }

  /** Keeps the election's winner and reason; `at` moves only when they change. */
  function noteElection(d: Decision): void {
    const e = d.action === 'init' ? { winner: identity.nodeId, rank: d.rank, why: d.reason } : d.action === 'wait' && d.rank ? { winner: d.winner, rank: d.rank, why: d.reason } : null;
    if (!e || (lastElection && lastElection.winner === e.winner && lastElection.why === e.why && lastElection.rank.join() === e.rank.join())) return;
    lastElection = { ...e, at: new Date(clock.now()).toISOString() };
  }

  function schedule(delayMs = config.formation.tickMs): void {
    if (stopped) return;
    timer = clock.setTimeout(() => {
      running = tick()
        .catch((err) => log.error({ code: (err as PiswarmError).code, detail: (err as Error).message }, 'formation tick failed'))
        .finally(() => {
          running = null;
          schedule();
        });
    }, delayMs);
  }

  // ---------------------------------------------------------------- server
  const grantSource = async (): Promise<GrantSource> => {
    const i = await docker.info();
    if (!i.swarm.isManager) throw new PiswarmError('PISWARM_ERR_NOT_MANAGER');
    const d = await docker.swarmInspect();
    const managerAddrs = i.swarm.remoteManagers.map((m) => m.addr).slice(0, 16);
    if (managerAddrs.length === 0 && address) managerAddrs.push(joinHostPort(address.address, SWARM_PORT));
    return { swarmId: d.id, createdAt: d.createdAt, managerAddrs, workerToken: d.workerToken };
  };

  const peerView = (p: PeerRecord): PeerView => ({
    nodeId: p.nodeId,
    name: p.name,
    addr: p.addr,
    port: p.port,
    phase: p.state?.phase ?? 'unknown',
    source: p.source,
    swarmId: p.state?.swarm?.id ?? null,
    role: p.state?.swarm?.role ?? null,
    confirmedAt: p.confirmedAt === null ? null : new Date(p.confirmedAt).toISOString(),
    lastError: p.lastError,
  });

  const status = (): FormationStatus => {
    const d = lastDecision;
    const split = d && 'split' in d && d.split ? { swarms: d.split.swarms, winner: d.split.winner, action: d.reason } : null;
    return {
      enabled,
      nodeId: identity.nodeId,
      name: identity.name,
      address: address?.address ?? null,
      phase,
      reason,
      swarm: selfSwarm ? { id: selfSwarm.id, role: selfSwarm.role, createdAt: selfSwarm.createdAt } : null,
      confirmedPeers: [...peers.values()].map(peerView),
      election: lastElection,
      split,
      seenSwarms: persisted.seenSwarms.map((s) => s.id),
      foreignClusters: (deps.discovery?.foreign() ?? []).map((f) => ({ clusterId: f.clusterId, addr: f.addr, lastSeen: new Date(f.lastSeen).toISOString() })),
      timeline: [...timeline],
    };
  };

  const routes = createPeerRoutes({
    keys,
    identity,
    windowMs: config.formation.authWindowMs,
    replay,
    self: createSelfAddressing({ nodeId: identity.nodeId, name: identity.name, port, advertised: () => address?.address ?? null, now: () => clock.now(), ...(deps.interfaces ? { interfaces: deps.interfaces } : {}) }),
    now: () => clock.now(),
    nonce: () => randomBytes(16).toString('base64url'),
    iv: () => randomBytes(12),
    hello: (req, remote) => {
      // An inbound hello is a hint (the caller holds the key); it becomes a
      // peer only once our own hello to it is answered.
      if (req.nodeId !== identity.nodeId && !peers.has(req.nodeId)) {
        inbound.set(req.nodeId, { key: req.nodeId, nodeId: req.nodeId, addr: req.addr, port: req.port, source: 'inbound', advert: null, seenAt: clock.now() });
        log.debug({ peer: req.nodeId, remote }, 'inbound hello');
      }
      return {
        v: 1,
        nodeId: identity.nodeId,
        name: identity.name,
        addr: address?.address ?? '0.0.0.0',
        port,
        phase: phase === 'disabled' ? 'discovering' : phase,
        swarm: selfSwarm,
        seenSwarms: persisted.seenSwarms.map((s) => s.id).slice(-16),
        ...listing(req.swarmNodeId),
      };
    },
    grantSource,
    onGrantIssued: (joiner) => {
      counters.grantsIssued++;
      log.info({ joiner: joiner.nodeId, name: joiner.name, addr: joiner.addr }, 'join grant issued');
    },
    status,
    peers: () => [...peers.values()].map(peerView),
    nodes: async () => {
      const i = await docker.info();
      if (!i.swarm.isManager) {
        const managers = i.swarm.remoteManagers.map((m) => m.addr.replace(/:\d+$/, '')).join(', ');
        throw new PiswarmError('PISWARM_ERR_NOT_MANAGER', `this node is not a swarm manager; ask a manager${managers ? ` (${managers})` : ''}`);
      }
      return (await docker.listNodes()).map((n) => ({ id: n.id, hostname: n.hostname, role: n.role, state: n.state, availability: n.availability, addr: n.addr, leader: n.leader, reachability: n.reachability }));
    },
    authFailure: (r) => bump(counters.authFailures, r),
    grantRefused: (r) => bump(counters.grantsRefused, r),
  });

  const collector: Collector = {
    name: 'formation',
    collect(): MetricFamily[] {
      const c = (name: string, help: string, value: number): MetricFamily => ({ name, help, type: 'counter', samples: [{ value }] });
      const byLabel = (m: Map<string, number>, label: string) => [...m.entries()].map(([k, v]) => ({ labels: { [label]: k }, value: v }));
      const dropped: Record<string, number> = deps.discovery?.dropped() ?? {};
      const mdnsErrors = deps.discovery?.socket?.().errors;
      return [
        {
          name: 'piswarm_formation_phase',
          help: 'Formation phase of this node (state set: 1 for the current phase)',
          type: 'gauge',
          samples: (['discovering', 'candidate', 'waiting', 'initialising', 'joining', 'member', 'manager', 'degraded', 'disabled'] as const).map((p) => ({ labels: { phase: p }, value: p === phase ? 1 : 0 })),
        },
        { name: 'piswarm_formation_confirmed_peers', help: 'Peers confirmed over authenticated HTTP', type: 'gauge', samples: [{ value: peers.size }] },
        { name: 'piswarm_formation_phase_seconds', help: 'Seconds since the last phase change', type: 'gauge', samples: [{ value: Math.max(0, (clock.now() - phaseSince) / 1000) }] },
        c('piswarm_formation_elections_total', 'Times the peer set became a candidate set for the first-manager election', counters.elections),
        c('piswarm_formation_inits_total', 'Swarms created by this node', counters.inits),
        c('piswarm_formation_init_failures_total', 'swarm init calls that failed', counters.initFailures),
        c('piswarm_formation_joins_total', 'Swarms joined by this node', counters.joins),
        c('piswarm_formation_join_failures_total', 'Join rounds in which no manager granted a join', counters.joinFailures),
        c('piswarm_formation_split_leaves_total', 'Losing split swarms this node left', counters.leaves),
        c('piswarm_formation_splits_detected_total', 'Times two swarms of this cluster were seen', counters.splits),
        {
          name: 'piswarm_formation_rejoins_total',
          help: 'Times this node left its own swarm to join it again, by reason: join-manager-gone (Docker < 27, moby PR #47854) or pruned (removed while away)',
          type: 'counter',
          samples: (['join-manager-gone', 'pruned'] as const).map((r) => ({ labels: { reason: r }, value: counters.rejoins.get(r) ?? 0 })),
        },
        c('piswarm_formation_grants_issued_total', 'Join grants issued by this node', counters.grantsIssued),
        { name: 'piswarm_formation_grants_refused_total', help: 'Join grant requests refused (every one, bodies that are not JSON included), by reason', type: 'counter', samples: byLabel(counters.grantsRefused, 'reason') },
        c('piswarm_formation_token_rotations_total', 'Worker join token rotations after a burst of joins', counters.rotations),
        {
          name: 'piswarm_advertise_address_stale',
          help: 'Whether the address this node advertises (and gave Docker) is no longer an address of this host, e.g. after a DHCP change: 1 while it is gone',
          type: 'gauge',
          samples: [{ value: drift ? 1 : 0 }],
        },
        c('piswarm_advertise_address_losses_total', 'Times the advertise address stopped being an address of this host', counters.addressLosses),
        c('piswarm_peer_hello_failures_total', 'Outbound peer confirmations that failed', counters.helloFailures),
        { name: 'piswarm_peer_auth_failures_total', help: 'Inbound peer requests refused, by reason', type: 'counter', samples: byLabel(counters.authFailures, 'reason') },
        {
          name: 'piswarm_discovery_adverts_dropped_total',
          help: 'mDNS adverts dropped, by reason',
          type: 'counter',
          samples: Object.entries(dropped).filter(([r]) => r !== 'self').map(([r, v]) => ({ labels: { reason: r }, value: v })),
        },
        { name: 'piswarm_discovery_candidates', help: 'Peer candidates from mDNS and seeds (unconfirmed hints)', type: 'gauge', samples: [{ value: enabled ? candidates(clock.now()).length : 0 }] },
        {
          name: 'piswarm_discovery_mdns_errors_total',
          help: 'mDNS socket errors, by reason: bind (UDP 5353 cannot be bound, e.g. another responder holds it), send',
          type: 'counter',
          samples: MDNS_ERROR_KINDS.map((r) => ({ labels: { reason: r }, value: mdnsErrors?.[r] ?? 0 })),
        },
      ];
    },
  };

  const healthChecks: HealthCheck[] = [
    {
      name: 'swarm:formation',
      run(): CheckResult[] {
        const base = { componentType: 'system', observedValue: phase, time: new Date(clock.now()).toISOString() };
        if (!enabled) {
          const why = deps.disabledReason
            ? `formation is off: ${deps.disabledReason}`
            : keys === null
              ? 'formation is off: no cluster key (set clusterKeyFile to a file holding the shared key, the same on every node)'
              : 'formation is off (formation.enabled=false)';
          return [{ ...base, status: 'warn', output: why }];
        }
        if (phase === 'member' || phase === 'manager') return [{ ...base, status: 'pass' }];
        if (phase === 'degraded') return [{ ...base, status: 'warn', output: reason }];
        if (clock.now() - phaseSince > FORMING_WARN_MS) return [{ ...base, status: 'warn', output: `still ${phase} after ${Math.round((clock.now() - phaseSince) / 1000)} s: ${reason}` }];
        return [{ ...base, status: 'pass', output: reason }];
      },
    },
    {
      name: 'discovery:peers',
      run(): CheckResult[] {
        const base = { componentType: 'system', observedValue: peers.size, observedUnit: 'peers', time: new Date(clock.now()).toISOString() };
        const foreign = deps.discovery?.foreign() ?? [];
        const wrong = counters.authFailures.get('wrong_cluster') ?? 0;
        if (foreign.length > 0) {
          const list = foreign.slice(0, 5).map((f) => `${f.clusterId} at ${f.addr}`).join(', ');
          return [{ ...base, status: 'warn', output: `adverts of another piswarm cluster are seen (${list}): those nodes hold a different cluster key. If they should be in this cluster, give them this cluster's key; if this node is the odd one out, fix its clusterKeyFile` }];
        }
        if (wrong > 0) return [{ ...base, status: 'warn', output: `${wrong} peer requests came from another cluster (different cluster key)` }];
        const stale = counters.authFailures.get('stale') ?? 0;
        if (stale > 0 && peers.size === 0) {
          // A Pi has no RTC: before NTP syncs its clock can be hours off, and
          // every signed request looks stale to its peers.
          return [{ ...base, status: 'warn', output: `${stale} peer requests were refused as stale: clocks differ by more than ${config.formation.authWindowMs / 1000} s; check time sync on every node (timedatectl)` }];
        }
        return [{ ...base, status: 'pass' }];
      },
    },
    {
      name: 'net:address',
      run(): CheckResult[] {
        const time = new Date(clock.now()).toISOString();
        if (!address) return [{ componentType: 'system', time, status: 'pass', observedValue: null, output: enabled ? 'no advertise address chosen yet' : 'formation is off: no advertise address is used' }];
        if (!drift) return [{ componentType: 'system', time, status: 'pass', observedValue: address.address }];
        const output =
          `${drift.why}, since ${new Date(drift.since).toISOString()}. Peers and the swarm still use ${address.address}. ${ADDRESS_FIX}`;
        return [{ componentType: 'system', time, status: 'warn', observedValue: address.address, output }];
      },
    },
    {
      // Only while the mDNS socket cannot bind its port: the agent runs on, discovering through seeds and hellos.
      name: 'discovery:mdns',
      run(): CheckResult[] {
        const time = new Date(clock.now()).toISOString();
        const u = deps.discovery?.socket?.().unbound;
        if (!u) return [{ componentType: 'component', time, status: 'pass', ...(deps.discovery?.socket ? {} : { output: 'mDNS discovery is off (discovery.mdns=false or no cluster key)' }) }];
        const output =
          `mDNS cannot bind UDP ${u.port} (${u.code}) since ${new Date(u.since).toISOString()}: another program holds it, so peers are found only through ` +
          `discovery.seeds and the peers that say hello first; piswarm doctor names the program. ${MDNS_PORT_FIX}`;
        return [{ componentType: 'component', observedValue: u.code, time, status: 'warn', output }];
      },
    },
  ];

  return {
    async start() {
      if (!enabled) {
        log.warn({ reason }, 'formation is off');
        return;
      }
      stopped = false;
      log.info({ nodeId: identity.nodeId, expect: config.formation.expect, holdOffMs: effectiveHoldOffMs(config.formation) }, 'formation starting');
      schedule(0);
    },
    async stop() {
      stopped = true;
      abort.abort();
      if (timer !== null) clock.clearTimeout(timer);
      timer = null;
      if (running) await Promise.race([running, new Promise((r) => setTimeout(r, 2000))]);
      await deps.discovery?.stop();
      await deps.peerClient?.close().catch((err: unknown) => log.debug({ err: { message: (err as Error).message } }, 'peer client close failed'));
    },
    routes,
    collector,
    healthChecks,
    status,
    // Also between leaving and joining again, so the entry left behind is never promoted.
    joinAddress: () => (selfSwarm?.role === 'manager' ? null : pinnedJoinAddr()),
    tick,
  };
}
