import type { PeerSwarm } from '../../shared/wire/peer.js';
import { joinHostPort } from '../net/address.js';
import { confirmedPeerStates } from './peer-book.js';
import { SWARM_PORT, type FormationContext } from './types.js';

/**
 * Where the join relay may forward outside a join (agent/formation/join-relay.ts),
 * in order, without repeats:
 *  1. the managers the engine names now;
 *  2. the managers this node's confirmed peers of the same swarm report (a
 *     peer that is a manager first, then the managers a peer names);
 *  3. the managers the engine last named, kept in formation.json.
 * An engine in error, or one that just started after a power cut, names no
 * manager; the agent then has only what it heard or kept. Without (3), the
 * relay of a node whose peers are gone (a revoked card, a partition) had no
 * one to forward to, and its engine never heard a manager say "removed",
 * which is what tells that apart from moby#47854 (a CI run, 2026-12-07).
 */
export function relayManagerList(engine: readonly string[], peers: ReadonlyArray<{ addr: string; swarm: PeerSwarm | null }>, swarmId: string | null, kept: readonly string[]): string[] {
  const same = swarmId === null ? [] : peers.filter((p) => p.swarm?.id === swarmId);
  const fromPeers = [
    ...same.filter((p) => p.swarm?.role === 'manager').map((p) => joinHostPort(p.addr, SWARM_PORT)),
    ...same.flatMap((p) => p.swarm?.managerAddrs ?? []),
  ];
  return [...new Set([...engine, ...fromPeers, ...kept])].slice(0, 16);
}

export function relayManagers(ctx: FormationContext): string[] {
  const s = ctx.s;
  const joined = s.persisted.joined;
  const engine = s.info?.swarm.remoteManagers.map((m) => m.addr) ?? [];
  return relayManagerList(engine, confirmedPeerStates(ctx), joined?.id ?? s.selfSwarm?.id ?? null, joined?.managers ?? []);
}

/** Keeps the managers an active engine names in formation.json, saving only a change of the set. */
export function keepManagers(ctx: FormationContext, swarmId: string, managers: readonly string[]): void {
  const joined = ctx.s.persisted.joined;
  if (!joined || joined.id !== swarmId || managers.length === 0) return;
  const next = [...managers].sort();
  if (JSON.stringify(next) === JSON.stringify([...(joined.managers ?? [])].sort())) return;
  joined.managers = next;
  ctx.store.save(ctx.s.persisted);
}
