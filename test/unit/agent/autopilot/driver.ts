/**
 * Runs the autopilot's planner and executor against a SimSwarm: every up
 * manager's agent observes each tick (so a new leader knows the history), the
 * leader's agent plans one step and executes it through a fake engine that
 * models only node update/rm. Checks after every step that a step never took
 * quorum away.
 */
import { executeStep, RefusalBackoff, classifyRefusal } from '../../../../agent/autopilot/executor.js';
import { lossAfterStep, lossOnLeadership, plan, type ActionStep, type Step } from '../../../../agent/autopilot/planner.js';
import { buildView, observe, type AutopilotConfig, type Observation } from '../../../../agent/autopilot/view.js';
import { fakeDocker } from '../../../helpers/fakes.js';
import type { SimSwarm } from './sim-swarm.js';

export const BASE_CONFIG: AutopilotConfig = {
  enabled: true,
  intervalMs: 5000,
  stabilizationMs: 30_000,
  deadManagerGraceMs: 60_000,
  deadNodeTtlMs: 600_000,
  maxManagers: 5,
  threeManagersAt: 3,
  fiveManagersAt: 7,
  sevenManagersAt: 15,
  managerAvailability: 'never',
  drainMinWorkers: 2,
  backoffBaseMs: 10_000,
  backoffMaxMs: 300_000,
};

export interface Taken {
  t: number;
  step: ActionStep;
  ok: boolean;
  refusal?: string;
}

export class Driver {
  readonly trackers = new Map<string, Map<string, Observation>>();
  readonly taken: Taken[] = [];
  readonly waits: Array<{ t: number; step: Step }> = [];
  readonly quorumViolations: string[] = [];
  /** Reachable manager count after every tick. */
  readonly managerCounts: number[] = [];
  readonly backoff: RefusalBackoff;
  private readonly docker;
  private lastLeader: string | null = null;
  private managerLostAt = -Infinity;

  constructor(readonly sim: SimSwarm, readonly cfg: AutopilotConfig = BASE_CONFIG) {
    this.backoff = new RefusalBackoff(cfg.backoffBaseMs, cfg.backoffMaxMs, () => 0.5);
    this.docker = fakeDocker({
      updateNode: async (id, change) => sim.updateNode(id, change),
      removeNode: async (id, force) => sim.removeNode(id, force),
    });
  }

  actions(): ActionStep[] {
    return this.taken.filter((x) => x.ok).map((x) => x.step);
  }

  async tick(): Promise<Step | null> {
    const sim = this.sim;
    const nodes = sim.list();
    for (const n of sim.nodes.values()) {
      if (!sim.up(n) || n.role !== 'manager') {
        this.trackers.delete(n.id); // a restarted agent, or one that is no manager, knows nothing
        continue;
      }
      this.trackers.set(n.id, observe(this.trackers.get(n.id) ?? new Map(), nodes, [], sim.t));
    }
    for (const id of this.trackers.keys()) if (!sim.nodes.has(id)) this.trackers.delete(id);
    let step: Step | null = null;
    const moved = sim.leaderId !== null && this.lastLeader !== null && sim.leaderId !== this.lastLeader;
    this.lastLeader = sim.leaderId ?? this.lastLeader;
    if (sim.leaderId) {
      let view = buildView({ selfId: sim.leaderId, nodes, tracker: this.trackers.get(sim.leaderId)!, blocked: this.backoff.blocked(sim.t), managerLostAt: this.managerLostAt, now: sim.t });
      // As the facade does: leadership moving after a manager was lost marks that loss.
      if (moved) {
        this.managerLostAt = lossOnLeadership(this.managerLostAt, view);
        view = { ...view, managerLostAt: this.managerLostAt };
      }
      step = plan(view, this.cfg, sim.t);
      if (step && step.kind !== 'wait') {
        const hadQuorum = sim.hasQuorum();
        try {
          await executeStep(this.docker, step);
          this.backoff.succeeded(step);
          this.taken.push({ t: sim.t, step, ok: true });
          this.managerLostAt = lossAfterStep(this.managerLostAt, step, view);
        } catch (err) {
          this.backoff.refused(step, sim.t);
          this.taken.push({ t: sim.t, step, ok: false, refusal: classifyRefusal(err).reason });
        }
        if (hadQuorum && !sim.hasQuorum()) this.quorumViolations.push(`t=${sim.t} ${step.kind} ${step.hostname}`);
      } else if (step) this.waits.push({ t: sim.t, step });
    }
    this.managerCounts.push(sim.reachableManagers());
    return step;
  }

  /** Advances the clock tick by tick for `ms`. */
  async run(ms: number): Promise<void> {
    for (let left = ms; left > 0; left -= this.cfg.intervalMs) {
      this.sim.advance(Math.min(this.cfg.intervalMs, left));
      await this.tick();
    }
  }
}
