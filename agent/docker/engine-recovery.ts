import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Logger } from '../log/logger.js';
import type { Subsystem } from '../lifecycle/subsystem.js';
import type { Collector } from '../metrics/types.js';
import type { EngineInfo } from './engine.js';
import type { EngineMonitor, EngineSample } from './monitor.js';

/**
 * Engine states a restart of dockerd repairs and nothing the agent can do
 * through the API does. moby PR #47854 (see pinsJoinAddress; present in
 * Debian bookworm's docker.io 20.10, fixed in trixie's 26.1.5): a
 * worker promoted after the manager it first joined through is gone retries
 * that dead address forever ("can't initialize raft node"); the engine API
 * cannot even demote it ("can't find manager in raft memberlist"). A restarted
 * dockerd has forgotten the join address and joins Raft through the managers
 * it knows.
 */
export const RESTARTABLE = /can't initialize raft node/i;

/**
 * The same "can't initialize raft node" with a manager's refusal "node X was
 * removed from swarm" (X this node) is not that bug: a manager demoted by the
 * autopilot while it was away, then removed as dead before its engine got its
 * worker certificate (seen in the fault campaign on 26.1.5, and reproduced by
 * hand: demote, reconnect, `docker node rm` once the engine has stepped
 * down). dockerd restarts its swarm node every few seconds and `docker info`
 * answers only now and then. A dockerd restart cannot repair it: the refusal
 * comes from the managers' store, which restarting this node does not change
 * (reasoned, not tried; the state is a race). `docker swarm leave --force`
 * and a new join repair it (formation's rule,
 * decideError).
 */
const REMOVED = /node (\S+) was removed from swarm/i;

/**
 * Whether the engine says the swarm removed this very node. An engine in
 * that error names no node id of its own (`docker info` NodeID is empty, seen
 * on 26.1.5), so the caller passes the id the engine last named; the refusal
 * must name that id. With no id known at all (an agent started after the
 * engine fell into the error), the refusal is still the managers' answer to
 * this engine's own requests, and is taken as about this node.
 */
export function removedFromSwarm(swarm: Pick<EngineInfo['swarm'], 'state' | 'nodeId' | 'error'>, lastNodeId: string | null = null): boolean {
  if (swarm.state !== 'error') return false;
  const m = REMOVED.exec(swarm.error ?? '');
  const id = swarm.nodeId ?? lastNodeId;
  return m !== null && (id === null || m[1] === id);
}

/**
 * The first release of each engine line that no longer pins the join
 * address: a worker promoted after the manager it joined through died joins
 * Raft through a live manager (moby PR #47854, in 27.0; its 26.1 backport
 * #47870). Each entry was checked by behaviour on the simulated cluster
 * (test/integration/healing/join-address.test.ts, run on every simulated
 * OS): 26.1.5 (Debian trixie's docker.io, so Raspberry Pi OS trixie's) joins
 * Raft without leaving first, after its first attempt may have failed on the
 * dead address and the engine restarted its swarm node (about 45 s); 20.10.24
 * (bookworm's) pins for good. Lines or patch
 * releases not listed (23.0, 24.0, 25.0, 26.0, 26.1.0-26.1.4) were not run
 * here and count as affected.
 */
const FIXED_FROM: ReadonlyArray<readonly [major: number, minor: number, patch: number]> = [[26, 1, 5], [27, 0, 0]];

/**
 * Whether an engine of this version keeps the address it joined through and,
 * promoted, dials only that one to join Raft. The engine's own advice is the
 * workaround piswarm applies on such engines only: the worker leaves and
 * joins again, through a live manager (agent/formation/rule.ts). A wrong
 * "affected" costs one re-join; an unparseable version counts as fixed, so
 * nothing is done on a guess.
 */
export function pinsJoinAddress(serverVersion: string): boolean {
  const m = /^(\d+)\.(\d+)(?:\.(\d+))?/.exec(serverVersion.trim());
  if (!m) return false;
  const [major, minor, patch] = [Number(m[1]), Number(m[2]), Number(m[3] ?? 0)];
  if (major >= 27) return false;
  const line = FIXED_FROM.find(([a, b]) => a === major && b === minor);
  return !line || patch < line[2];
}

export const REQUEST_FILE = 'engine-restart.request';

export interface RecoveryPolicy {
  /** How long the engine must report the state before a restart is asked for (engines that pin their join address). */
  stuckMs: number;
  /**
   * The same on engines that do not pin (pinsJoinAddress false): they get
   * out by themselves, with the swarm restart they make after a failed
   * attempt, so a dockerd restart is only a last resort there. It stops every
   * container on the node (swarm mode runs without live-restore). With 30 s
   * on every engine, a CI run saw a worker promoted after the leader's power
   * cut on 26.1.5 refuse its published service for 7 s while its engine was
   * still on its way into Raft; such a restart is the likeliest cause.
   */
  fixedStuckMs: number;
  /**
   * On engines that pin: how long before a restart when the engine's failed
   * dial was to this node's join relay, refused (the relay was not listening
   * yet: dockerd and the agent start side by side at boot). 20.10 does not
   * dial again by itself (none within 30 s in the revoke test); restarted,
   * it dials the relay, which listens by then.
   */
  relayClosedMs: number;
  /** Least time between two requests. */
  minIntervalMs: number;
}

/** Why a restart is asked for: the pinned join address (moby#47854), or a dial to the join relay before it listened. */
export type RestartCause = 'pinned-join-address' | 'relay-was-closed';

/** Pure: the cause of a restartable error, given the join relay's address (null when it does not listen). */
export function restartCause(error: string, relayAddr: string | null): RestartCause {
  return relayAddr !== null && error.includes(`dial tcp ${relayAddr}: connect: connection refused`) ? 'relay-was-closed' : 'pinned-join-address';
}

// A restarted dockerd picks one of the managers it remembers, the dead one
// included, so one restart does not always do it (seen on the simulated
// cluster); systemd caps the attempts (StartLimitBurst in the .service).
// 180 s on fixed engines: past the 150 s the join-address test gives 26.1.5
// to join Raft by itself (its swarm restart backoff grows to 30 s).
export const DEFAULT_RECOVERY: RecoveryPolicy = { stuckMs: 30_000, fixedStuckMs: 180_000, relayClosedMs: 5_000, minIntervalMs: 60_000 };

export interface RecoveryState {
  /** When the engine started reporting a restartable error, or null. */
  stuckSince: number | null;
  lastRequestAt: number | null;
  /** The swarm node id the engine last named. */
  nodeId?: string | null;
  /**
   * In this spell of error, a manager refused the node as removed: the
   * engine alternates that refusal with "can't initialize raft node ...
   * connection refused" (a demoted manager's port), which alone would look
   * like moby#47854.
   */
  removed?: boolean;
}

/**
 * Pure: the next state, and whether to ask for a restart now. A sample the
 * engine did not answer says nothing either way: a stuck engine answers
 * `docker info` only now and then, and a restart count must not start over
 * at every unanswered one.
 */
export function decide(state: RecoveryState, sample: Pick<EngineSample, 'info'>, now: number, p: RecoveryPolicy, relayAddr: string | null = null): { state: RecoveryState; request: boolean; cause: RestartCause | null } {
  const info = sample.info;
  if (!info) return { state, request: false, cause: null };
  const sw = info.swarm;
  const nodeId = sw.nodeId ?? state.nodeId ?? null;
  const removed = sw.state === 'error' && (state.removed === true || removedFromSwarm(sw, nodeId));
  const stuck = sw.state === 'error' && RESTARTABLE.test(sw.error ?? '') && !removed;
  if (!stuck) return { state: { ...state, stuckSince: null, nodeId, removed }, request: false, cause: null };
  const since = state.stuckSince ?? now;
  const pins = pinsJoinAddress(info.serverVersion);
  const cause = restartCause(sw.error ?? '', relayAddr);
  const wait = !pins ? p.fixedStuckMs : cause === 'relay-was-closed' ? p.relayClosedMs : p.stuckMs;
  const due = now - since >= wait && (state.lastRequestAt === null || now - state.lastRequestAt >= p.minIntervalMs);
  return { state: { stuckSince: due ? null : since, lastRequestAt: due ? now : state.lastRequestAt, nodeId, removed }, request: due, cause };
}

/**
 * Watches the engine samples and, when one of the states above persists,
 * asks systemd (piswarm-engine-restart.path, running as root) to restart
 * dockerd by creating a request file in the state directory.
 */
export function engineRecovery(deps: {
  monitor: Pick<EngineMonitor, 'onSample'>;
  log: Logger;
  stateDir: string;
  /** The join relay's address while it listens (agent/formation/join-relay.ts). */
  relayAddress?: () => string | null;
  policy?: RecoveryPolicy;
  now?: () => number;
  writeRequest?: (path: string, text: string) => void;
}): Subsystem {
  const log = deps.log.child({ mod: 'engine-recovery' });
  const policy = deps.policy ?? DEFAULT_RECOVERY;
  const now = deps.now ?? Date.now;
  const write = deps.writeRequest ?? ((p, t) => writeFileSync(p, t, { mode: 0o600 }));
  let state: RecoveryState = { stuckSince: null, lastRequestAt: null };
  let requests = 0;
  let failures = 0;
  let active = false;
  deps.monitor.onSample((sample) => {
    if (!active) return;
    const d = decide(state, sample, now(), policy, deps.relayAddress?.() ?? null);
    if (d.state.stuckSince !== null && state.stuckSince === null) {
      log.warn({ error: sample.info?.swarm.error, cause: d.cause }, d.cause === 'relay-was-closed'
        ? 'the engine dialled its join relay before the agent listened and does not dial again by itself; a dockerd restart makes it'
        : 'engine stuck in a state only a dockerd restart repairs (moby#47854); waiting before asking for one');
    }
    state = d.state;
    if (!d.request) return;
    const file = join(deps.stateDir, REQUEST_FILE);
    try {
      write(file, `${new Date(now()).toISOString()} ${sample.info?.swarm.error ?? ''}\n`);
      requests++;
      log.warn({ file, error: sample.info?.swarm.error, cause: d.cause }, 'asked systemd to restart the Docker Engine');
    } catch (err) {
      failures++;
      log.error({ file, code: (err as NodeJS.ErrnoException).code }, 'cannot write the engine restart request');
    }
  });
  const collector: Collector = {
    name: 'engine-recovery',
    collect: () => [
      { name: 'piswarm_engine_restart_requests_total', help: 'Docker Engine restarts the agent asked systemd for (moby#47854 recovery).', type: 'counter', samples: [{ value: requests }] },
      { name: 'piswarm_engine_restart_request_failures_total', help: 'Restart requests that could not be written.', type: 'counter', samples: [{ value: failures }] },
    ],
  };
  return {
    name: 'engine-recovery',
    collectors: [collector],
    async start() { active = true; },
    async stop() { active = false; },
  };
}
