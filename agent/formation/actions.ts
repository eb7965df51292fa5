import { errCode, errFields } from '../../shared/errors.js';
import type { GrantRequest } from '../../shared/wire/peer.js';
import type { OpenedGrant } from '../peers/client.js';
import { backoffMs } from '../lifecycle/backoff.js';
import { hostOf, joinHostPort } from '../net/address.js';
import { readEngine } from './engine-view.js';
import { electionInput } from './input.js';
import { confirm } from './peer-book.js';
import { decide, type Decision, type JoinTarget } from './rule.js';
import { bump, rememberSwarm, setPhase } from './state.js';
import { SWARM_PORT, type FormationContext } from './types.js';

/** The steps that change the engine: create the swarm, join one, and the leader's token rotation. */

const swarmAddrs = (ctx: FormationContext) => {
  const a = ctx.s.address!.address;
  return { advertiseAddr: a, listenAddr: joinHostPort(a, SWARM_PORT), dataPathAddr: a };
};

export async function doInit(ctx: FormationContext, d: Extract<Decision, { action: 'init' }>): Promise<void> {
  const { s, clock, docker, log } = ctx;
  if (clock.now() < s.nextInitAt) return; // backing off after a failed init, still in this node's turn
  if (d.takeover && !(await takeoverStands(ctx))) return;
  setPhase(ctx, 'initialising', d.reason);
  ctx.deps.discovery?.publish({ addr: s.address!.address, port: ctx.port, role: 'initialising', swarmId: null });
  // Last look before the irreversible step: a restart may have raced us.
  const fresh = await docker.info({ patient: true });
  if (fresh.swarm.state !== 'inactive') {
    log.warn({ state: fresh.swarm.state }, 'engine already in a swarm: not initialising');
    return;
  }
  try {
    // The engine answers swarm init with this node's id, not the swarm's.
    const swarmNodeId = await docker.swarmInit(swarmAddrs(ctx));
    s.counters.inits++;
    s.initFailures = 0;
    const created = await createdSwarm(ctx);
    if (created) {
      if (created.createdAt) s.createdAtById.set(created.id, created.createdAt);
      rememberSwarm(ctx, created.id, created.createdAt, true);
    }
    log.info({ swarmId: created?.id ?? null, swarmNodeId, rank: d.rank, why: d.reason }, 'created the swarm');
  } catch (err) {
    await initFailed(ctx, err);
  }
}

/**
 * A takeover acts on peer states up to a tick old: ask every confirmed peer
 * now and decide again, so a swarm that appeared meanwhile is joined, not doubled.
 */
async function takeoverStands(ctx: FormationContext): Promise<boolean> {
  await confirm(ctx, ctx.clock.now(), true);
  const again = decide(electionInput(ctx), ctx.port);
  if (again.action === 'init') return true;
  ctx.log.info({ why: again.reason }, 'takeover called off: the peers answered otherwise');
  return false;
}

/** Not every tick: back off within the turn; the rule ends the turn after initDeadlineMs. */
async function initFailed(ctx: FormationContext, err: unknown): Promise<void> {
  const { s, config } = ctx;
  s.counters.initFailures++;
  const delay = backoffMs(s.initFailures++, config.formation.tickMs, Math.max(config.formation.tickMs, config.formation.initDeadlineMs / 4), ctx.random());
  s.nextInitAt = ctx.clock.now() + delay;
  const { code, detail } = errFields(err);
  ctx.log.warn({ code, detail, retryInMs: delay }, 'swarm init failed');
  setPhase(ctx, 'initialising', `swarm init failed (${code}); retrying in ${delay} ms while it is this node's turn`);
  await readEngine(ctx, true);
}

/** The swarm this engine just created: its real id (swarm inspect, else docker info), or null (the next tick's readEngine learns it). */
export async function createdSwarm(ctx: FormationContext): Promise<{ id: string; createdAt: string | null } | null> {
  try {
    const d = await ctx.docker.swarmInspect();
    return { id: d.id, createdAt: d.createdAt };
  } catch (err) {
    ctx.log.debug({ code: errCode(err) }, 'swarm inspect after init failed');
  }
  const id = (await ctx.docker.info().catch(() => null))?.swarm.clusterId ?? null;
  return id ? { id, createdAt: null } : null;
}

/**
 * A decision other than init: this node's turn to create the swarm, if it
 * had one, is over. After failed inits it ends one of two ways, both right:
 * the turn runs out first (wait: the next in rank takes over), or the next
 * in rank, whose clock said the turn was over a little sooner, has already
 * created the swarm and this node joins it.
 */
export function endInitTurn(ctx: FormationContext, d: Decision): void {
  if (ctx.s.initFailures > 0 && d.action === 'wait') {
    ctx.log.warn({ failures: ctx.s.initFailures, why: d.reason }, 'swarm init kept failing for this node\'s whole turn; the next in rank takes over');
  } else if (ctx.s.initFailures > 0 && d.action === 'join') {
    ctx.log.warn({ failures: ctx.s.initFailures, why: d.reason }, 'swarm init kept failing on this node; another node created the swarm and this one joins it');
  }
  ctx.s.initFailures = 0;
  ctx.s.nextInitAt = 0;
}

type JoinDecision = Extract<Decision, { action: 'join' }>;

export async function doJoin(ctx: FormationContext, d: JoinDecision, now: number): Promise<void> {
  const { s, identity } = ctx;
  if (now < s.nextJoinAt) return;
  setPhase(ctx, 'joining', d.reason);
  const req: GrantRequest = { v: 1, nodeId: identity.nodeId, name: identity.name, addr: s.address!.address };
  for (const target of d.via) {
    if (ctx.abort.signal.aborted) return;
    const grant = await askGrant(ctx, d, target, req);
    if (!grant) continue;
    // The engine joins through the first address only (and, before Docker
    // 27, dials it again when promoted): make it the manager that just
    // answered, the one address known to be alive.
    const granting = grant.managerAddrs.find((a) => hostOf(a) === target.addr);
    const managers = granting ? [granting, ...grant.managerAddrs.filter((a) => a !== granting)] : [...grant.managerAddrs];
    // Through the join relay when it listens: the engine then keeps this
    // node's own relay as the address it dials when promoted, and the relay
    // forwards to a manager that is alive (agent/formation/join-relay.ts).
    const relay = ctx.deps.joinRelay;
    const relayAddr = relay?.address() ?? null;
    const remoteAddrs = relayAddr ? [relayAddr] : managers;
    relay?.joining(managers);
    let joined: Awaited<ReturnType<typeof joinThrough>>;
    try {
      joined = await joinThrough(ctx, d, target, remoteAddrs, grant.token);
    } finally {
      relay?.joining(null);
    }
    if (joined === 'stop') break;
    if (joined === 'next') continue;
    s.counters.joins++;
    s.joinAttempt = 0;
    rememberSwarm(ctx, d.swarmId, grant.createdAt, true, remoteAddrs[0] ?? null);
    s.pinnedSince = null;
    s.removedSince = null;
    ctx.log.info({ swarmId: d.swarmId, via: target.addr, joinAddr: remoteAddrs[0] }, 'joined the swarm');
    return;
  }
  s.counters.joinFailures++;
  const delay = backoffMs(s.joinAttempt++, 500, ctx.config.formation.joinBackoffMaxMs, ctx.random());
  s.nextJoinAt = ctx.clock.now() + delay;
  setPhase(ctx, 'waiting', `no manager of ${d.swarmId} granted a join yet; retrying in ${delay} ms`);
}

/** A join grant from `target` for the decided swarm, or null (refused, failed, or another swarm's). */
async function askGrant(ctx: FormationContext, d: JoinDecision, target: JoinTarget, req: GrantRequest): Promise<OpenedGrant | null> {
  let grant: OpenedGrant;
  try {
    grant = await ctx.deps.peerClient!.grant({ addr: target.addr, port: target.port, nodeId: target.nodeId }, req, ctx.abort.signal);
  } catch (err) {
    ctx.log.debug({ via: target.addr, code: errCode(err) }, 'grant refused or failed');
    return null;
  }
  if (grant.swarmId !== d.swarmId) {
    ctx.log.debug({ via: target.addr, expected: d.swarmId, got: grant.swarmId }, 'grant is for another swarm');
    return null;
  }
  return grant;
}

/** Leaves first when the rule says so, then joins: 'joined', 'next' (try the next manager) or 'stop' (back off). */
async function joinThrough(ctx: FormationContext, d: JoinDecision, target: JoinTarget, remoteAddrs: string[], joinToken: string): Promise<'joined' | 'next' | 'stop'> {
  const { docker, log, s } = ctx;
  // Until the leave went through, a pending, active or failed engine is the
  // old membership, not a join that reported an error.
  let stale = d.leaveFirst;
  try {
    const engineState = d.leaveFirst ? (await docker.info({ patient: true })).swarm.state : 'inactive';
    if (engineState === 'active' || engineState === 'pending' || engineState === 'error') {
      if (d.rejoin) log.warn({ swarmId: d.swarmId, via: target.addr, why: d.reason }, 'leaving the swarm to join it again through a live manager');
      else log.warn({ from: s.selfSwarm?.id, to: d.swarmId }, 'leaving the losing swarm of a split');
      await docker.swarmLeave(true);
      if (d.rejoin) bump(s.counters.rejoins, d.rejoin);
      else s.counters.leaves++;
    }
    stale = false;
    await docker.swarmJoin({ ...swarmAddrs(ctx), remoteAddrs, joinToken });
    return 'joined';
  } catch (err) {
    // A join that timed out may still have succeeded: ask the engine
    // before trying again, or we would leave and re-join in a loop.
    if (stale) {
      log.warn({ via: target.addr, ...errFields(err) }, 'could not leave the stale swarm state before joining; backing off');
      return 'stop';
    }
    const state = (await docker.info({ patient: true }).catch(() => null))?.swarm.state;
    if (state === undefined) {
      // The engine cannot say whether that join went through: asking the
      // next manager now would be retrying blind. Back off and ask again.
      log.warn({ via: target.addr, code: errCode(err) }, 'swarm join failed and the engine cannot say whether it joined; backing off');
      return 'stop';
    }
    if (state !== 'active' && state !== 'pending') {
      log.warn({ via: target.addr, ...errFields(err) }, 'swarm join failed');
      return 'next';
    }
    log.info({ via: target.addr, state }, 'swarm join reported an error but the engine is in the swarm');
    return 'joined';
  }
}

/**
 * The Raft leader alone rotates the worker token, once the node list has
 * been quiet for rotateAfterMs after new nodes appeared in it (joins through
 * any manager count). Before, every manager that had issued a grant rotated:
 * a grant request replayed to three managers made three racing rotations.
 */
export async function managerDuties(ctx: FormationContext, now: number): Promise<void> {
  const { s } = ctx;
  if (!s.selfLeader || s.lastJoinSeenAt === null || now - s.lastJoinSeenAt < ctx.config.formation.rotateAfterMs) return;
  s.lastJoinSeenAt = null;
  try {
    await ctx.docker.rotateWorkerToken();
    s.counters.rotations++;
    ctx.log.info('worker join token rotated after a burst of joins');
  } catch (err) {
    s.lastJoinSeenAt = now; // try again after another quiet period
    ctx.log.warn(errFields(err), 'worker token rotation failed');
  }
}
