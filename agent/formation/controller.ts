import { errFields } from '../../shared/errors.js';
import { deriveClusterKeys } from '../identity/keys.js';
import { doInit, doJoin, endInitTurn, managerDuties } from './actions.js';
import { advertiseAddress } from './address.js';
import { nextQuiet } from './cadence.js';
import { countUserTasks, pinnedJoinAddr, readEngine } from './engine-view.js';
import { electionInput } from './input.js';
import { formationRoutes, formationStatus } from './peer-api.js';
import { confirm, confirmedPeerStates } from './peer-book.js';
import { relayManagers } from './relay-managers.js';
import { decide, effectiveHoldOffMs, type Decision } from './rule.js';
import { createFormationState, setPhase } from './state.js';
import { createFileFormationStore } from './store.js';
import { formationCollector, formationHealthChecks } from './telemetry.js';
import type { Formation, FormationContext, FormationDeps } from './types.js';

export { PIN_SETTLE_MS, type Clock, type Formation, type FormationDeps } from './types.js';

/**
 * Formation's controller: builds the context (nothing is read or opened
 * here but formation.json), and runs tick() on its timer between start()
 * and stop(). Each tick: address, engine, peers, the rule, one action.
 */
export function createFormation(deps: FormationDeps): Formation {
  const ctx = createFormationContext(deps);
  const loop = { timer: null as unknown, running: null as Promise<void> | null, stopped: false };
  const tick = () => runTick(ctx);

  function schedule(delayMs = ctx.config.formation.tickMs): void {
    if (loop.stopped) return;
    loop.timer = ctx.clock.setTimeout(() => {
      loop.running = tick()
        .catch((err) => ctx.log.error(errFields(err), 'formation tick failed'))
        .finally(() => {
          loop.running = null;
          schedule();
        });
    }, delayMs);
  }

  return {
    async start() {
      if (!ctx.enabled) {
        ctx.log.warn({ reason: ctx.s.reason }, 'formation is off');
        return;
      }
      loop.stopped = false;
      ctx.log.info({ nodeId: ctx.identity.nodeId, expect: ctx.config.formation.expect, holdOffMs: effectiveHoldOffMs(ctx.config.formation) }, 'formation starting');
      schedule(0);
    },
    async stop() {
      loop.stopped = true;
      ctx.abort.abort();
      if (loop.timer !== null) ctx.clock.clearTimeout(loop.timer);
      loop.timer = null;
      if (loop.running) await Promise.race([loop.running, new Promise((r) => setTimeout(r, 2000))]);
      await deps.discovery?.stop();
      await deps.peerClient?.close().catch((err: unknown) => ctx.log.debug(errFields(err), 'peer client close failed'));
    },
    routes: formationRoutes(ctx),
    collector: formationCollector(ctx),
    healthChecks: formationHealthChecks(ctx),
    status: () => formationStatus(ctx),
    // Also between leaving and joining again, so the entry left behind is never promoted.
    joinAddress: () => (ctx.s.selfSwarm?.role === 'manager' ? null : pinnedJoinAddr(ctx)),
    relayManagers: () => relayManagers(ctx),
    tick,
  };
}

/** The context every part is handed (exported so a part can be tested alone). */
export function createFormationContext(deps: FormationDeps): FormationContext {
  const { config, clock } = deps;
  const log = deps.log.child({ mod: 'formation' });
  const keys = deps.keys !== undefined ? deps.keys : config.clusterKey ? deriveClusterKeys(config.clusterKey) : null;
  const enabled = config.formation.enabled && keys !== null && deps.peerClient !== null && !deps.disabledReason;
  const store = deps.store ?? createFileFormationStore(config.stateDir, (err) => log.warn(errFields(err), 'formation state cannot be persisted'));
  const reason = enabled ? 'starting' : deps.disabledReason ?? (keys === null ? 'no cluster key configured' : 'formation.enabled is false');
  const s = createFormationState(store.load(), enabled ? 'discovering' : 'disabled', reason, clock.now());
  return {
    deps, config, docker: deps.docker, clock, identity: deps.identity, log, keys, enabled, store,
    random: deps.random ?? Math.random, port: config.http.port, abort: new AbortController(), s,
  };
}

async function runTick(ctx: FormationContext): Promise<void> {
  if (!ctx.enabled) return;
  const { s, clock, port } = ctx;
  const now = clock.now();
  const address = advertiseAddress(ctx, now);
  if (!address) return;
  await readEngine(ctx);
  if (!s.info) {
    s.quiet = nextQuiet(s.quiet, s, now);
    setPhase(ctx, 'degraded', `the Docker engine does not answer (${s.engineError})`);
    return;
  }
  ctx.deps.discovery?.publish({ addr: address.address, port, role: advertRole(ctx), swarmId: s.selfSwarm?.id ?? null });
  await confirm(ctx, now);
  // The split rule needs to know whether this node runs user services.
  if (s.selfSwarm && confirmedPeerStates(ctx).some((p) => p.swarm && p.swarm.id !== s.selfSwarm!.id)) s.selfSwarm.runningTasks = await countUserTasks(ctx);
  const d = decide(electionInput(ctx), port);
  noteDecision(ctx, d);
  await act(ctx, d);
  if (s.selfSwarm) ctx.deps.discovery?.publish({ addr: address.address, port, role: advertRole(ctx), swarmId: s.selfSwarm.id });
  s.quiet = nextQuiet(s.quiet, s, clock.now());
  // Kept once the swarm exists (while electing, `why` changes every tick: no card writes for that).
  if (s.selfSwarm && s.lastElection && JSON.stringify(s.persisted.election ?? null) !== JSON.stringify(s.lastElection)) {
    s.persisted.election = s.lastElection;
    ctx.store.save(s.persisted);
  }
}

function noteDecision(ctx: FormationContext, d: Decision): void {
  const { s } = ctx;
  if ('split' in d && d.split && !(s.lastDecision && 'split' in s.lastDecision && s.lastDecision.split)) {
    s.counters.splits++;
    ctx.log.warn({ swarms: d.split.swarms, winner: d.split.winner }, 'split swarm detected');
  }
  s.lastDecision = d;
  noteElection(ctx, d);
  if (d.action !== 'init') endInitTurn(ctx, d);
}

/** Keeps the election's winner and reason; `at` moves only when they change. */
function noteElection(ctx: FormationContext, d: Decision): void {
  const last = ctx.s.lastElection;
  const e = d.action === 'init' ? { winner: ctx.identity.nodeId, rank: d.rank, why: d.reason } : d.action === 'wait' && d.rank ? { winner: d.winner, rank: d.rank, why: d.reason } : null;
  if (!e || (last && last.winner === e.winner && last.why === e.why && last.rank.join() === e.rank.join())) return;
  ctx.s.lastElection = { ...e, at: new Date(ctx.clock.now()).toISOString() };
}

async function act(ctx: FormationContext, d: Decision): Promise<void> {
  switch (d.action) {
    case 'member':
      setPhase(ctx, d.phase, d.reason);
      if (ctx.s.selfSwarm?.role === 'manager') await managerDuties(ctx, ctx.clock.now());
      break;
    case 'wait':
      setPhase(ctx, d.phase, d.reason);
      break;
    case 'init':
      await doInit(ctx, d);
      await readEngine(ctx, true);
      break;
    case 'join':
      await doJoin(ctx, d, ctx.clock.now());
      await readEngine(ctx, true);
      break;
  }
}

const advertRole = (ctx: FormationContext) =>
  ctx.s.phase === 'initialising' ? 'initialising' : ctx.s.selfSwarm ? (ctx.s.selfSwarm.role === 'manager' ? 'manager' : 'worker') : 'none';
