import { isPiswarmError } from '../../shared/errors.js';
import type { DockerEngine, SwarmNode, NodeListing } from '../docker/engine.js';
import type { EngineMonitor } from '../docker/monitor.js';
import type { CheckResult, HealthCheck } from '../health/types.js';
import type { Subsystem } from '../lifecycle/subsystem.js';
import { createTicker } from '../lifecycle/ticker.js';
import type { Logger } from '../log/logger.js';
import type { Membership } from '../membership/membership.js';
import { systemClock } from '../membership/clock.js';
import type { Member } from '../membership/types.js';
import type { Collector, MetricFamily } from '../metrics/types.js';
import { RefusalBackoff, classifyRefusal, executeStep, type RefusalReason } from './executor.js';
import { assess, lossAfterStep, lossOnLeadership, plan, quorum, type ActionKind, type ActionStep, type Assessment, type Step } from './planner.js';
import { buildView, observe, type AutopilotConfig, type ClusterView, type Observation } from './view.js';

export interface StepRecord {
  /** Clock time (ms) the step was taken. */
  at: number;
  step: ActionStep;
  outcome: 'done' | 'refused';
  refusal?: RefusalReason;
  engineMessage?: string;
  /** When refused: not retried before this time. */
  retryAt?: number;
}

export interface CreateAutopilotArgs {
  /** The whole config or just its `autopilot` section. */
  config: { autopilot: AutopilotConfig } | AutopilotConfig;
  log: Logger;
  docker: DockerEngine;
  /**
   * `last()`: the cached /info says whether this engine is a manager.
   * `onSample`, when given: an engine that answers as a manager again (after
   * an outage, as a manager's does while Raft elects a leader) is looked at
   * at once, not at the next tick.
   */
  monitor: Pick<EngineMonitor, 'last'> & Partial<Pick<EngineMonitor, 'onSample'>>;
  /** Gossip members, when the membership subsystem runs: an extra opinion on node health and the source of score metadata. */
  membership?: Pick<Membership, 'members'> | null;
  /** The membership's clock (its members' `stateChangedAt`); default agent/membership/clock.ts's systemClock. */
  memberClock?: () => number;
  now?: () => number;
  random?: () => number;
}

export type Autopilot = Subsystem & {
  /** One observation and, on the Raft leader, at most one step. Never throws; never overlaps itself. */
  tick(): Promise<void>;
  /** Steps taken or refused, oldest first (the last 100). */
  history(): StepRecord[];
  /** What the last tick saw (null before the first listing as a manager). */
  status(): AutopilotStatus;
  /** The engine's node list as the last tick took it (`at`: wall-clock ms); null when this node is not a manager that could list. */
  nodes(): NodeListing | null;
};

export interface AutopilotStatus {
  role: 'unknown' | 'not-manager' | 'follower' | 'leader';
  assessment: Assessment | null;
  /** The engine says the managers have no leader (quorum lost). */
  quorumLost: boolean;
  lastPlan: Step | null;
  lastStepAt: number | null;
}

const MESSAGES: Record<ActionKind, string> = {
  promote: 'autopilot promoted a node',
  demote: 'autopilot demoted a node',
  remove: 'autopilot removed a node',
  drain: 'autopilot drained a node',
  activate: 'autopilot activated a node',
};
const HISTORY_MAX = 100;
/** After a step the next tick comes this soon: one repair often takes two steps (demote the dead, promote a worker). */
export const FOLLOW_UP_MS = 1000;
/** A wait that ends by the clock is looked at again this long after it ends (the clocks of the tick and the plan differ by a little). */
const UNTIL_SLACK_MS = 100;

/**
 * The self-healing part of the agent (Consul autopilot for Docker Swarm:
 * moby#36207 and swarmkit#2369 leave promotion and dead-node cleanup to
 * operators). Every manager's agent observes the node list so a new leader
 * already knows how long each node has been down; only the Raft leader's
 * agent plans and acts, so there is no second election to get wrong.
 *
 * Wiring (agent/subsystems.ts): `createAutopilot({ config, log: log.child({ mod: 'autopilot' }), docker, monitor, membership })`
 * and push it into the parts after formation.
 */
export function createAutopilot(args: CreateAutopilotArgs): Autopilot {
  const cfg: AutopilotConfig = 'autopilot' in args.config ? args.config.autopilot : args.config;
  const { log, docker, monitor } = args;
  const now = args.now ?? Date.now;
  const backoff = new RefusalBackoff(cfg.backoffBaseMs, cfg.backoffMaxMs, args.random);

  let tracker = new Map<string, Observation>();
  let listed: NodeListing | null = null;
  const records: StepRecord[] = [];
  let state: AutopilotStatus = { role: 'unknown', assessment: null, quorumLost: false, lastPlan: null, lastStepAt: null };
  let lastWaitKey: string | null = null;

  const counters = {
    promotions: new Map<string, number>(),
    demotions: new Map<string, number>(),
    removals: new Map<string, number>(),
    availability: new Map<string, number>(), // "kind|reason"
    refusals: new Map<string, number>(), // "step|reason"
    tickErrors: new Map<string, number>(),
  };
  const bump = (m: Map<string, number>, k: string) => m.set(k, (m.get(k) ?? 0) + 1);

  // See ClusterView.managerLostAt: leadership moving here means the last leader was lost.
  let managerLostAt = -Infinity;
  const memberClock = args.memberClock ?? systemClock.now;

  /** Gossip members with `stateChangedAt` on this autopilot's clock. */
  function membersAt(t: number): Member[] {
    const list = args.membership?.members() ?? [];
    const m = memberClock();
    return list.map((x) => ({ ...x, stateChangedAt: t - (m - x.stateChangedAt) }));
  }

  /** Returns whether this node just became the deciding one. */
  function setRole(role: AutopilotStatus['role']): boolean {
    if (role === state.role) return false;
    if (role === 'leader') log.info({ from: state.role }, 'autopilot decides on this node (Raft leader)');
    else if (state.role === 'leader') log.info({ to: role }, 'autopilot idles: this node is no longer the Raft leader');
    else log.debug({ from: state.role, to: role }, 'autopilot role changed');
    state = { ...state, role };
    return role === 'leader';
  }

  function record(r: StepRecord): void {
    records.push(r);
    if (records.length > HISTORY_MAX) records.splice(0, records.length - HISTORY_MAX);
  }

  /** Whether the step was done (not refused). */
  async function act(step: ActionStep, view: ClusterView): Promise<boolean> {
    const at = now();
    const fields = { step: step.kind, node: step.nodeId, hostname: step.hostname, reason: step.reason, detail: step.detail };
    try {
      await executeStep(docker, step);
    } catch (err) {
      const r = classifyRefusal(err);
      const retryAt = backoff.refused(step, at);
      bump(counters.refusals, `${step.kind}|${r.reason}`);
      record({ at, step, outcome: 'refused', refusal: r.reason, engineMessage: r.engineMessage, retryAt });
      log.warn({ ...fields, refusal: r.reason, code: r.code, statusCode: r.statusCode, engineMessage: r.engineMessage, retryInMs: retryAt - at }, 'engine refused an autopilot step');
      return false;
    }
    backoff.succeeded(step);
    managerLostAt = lossAfterStep(managerLostAt, step, view);
    if (step.kind === 'promote') bump(counters.promotions, step.reason);
    else if (step.kind === 'demote') bump(counters.demotions, step.reason);
    else if (step.kind === 'remove') bump(counters.removals, step.reason);
    else bump(counters.availability, `${step.kind}|${step.reason}`);
    state = { ...state, lastStepAt: at };
    record({ at, step, outcome: 'done' });
    log.info(fields, MESSAGES[step.kind]);
    return true;
  }

  async function doTick(): Promise<void> {
    const info = monitor.last().info;
    if (!info) {
      setRole('unknown');
      return;
    }
    if (info.swarm.state !== 'active' || !info.swarm.isManager || !info.swarm.nodeId) {
      // What we saw as a manager goes stale while we are not one.
      tracker = new Map();
      listed = null;
      state = { ...state, assessment: null, quorumLost: false };
      setRole('not-manager');
      return;
    }
    let nodes: SwarmNode[];
    try {
      nodes = await docker.listNodes();
    } catch (err) {
      const code = isPiswarmError(err) ? err.code : 'PISWARM_ERR_INTERNAL';
      bump(counters.tickErrors, code);
      if (code === 'PISWARM_ERR_NOT_MANAGER') {
        tracker = new Map();
        listed = null;
        state = { ...state, assessment: null, quorumLost: false };
        setRole('not-manager');
        return;
      }
      const r = classifyRefusal(err);
      const quorumLost = r.reason === 'quorum';
      if (quorumLost && !state.quorumLost) log.error({ code, engineMessage: r.engineMessage }, 'swarm managers lost quorum; the autopilot never forces a new cluster');
      else log.debug({ code, engineMessage: r.engineMessage }, 'autopilot cannot list nodes');
      state = { ...state, quorumLost, assessment: quorumLost ? state.assessment : null };
      setRole('follower');
      // No leader yet (an election, most often): the one that wins lists again within a second.
      if (quorumLost) ticker.soon(FOLLOW_UP_MS);
      return;
    }
    const t = now();
    listed = { at: t, nodes };
    const members = membersAt(t);
    tracker = observe(tracker, nodes, members, t);
    const self = nodes.find((n) => n.id === info.swarm.nodeId);
    if (!self) log.debug({ nodeId: info.swarm.nodeId }, 'own node id missing from the node list');
    const becameLeader = setRole(self?.leader ? 'leader' : 'follower');
    let view = buildView({ selfId: info.swarm.nodeId, nodes, members, tracker, blocked: backoff.blocked(t), managerLostAt, now: t });
    if (becameLeader) {
      // Leadership moving here after a manager was lost marks that loss.
      managerLostAt = lossOnLeadership(managerLostAt, view);
      view = { ...view, managerLostAt };
    }
    const assessment = assess(view, cfg, t);
    const staleKey = assessment.staleMembers.join(',');
    if (staleKey !== (state.assessment?.staleMembers.join(',') ?? '') && staleKey !== '') {
      log.warn({ nodes: assessment.staleMembers, managers: assessment.managers, reachable: assessment.reachable }, 'a worker is still an unreachable Raft member: it counts against quorum');
    }
    state = { ...state, assessment, quorumLost: false };
    if (!self?.leader) return;

    const step = plan(view, cfg, t);
    state = { ...state, lastPlan: step };
    if (step === null) {
      if (lastWaitKey !== null) log.info(assessment, 'autopilot: swarm as planned');
      lastWaitKey = null;
      return;
    }
    if (step.kind === 'wait') {
      const key = `${step.reason}|${step.nodeId ?? ''}`;
      // Say it once when it starts, not every five seconds.
      if (key !== lastWaitKey) log.info({ reason: step.reason, node: step.nodeId, detail: step.detail }, 'autopilot waits');
      lastWaitKey = key;
      if (step.until !== undefined && Number.isFinite(step.until)) ticker.soon(step.until - t + UNTIL_SLACK_MS);
      return;
    }
    lastWaitKey = null;
    if (await act(step, view)) ticker.soon(FOLLOW_UP_MS);
  }

  const ticker = createTicker({
    intervalMs: cfg.intervalMs,
    run: doTick,
    enabled: () => cfg.enabled,
    onError: (err) => {
      // A bug in a tick must not stop the next one (or the agent).
      bump(counters.tickErrors, 'PISWARM_ERR_INTERNAL');
      log.error({ err }, 'autopilot tick failed');
    },
  });

  // An engine that answers as a manager again is looked at now: a manager's
  // engine answers nothing while Raft elects a leader, and the new leader's
  // agent would otherwise wait for its next tick (up to intervalMs).
  let wasManager = false;
  args.monitor.onSample?.((s) => {
    const manager = s.info?.swarm.state === 'active' && s.info.swarm.isManager;
    if (manager && !wasManager) ticker.soon(0);
    wasManager = manager;
  });

  const collector: Collector = {
    name: 'autopilot',
    collect: (): MetricFamily[] => {
      const a = state.assessment;
      const labelled = (m: Map<string, number>, key = 'reason') => [...m].map(([k, value]) => ({ labels: { [key]: k }, value }));
      const split = (m: Map<string, number>, first: string) =>
        [...m].map(([k, value]) => {
          const [x, reason] = k.split('|') as [string, string];
          return { labels: { [first]: x, reason }, value };
        });
      const fams: MetricFamily[] = [
        { name: 'piswarm_autopilot_leader', help: 'Whether this agent is the one deciding (its engine is the Raft leader).', type: 'gauge', samples: [{ value: state.role === 'leader' ? 1 : 0 }] },
        { name: 'piswarm_autopilot_promotions_total', help: 'Workers the autopilot promoted to manager, by reason.', type: 'counter', samples: labelled(counters.promotions) },
        { name: 'piswarm_autopilot_demotions_total', help: 'Managers the autopilot demoted to worker, by reason.', type: 'counter', samples: labelled(counters.demotions) },
        { name: 'piswarm_autopilot_removals_total', help: 'Nodes the autopilot removed from the swarm, by reason.', type: 'counter', samples: labelled(counters.removals) },
        { name: 'piswarm_autopilot_availability_changes_total', help: 'Nodes the autopilot drained or activated, by step and reason.', type: 'counter', samples: split(counters.availability, 'step') },
        { name: 'piswarm_autopilot_refusals_total', help: 'Steps the engine (or a last-moment guard) refused, by step and reason; each is retried later with backoff.', type: 'counter', samples: split(counters.refusals, 'step') },
        { name: 'piswarm_autopilot_tick_errors_total', help: 'Ticks that could not observe the swarm, by error code.', type: 'counter', samples: labelled(counters.tickErrors, 'code') },
      ];
      if (state.lastStepAt !== null) {
        fams.push({ name: 'piswarm_autopilot_last_step_timestamp_seconds', help: 'When the autopilot last changed the swarm (Unix time).', type: 'gauge', samples: [{ value: state.lastStepAt / 1000 }] });
      }
      if (a) {
        fams.push(
          { name: 'piswarm_autopilot_managers', help: 'Managers in the swarm, reachable or not.', type: 'gauge', samples: [{ value: a.managers }] },
          { name: 'piswarm_autopilot_managers_reachable', help: 'Managers the Raft group reports reachable.', type: 'gauge', samples: [{ value: a.reachable }] },
          { name: 'piswarm_autopilot_quorum_margin', help: 'Reachable managers minus the quorum: how many more managers may fail (negative: quorum lost).', type: 'gauge', samples: [{ value: a.reachable - a.quorum }] },
          { name: 'piswarm_autopilot_target_managers', help: 'Managers the autopilot aims for, by the healthy node count.', type: 'gauge', samples: [{ value: a.target }] },
          { name: 'piswarm_autopilot_stale_raft_members', help: 'Workers (by spec) the Raft group still lists as an unreachable member: each counts against quorum.', type: 'gauge', samples: [{ value: a.staleMembers.length }] },
        );
      }
      return fams;
    },
  };

  const check: HealthCheck = {
    name: 'swarm:managers',
    run: (): CheckResult[] => {
      const time = new Date(now()).toISOString();
      const base = { componentType: 'system', time } as const;
      if (!cfg.enabled) return [{ ...base, status: 'pass', observedValue: null, output: 'autopilot disabled' }];
      if (state.quorumLost) return [{ ...base, status: 'fail', observedValue: 0, output: 'the swarm has no leader: managers lost quorum; bring managers back (the autopilot never forces a new cluster)' }];
      const a = state.assessment;
      if (state.role === 'unknown') {
        // Before the first tick the engine sample already says whether this node is a manager at all.
        const sw = monitor.last().info?.swarm;
        if (!sw) return [{ ...base, status: 'warn', observedValue: null, output: 'unknown while the Docker engine does not answer' }];
        if (!sw.isManager) return [{ ...base, status: 'pass', observedValue: null, output: 'not a manager; the managers report this' }];
        return [{ ...base, status: 'pass', observedValue: null, output: 'a manager; first autopilot assessment pending' }];
      }
      if (!a) return [{ ...base, status: 'pass', observedValue: null, output: 'not a manager; the managers report this' }];
      const r = { ...base, observedValue: a.reachable, observedUnit: 'managers' };
      if (a.reachable < a.quorum) return [{ ...r, status: 'fail', output: `quorum lost: ${a.reachable} of ${a.managers} managers reachable, ${a.quorum} needed` }];
      if (a.reachable < a.target) return [{ ...r, status: 'warn', output: `${a.reachable} reachable managers, target ${a.target}` }];
      if (a.staleMembers.length > 0) {
        const members = a.managers + a.staleMembers.length;
        return [{ ...r, status: 'warn', output: `${a.staleMembers.join(', ')}: a worker the Raft group still lists as an unreachable member; ${a.reachable} of ${members} Raft members reachable, quorum ${quorum(members)}` }];
      }
      // With one manager (1-2 nodes) a zero margin is the design, not a fault.
      if (a.reachable - a.quorum === 0 && a.target > 1) return [{ ...r, status: 'warn', output: `no margin: ${a.reachable} of ${a.managers} managers reachable, quorum ${a.quorum}` }];
      return [{ ...r, status: 'pass', output: `${a.reachable} of ${a.managers} managers reachable, quorum ${a.quorum}` }];
    },
  };

  return {
    name: 'autopilot',
    collectors: [collector],
    checks: [check],
    async start() {
      if (!cfg.enabled) {
        log.info('autopilot disabled by configuration');
        return;
      }
      log.info({ intervalMs: cfg.intervalMs, stabilizationMs: cfg.stabilizationMs, deadManagerGraceMs: cfg.deadManagerGraceMs, deadNodeTtlMs: cfg.deadNodeTtlMs, managerAvailability: cfg.managerAvailability }, 'autopilot started');
      ticker.start();
    },
    stop: () => ticker.stop(),
    tick: () => ticker.tick(),
    history: () => [...records],
    status: () => state,
    nodes: () => listed,
  };
}
