import { randomBytes } from 'node:crypto';
import type { FastifyPluginAsync } from 'fastify';
import { PiswarmError } from '../../shared/errors.js';
import type { FormationStatus, HelloRequest, HelloResponse } from '../../shared/wire/peer.js';
import { joinHostPort } from '../net/address.js';
import { ReplayCache } from '../peers/protocol.js';
import { createPeerRoutes, type GrantSource } from '../peers/routes.js';
import { createSelfAddressing } from '../peers/self-addressing.js';
import { listing } from './engine-view.js';
import { peerView } from './peer-book.js';
import { bump } from './state.js';
import { SWARM_PORT, type FormationContext } from './types.js';

/** The peer API's callbacks (agent/peers/routes.ts), answered from the state and the engine. */

async function grantSource(ctx: FormationContext): Promise<GrantSource> {
  const i = await ctx.docker.info();
  if (!i.swarm.isManager) throw new PiswarmError('PISWARM_ERR_NOT_MANAGER');
  const d = await ctx.docker.swarmInspect();
  const managerAddrs = i.swarm.remoteManagers.map((m) => m.addr).slice(0, 16);
  if (managerAddrs.length === 0 && ctx.s.address) managerAddrs.push(joinHostPort(ctx.s.address.address, SWARM_PORT));
  return { swarmId: d.id, createdAt: d.createdAt, managerAddrs, workerToken: d.workerToken };
}

export function formationStatus(ctx: FormationContext): FormationStatus {
  const { s, identity } = ctx;
  const d = s.lastDecision;
  const split = d && 'split' in d && d.split ? { swarms: d.split.swarms, winner: d.split.winner, action: d.reason } : null;
  return {
    enabled: ctx.enabled,
    nodeId: identity.nodeId,
    name: identity.name,
    address: s.address?.address ?? null,
    phase: s.phase,
    reason: s.reason,
    swarm: s.selfSwarm ? { id: s.selfSwarm.id, role: s.selfSwarm.role, createdAt: s.selfSwarm.createdAt } : null,
    confirmedPeers: [...s.peers.values()].map(peerView),
    election: s.lastElection,
    split,
    seenSwarms: s.persisted.seenSwarms.map((x) => x.id),
    foreignClusters: (ctx.deps.discovery?.foreign() ?? []).map((f) => ({ clusterId: f.clusterId, addr: f.addr, lastSeen: new Date(f.lastSeen).toISOString() })),
    timeline: [...s.timeline],
  };
}

function answerHello(ctx: FormationContext, req: HelloRequest, remote: string): HelloResponse {
  const { s, identity } = ctx;
  // An inbound hello is a hint (the caller holds the key); it becomes a
  // peer only once our own hello to it is answered.
  if (req.nodeId !== identity.nodeId && !s.peers.has(req.nodeId)) {
    s.inbound.set(req.nodeId, { key: req.nodeId, nodeId: req.nodeId, addr: req.addr, port: req.port, source: 'inbound', advert: null, seenAt: ctx.clock.now() });
    ctx.log.debug({ peer: req.nodeId, remote }, 'inbound hello');
  }
  return {
    v: 1,
    nodeId: identity.nodeId,
    name: identity.name,
    addr: s.address?.address ?? '0.0.0.0',
    port: ctx.port,
    phase: s.phase === 'disabled' ? 'discovering' : s.phase,
    swarm: s.selfSwarm,
    seenSwarms: s.persisted.seenSwarms.map((x) => x.id).slice(-16),
    ...listing(ctx, req.swarmNodeId),
  };
}

async function listSwarmNodes(ctx: FormationContext) {
  const i = await ctx.docker.info();
  if (!i.swarm.isManager) {
    const managers = i.swarm.remoteManagers.map((m) => m.addr.replace(/:\d+$/, '')).join(', ');
    throw new PiswarmError('PISWARM_ERR_NOT_MANAGER', `this node is not a swarm manager; ask a manager${managers ? ` (${managers})` : ''}`);
  }
  return (await ctx.docker.listNodes()).map((n) => ({ id: n.id, hostname: n.hostname, role: n.role, state: n.state, availability: n.availability, addr: n.addr, leader: n.leader, reachability: n.reachability }));
}

function unavailable(): never {
  throw new PiswarmError('PISWARM_ERR_UNAVAILABLE', 'on-demand reads are not wired on this node');
}

export function formationRoutes(ctx: FormationContext): FastifyPluginAsync {
  const { identity, config, clock, s } = ctx;
  return createPeerRoutes({
    keys: ctx.keys,
    identity,
    windowMs: config.formation.authWindowMs,
    replay: new ReplayCache(config.formation.authWindowMs * 2),
    self: createSelfAddressing({ nodeId: identity.nodeId, name: identity.name, port: ctx.port, advertised: () => s.address?.address ?? null, now: () => clock.now(), ...(ctx.deps.interfaces ? { interfaces: ctx.deps.interfaces } : {}) }),
    now: () => clock.now(),
    nonce: () => randomBytes(16).toString('base64url'),
    iv: () => randomBytes(12),
    hello: (req, remote) => answerHello(ctx, req, remote),
    grantSource: () => grantSource(ctx),
    onGrantIssued: (joiner) => {
      s.counters.grantsIssued++;
      ctx.log.info({ joiner: joiner.nodeId, name: joiner.name, addr: joiner.addr }, 'join grant issued');
    },
    status: () => formationStatus(ctx),
    peers: () => [...s.peers.values()].map(peerView),
    nodes: () => listSwarmNodes(ctx),
    checks: () => (ctx.deps.peerReads ?? unavailable()).checks(),
    services: () => (ctx.deps.peerReads ?? unavailable()).services(),
    ...(ctx.deps.release ? { release: ctx.deps.release } : {}),
    ...(ctx.deps.keyring ? { keyringStep: (a, r) => ctx.deps.keyring!.keyringStep!(a, r), rotate: (a, r) => ctx.deps.keyring!.rotate!(a, r), revoke: (a, r) => ctx.deps.keyring!.revoke!(a, r) } : {}),
    authFailure: (r) => bump(s.counters.authFailures, r),
    grantRefused: (r) => bump(s.counters.grantsRefused, r),
  });
}
