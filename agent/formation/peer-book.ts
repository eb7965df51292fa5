import { errFields } from '../../shared/errors.js';
import type { HelloRequest, PeerView } from '../../shared/wire/peer.js';
import { seedCandidates, type Candidate } from '../discovery/discovery.js';
import { noteListing } from './engine-view.js';
import type { PeerState } from './rule.js';
import { rememberSwarm, type Attempt, type PeerRecord } from './state.js';
import type { FormationContext } from './types.js';

/**
 * The peer book: candidates (mDNS adverts, seeds, inbound hellos: unconfirmed
 * hints) become peers only once our own signed hello to them is answered.
 */

function helloBody(ctx: FormationContext): HelloRequest {
  const { identity, port } = ctx;
  const { address, info } = ctx.s;
  const b: HelloRequest = { v: 1, nodeId: identity.nodeId, name: identity.name, addr: address?.address ?? '0.0.0.0', port };
  if ((info?.swarm.state === 'active' || info?.swarm.state === 'pending') && info.swarm.nodeId) b.swarmNodeId = info.swarm.nodeId;
  return b;
}

export function candidates(ctx: FormationContext, now: number): Candidate[] {
  const { identity, port, s } = ctx;
  const out = new Map<string, Candidate>();
  const covered = new Set<string>();
  const add = (c: Candidate) => {
    if (c.nodeId === identity.nodeId || s.selfKeys.has(c.key)) return;
    if (s.address && c.addr === s.address.address && c.port === port) return;
    const id = c.nodeId ?? s.resolvedSeeds.get(c.key);
    if (id !== undefined && covered.has(id)) return;
    out.set(c.key, c);
    if (id !== undefined) covered.add(id);
  };
  for (const c of ctx.deps.discovery?.candidates() ?? []) add(c);
  for (const c of seedCandidates(ctx.config.discovery.seeds, port, now)) add(c);
  // Callers that proved the key are hints too, unless already known another way.
  for (const c of s.inbound.values()) add(c);
  // Confirmed peers are re-confirmed at their last known address even when
  // their advert is gone: liveness comes from HTTP only.
  for (const p of s.peers.values()) add({ key: p.nodeId, nodeId: p.nodeId, addr: p.addr, port: p.port, source: p.source, advert: null, seenAt: now });
  return [...out.values()];
}

/** Says hello to the candidates that are due; `everyPeer`: to every confirmed peer now, too. */
export async function confirm(ctx: FormationContext, now: number, everyPeer = false): Promise<void> {
  const due = dueCandidates(ctx, now, everyPeer);
  const live = new Set(candidates(ctx, now).map((c) => c.key));
  for (const k of ctx.s.attempts.keys()) if (!live.has(k)) ctx.s.attempts.delete(k);
  await Promise.all(due.map((c) => hello(ctx, c, now)));
  forgetSilent(ctx);
  const key = [...ctx.s.peers.keys()].sort().join(',');
  if (key !== ctx.s.peerSetKey) {
    ctx.s.peerSetKey = key;
    ctx.s.stableSince = ctx.clock.now();
  }
}

function dueCandidates(ctx: FormationContext, now: number, everyPeer: boolean): Candidate[] {
  const { s } = ctx;
  const forming = s.phase !== 'member' && s.phase !== 'manager';
  const interval = forming ? ctx.config.formation.tickMs : ctx.config.discovery.confirmIntervalMs;
  return candidates(ctx, now).filter((c) => {
    const id = c.nodeId ?? s.resolvedSeeds.get(c.key);
    if (everyPeer && id !== undefined && s.peers.has(id)) return true;
    const a = s.attempts.get(c.key);
    if (!a) return true;
    const wait = a.failures === 0 ? interval : Math.min(30_000, interval * 2 ** Math.min(a.failures, 5));
    return now - a.lastTry >= wait;
  });
}

async function hello(ctx: FormationContext, c: Candidate, now: number): Promise<void> {
  const { s } = ctx;
  const a: Attempt = s.attempts.get(c.key) ?? { lastTry: 0, failures: 0 };
  a.lastTry = now;
  s.attempts.set(c.key, a);
  try {
    const expected = c.nodeId ?? s.resolvedSeeds.get(c.key) ?? null;
    const { nodeId, response } = await ctx.deps.peerClient!.hello({ addr: c.addr, port: c.port, nodeId: expected }, helloBody(ctx), ctx.abort.signal);
    if (nodeId === ctx.identity.nodeId) {
      s.selfKeys.add(c.key);
      return;
    }
    a.failures = 0;
    if (c.source === 'seed') s.resolvedSeeds.set(c.key, nodeId);
    const prev = s.peers.get(nodeId);
    const rec: PeerRecord = {
      nodeId,
      name: response.name,
      // The answer is signed: its address is the one the peer chose, not
      // whichever of its interfaces we happened to reach.
      addr: response.addr,
      port: response.port,
      source: c.source,
      state: response,
      confirmedAt: ctx.clock.now(),
      phaseSince: prev?.state?.phase === response.phase ? prev.phaseSince : ctx.clock.now(),
      lastError: null,
    };
    s.peers.set(nodeId, rec);
    noteListing(ctx, response);
    if (response.swarm) rememberSwarm(ctx, response.swarm.id, response.swarm.createdAt, false);
    for (const id of response.seenSwarms) rememberSwarm(ctx, id, null, false);
  } catch (err) {
    a.failures++;
    s.counters.helloFailures++;
    const { code, detail } = errFields(err);
    const p = c.nodeId ? s.peers.get(c.nodeId) : undefined;
    if (p) p.lastError = code;
    ctx.log.debug({ candidate: c.key, addr: c.addr, code, detail }, 'peer not confirmed');
  }
}

/** Peers and inbound hints with no authenticated answer within peerTtlMs are dropped. */
function forgetSilent(ctx: FormationContext): void {
  const { s, clock } = ctx;
  const ttl = ctx.config.discovery.peerTtlMs;
  for (const [id, p] of s.peers) if (p.confirmedAt !== null && clock.now() - p.confirmedAt > ttl) {
    s.peers.delete(id);
    ctx.log.info({ peer: id, addr: p.addr }, 'peer forgotten (no authenticated answer within peerTtlMs)');
  }
  for (const [k, c] of s.inbound) if (clock.now() - c.seenAt > ttl) s.inbound.delete(k);
}

/** The confirmed peers as the rule sees them. */
export const confirmedPeerStates = (ctx: FormationContext): PeerState[] =>
  [...ctx.s.peers.values()].filter((p) => p.state).map((p) => ({ nodeId: p.nodeId, addr: p.addr, port: p.port, phase: p.state!.phase, phaseSince: p.phaseSince, swarm: p.state!.swarm, seenSwarms: p.state!.seenSwarms }));

export const peerView = (p: PeerRecord): PeerView => ({
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
