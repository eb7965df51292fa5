import { errCode, isPiswarmError } from '../../shared/errors.js';
import type { HelloResponse } from '../../shared/wire/peer.js';
import type { EngineInfo, NodeListing } from '../docker/engine.js';
import { pinsJoinAddress, removedFromSwarm } from '../docker/engine-recovery.js';
import { hostOf, joinHostPort } from '../net/address.js';
import { engineMaxAgeMs } from './cadence.js';
import { keepManagers } from './relay-managers.js';
import { rememberSwarm } from './state.js';
import { SWARM_PORT, type FormationContext } from './types.js';

/** A manager re-reads its node list for hello answers at most this often... */
const NODE_LIST_REFRESH_MS = 5_000;
/** ...and answers `listsAsker` only from a list this fresh. */
const NODE_LIST_FRESH_MS = 15_000;

/**
 * Reads the engine into the state: `docker info`, and the swarm this node is
 * in (selfSwarm). `fresh` after a step that changed the engine (init, join):
 * the engine monitor's sample from before the step would be stale.
 */
export async function readEngine(ctx: FormationContext, fresh = false): Promise<void> {
  const s = ctx.s;
  const sample = await engineSample(ctx, fresh);
  s.info = sample.info;
  s.engineError = sample.errorCode;
  if (!s.info) {
    s.selfSwarm = null;
    return;
  }
  const sw = s.info.swarm;
  if (sw.nodeId) noteNodeId(ctx, sw.nodeId);
  s.removedRefusal = sw.state === 'error' && (s.removedRefusal || removedFromSwarm(sw, s.engineNodeId));
  if (sw.state !== 'active') {
    s.selfSwarm = null;
    s.pinnedSince = null;
    // A pending engine keeps what the managers said of it: an engine whose
    // node was removed while it was off stays pending for good, and that
    // word is the only way out (noteListing, the rule's pending branch).
    if (sw.state !== 'pending') s.removedSince = null;
    return;
  }
  const id = swarmIdOf(ctx, sw);
  if (!id) {
    s.selfSwarm = null;
    return;
  }
  const createdAt = await swarmCreatedAt(ctx, sw, id);
  const managerAddrs = sw.remoteManagers.map((m) => m.addr).slice(0, 16);
  recordManagerSwarm(ctx, sw, createdAt);
  keepManagers(ctx, id, managerAddrs);
  trackPin(ctx, sw, id);
  await refreshListedIds(ctx, sw.isManager);
  s.selfSwarm = { id, createdAt, role: sw.isManager ? 'manager' : 'worker', nodes: sw.isManager ? sw.nodes : null, managerAddrs, runningTasks: s.selfSwarm?.id === id ? s.selfSwarm.runningTasks : null };
  rememberSwarm(ctx, id, createdAt, false);
}

/** Keeps the swarm node id the engine names, in formation.json too: once in error it names none, even after a reboot. */
function noteNodeId(ctx: FormationContext, nodeId: string): void {
  const s = ctx.s;
  s.engineNodeId = nodeId;
  const joined = s.persisted.joined;
  if (s.info?.swarm.state === 'active' && joined && joined.nodeId !== nodeId) {
    joined.nodeId = nodeId;
    ctx.store.save(s.persisted);
  }
}

/**
 * The engine monitor's last sample when it is younger than half a tick, or
 * than the monitor's own period once this node is settled (cadence.ts), else
 * a new one; `docker info` when formation has no monitor.
 */
async function engineSample(ctx: FormationContext, fresh: boolean): Promise<{ info: EngineInfo | null; errorCode: string | null }> {
  const source = ctx.deps.engine;
  if (!source) {
    try {
      return { info: await ctx.docker.info(), errorCode: null };
    } catch (err) {
      return { info: null, errorCode: isPiswarmError(err) ? err.code : 'error' };
    }
  }
  const now = ctx.clock.now();
  const maxAge = engineMaxAgeMs(ctx.s.quiet, now, ctx.config.formation.tickMs, ctx.config.metrics.intervalMs);
  if (fresh || now - source.last().at >= maxAge) await source.refresh();
  const { info, errorCode } = source.last();
  return info ? { info, errorCode: null } : { info: null, errorCode: errorCode ?? 'error' };
}

/**
 * A worker's engine does not name its swarm: take it from the grant we
 * persisted, else from a confirmed manager whose address our engine lists.
 */
function swarmIdOf(ctx: FormationContext, sw: EngineInfo['swarm']): string | null {
  const managerSet = new Set(sw.remoteManagers.map((m) => m.addr));
  const viaManager = [...ctx.s.peers.values()].find((p) => p.state?.swarm?.role === 'manager' && managerSet.has(joinHostPort(p.addr, SWARM_PORT)))?.state?.swarm?.id;
  return sw.clusterId ?? ctx.s.persisted.joined?.id ?? viaManager ?? null;
}

async function swarmCreatedAt(ctx: FormationContext, sw: EngineInfo['swarm'], id: string): Promise<string | null> {
  const { persisted, createdAtById } = ctx.s;
  let createdAt = createdAtById.get(id) ?? (persisted.joined?.id === id ? persisted.joined.createdAt : null) ?? persisted.seenSwarms.find((x) => x.id === id)?.createdAt ?? null;
  if (sw.isManager && !createdAtById.has(id)) {
    try {
      const d = await ctx.docker.swarmInspect();
      createdAt = d.createdAt;
      createdAtById.set(id, d.createdAt);
    } catch (err) {
      ctx.log.debug({ code: errCode(err) }, 'swarm inspect failed');
    }
  }
  return createdAt;
}

/**
 * A manager's engine names its swarm: that is the truth about which swarm
 * this node is in (formation.json of releases before this fix holds the
 * creator's node id there instead).
 */
function recordManagerSwarm(ctx: FormationContext, sw: EngineInfo['swarm'], createdAt: string | null): void {
  const persisted = ctx.s.persisted;
  if (!sw.isManager || !sw.clusterId || persisted.joined?.id === sw.clusterId) return;
  ctx.log.info({ was: persisted.joined?.id ?? null, swarmId: sw.clusterId }, 'the swarm this node is in recorded from its engine');
  persisted.joined = { id: sw.clusterId, createdAt, joinAddr: persisted.joined?.joinAddr ?? null };
  ctx.store.save(persisted);
}

/**
 * A worker whose engine pins its join address (moby PR #47854: Docker 20.10 and any engine not checked; 26.1.5+ and 27+ do not pin)
 * and whose join manager is no longer among the swarm's managers: since
 * when. The engine's manager list lags a demotion by a heartbeat or two, so
 * the rule acts only after PIN_SETTLE_MS.
 */
export function trackPin(ctx: FormationContext, sw: EngineInfo['swarm'], id: string): void {
  const joinAddr = pinnedJoinAddr(ctx);
  const gone = !sw.isManager && joinAddr !== null && ctx.s.persisted.joined?.id === id && sw.remoteManagers.length > 0 &&
    !sw.remoteManagers.some((m) => hostOf(m.addr) === hostOf(joinAddr));
  if (!gone) ctx.s.pinnedSince = null;
  else if (ctx.s.pinnedSince === null) {
    ctx.s.pinnedSince = ctx.clock.now();
    ctx.log.info({ joinAddr, managers: sw.remoteManagers.map((m) => m.addr) }, 'the manager this worker joined through is no longer a manager; this engine would dial only it if promoted');
  }
}

/** The join address, when this engine pins it (null on engines with the fix, or when unknown). */
export function pinnedJoinAddr(ctx: FormationContext): string | null {
  const info = ctx.s.info;
  if (!info || !pinsJoinAddress(info.serverVersion)) return null;
  const joinAddr = ctx.s.persisted.joined?.joinAddr ?? null;
  // Joined through this agent's relay: whatever it dials reaches a live manager.
  if (joinAddr !== null && joinAddr === ctx.deps.joinRelay?.address()) return null;
  return joinAddr;
}

/**
 * The hello answer `listsAsker`. "No" only from a node list read after the
 * asker was first missed: a node that joined a moment ago is in the next
 * list, so only a node the swarm really dropped is ever told so.
 */
export function listing(ctx: FormationContext, askerId: string | undefined): { listsAsker?: boolean } {
  const { listedIds, missedAt } = ctx.s;
  if (askerId === undefined || listedIds === null || ctx.clock.now() - listedIds.at > NODE_LIST_FRESH_MS) return {};
  if (listedIds.ids.has(askerId)) {
    missedAt.delete(askerId);
    return { listsAsker: true };
  }
  const missed = missedAt.get(askerId);
  if (missed !== undefined && listedIds.at > missed) return { listsAsker: false };
  if (missed === undefined) {
    if (missedAt.size >= 256) missedAt.clear();
    missedAt.set(askerId, ctx.clock.now());
  }
  return {};
}

/** A manager's node ids, for the hello answer `listsAsker`; null on workers. */
export async function refreshListedIds(ctx: FormationContext, isManager: boolean): Promise<void> {
  const s = ctx.s;
  if (!isManager) {
    s.listedIds = null;
    s.selfLeader = false;
    s.lastJoinSeenAt = null;
    s.missedAt.clear();
    return;
  }
  const missPending = [...s.missedAt.values()].some((t) => s.listedIds === null || t >= s.listedIds.at);
  if (s.listedIds !== null && ctx.clock.now() - s.listedIds.at < NODE_LIST_REFRESH_MS && !missPending) return;
  try {
    const recent = missPending ? null : newerList(ctx);
    const nodes = recent?.nodes ?? (await ctx.docker.listNodes());
    const ids = new Set(nodes.map((n) => n.id));
    if (s.listedIds !== null && [...ids].some((id) => !s.listedIds!.ids.has(id))) s.lastJoinSeenAt = ctx.clock.now();
    s.listedIds = { at: recent?.at ?? ctx.clock.now(), ids };
    s.selfLeader = nodes.some((n) => n.leader && n.id === s.info?.swarm.nodeId);
  } catch (err) {
    ctx.log.debug({ code: errCode(err) }, 'node list for hello answers failed');
  }
}

/** The autopilot's list when newer than ours and younger than NODE_LIST_REFRESH_MS (a pending miss always lists afresh). */
function newerList(ctx: FormationContext): NodeListing | null {
  const r = ctx.deps.recentNodes?.() ?? null;
  return r && r.at > (ctx.s.listedIds?.at ?? -Infinity) && ctx.clock.now() - r.at < NODE_LIST_REFRESH_MS ? r : null;
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
export function noteListing(ctx: FormationContext, response: HelloResponse): void {
  const mine = ownSwarmId(ctx);
  if (response.listsAsker === undefined || response.swarm?.role !== 'manager' || mine === null || response.swarm.id !== mine) return;
  if (response.listsAsker) {
    if (ctx.s.removedSince !== null) ctx.log.info('a manager lists this node again');
    ctx.s.removedSince = null;
  } else if (ctx.s.removedSince === null) {
    ctx.s.removedSince = ctx.clock.now();
    ctx.log.warn({ manager: response.name, swarmNodeId: ctx.s.info?.swarm.nodeId }, 'a manager of this swarm no longer lists this node (removed while away?)');
  }
}

/** The swarm this engine is in, or (while pending or in error) trying to reach: the one it last joined or created. */
export function ownSwarmId(ctx: FormationContext): string | null {
  if (ctx.s.selfSwarm) return ctx.s.selfSwarm.id;
  const state = ctx.s.info?.swarm.state;
  return state === 'pending' || state === 'error' ? ctx.s.persisted.joined?.id ?? null : null;
}

/** The user tasks this node runs (the split rule keeps the swarm that runs services). */
export async function countUserTasks(ctx: FormationContext): Promise<number | null> {
  try {
    if (ctx.docker.runningServiceContainers) return await ctx.docker.runningServiceContainers();
    if (ctx.s.info?.swarm.nodeId) return await ctx.docker.runningTasksOnNode(ctx.s.info.swarm.nodeId);
  } catch (err) {
    ctx.log.debug({ code: errCode(err) }, 'cannot count user tasks');
  }
  return null;
}
