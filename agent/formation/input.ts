import { confirmedPeerStates } from './peer-book.js';
import { ownSwarmId, pinnedJoinAddr } from './engine-view.js';
import { effectiveHoldOffMs, type ElectionInput } from './rule.js';
import { PIN_SETTLE_MS, type FormationContext } from './types.js';

/** The rule's input: the engine's view of this node (read by the last readEngine) and the confirmed peers. */
export function electionInput(ctx: FormationContext): ElectionInput {
  const { s, clock, config } = ctx;
  const settle = ctx.deps.pinSettleMs ?? PIN_SETTLE_MS;
  return {
    self: {
      nodeId: ctx.identity.nodeId,
      engine: s.info!.swarm.state,
      swarm: s.selfSwarm,
      seenSwarms: s.persisted.seenSwarms.map((x) => x.id),
      pinnedTo: s.pinnedSince !== null && clock.now() - s.pinnedSince >= settle ? pinnedJoinAddr(ctx) : null,
      unlisted: s.removedSince !== null && clock.now() - s.removedSince >= settle,
      lastSwarm: s.info!.swarm.state === 'pending' || s.info!.swarm.state === 'error' ? ownSwarmId(ctx) : null,
      removedByEngine: s.removedRefusal,
    },
    peers: confirmedPeerStates(ctx),
    now: clock.now(),
    stableSince: s.stableSince,
    expect: config.formation.expect,
    holdOffMs: effectiveHoldOffMs(config.formation),
    initDeadlineMs: config.formation.initDeadlineMs,
  };
}
