import type { Config } from '../../shared/config-schema.js';
import { isPiswarmError } from '../../shared/errors.js';
import type { DockerEngine, SwarmNode, NodeListing } from '../docker/engine.js';
import type { EngineMonitor } from '../docker/monitor.js';
import { backoffMs } from '../lifecycle/backoff.js';
import type { Subsystem } from '../lifecycle/subsystem.js';
import { createTicker } from '../lifecycle/ticker.js';
import type { Logger } from '../log/logger.js';
import type { Member } from '../membership/types.js';
import type { Collector, MetricFamily } from '../metrics/types.js';
import { factsBySwarmNode } from './labels-for.js';
import { countManaged, planLabels, type LabelUpdate } from './planner.js';

export interface LabelsDeps {
  log: Logger;
  docker: Pick<DockerEngine, 'listNodes' | 'setNodeLabels'>;
  /** Only `last()` is read: whether this engine is a manager, and its node id. */
  monitor: Pick<EngineMonitor, 'last'>;
  /** Gossip members (their published facts); [] without the membership. */
  members: () => readonly Member[];
  /**
   * The autopilot's node list (taken on the same interval, on every manager)
   * when no autopilot step changed the swarm since; null: list afresh. Saves
   * one node listing per tick on every manager.
   */
  recentNodes?: () => NodeListing | null;
  random?: () => number;
  now?: () => number;
}

export type LabelsSubsystem = Subsystem & {
  /** One look and, on the Raft leader, the updates it calls for. Never throws; never overlaps itself. */
  tick(): Promise<void>;
};

/**
 * Hardware node labels (agent/labels/labels-for.ts) kept in step with what
 * each member publishes over gossip. Every autopilot.intervalMs the agent
 * whose engine is the Raft leader (decided as the autopilot does: its own node
 * in the engine's node list says Leader) plans the updates and makes them,
 * one `node update` per node; every other agent only looks at /info.
 */
export interface LabelsConfig {
  labels: Config['labels'];
  /** Labels follow on the autopilot's interval; a refused update waits as a refused autopilot step does (up to backoffMaxMs). */
  autopilot: Pick<Config['autopilot'], 'intervalMs' | 'backoffMaxMs'>;
}

export function labelsSubsystem(config: Readonly<LabelsConfig>, d: LabelsDeps): LabelsSubsystem {
  const log = d.log.child({ mod: 'labels' });
  const now = d.now ?? Date.now;
  const random = d.random ?? Math.random;
  const intervalMs = config.autopilot.intervalMs;
  // Per node: what this leader applied or found in place (planner's `applied`), and the backoff after a failed update.
  let applied = new Map<string, string>();
  const failures = new Map<string, { attempts: number; until: number }>();
  const results = { ok: 0, error: 0 };
  let managed = 0;
  let leader = false;
  let lastWriteAt = -Infinity;

  function setLeader(is: boolean): void {
    if (is === leader) return;
    leader = is;
    // A later term starts afresh: another leader may have acted meanwhile.
    applied = new Map();
    failures.clear();
    managed = 0;
    log.debug({ leader: is }, is ? 'node labels kept by this agent (Raft leader)' : 'node labels left to the Raft leader');
  }

  async function apply(u: LabelUpdate): Promise<boolean> {
    const fields = { node: u.nodeId, hostname: u.hostname, version: u.version, set: u.set, removed: u.removed };
    lastWriteAt = now();
    try {
      await d.docker.setNodeLabels(u.nodeId, u.version, u.labels);
    } catch (err) {
      results.error++;
      const attempts = (failures.get(u.nodeId)?.attempts ?? 0) + 1;
      const waitMs = backoffMs(attempts - 1, intervalMs, config.autopilot.backoffMaxMs, random());
      failures.set(u.nodeId, { attempts, until: now() + waitMs });
      const code = isPiswarmError(err) ? err.code : 'PISWARM_ERR_INTERNAL';
      const engineMessage = isPiswarmError(err) ? (err.details as { engineMessage?: string } | undefined)?.engineMessage : (err as Error)?.message;
      log.warn({ ...fields, code, engineMessage, retryInMs: waitMs }, 'cannot update node labels');
      return false;
    }
    results.ok++;
    failures.delete(u.nodeId);
    applied.set(u.nodeId, u.desiredKey);
    log.info(fields, 'node labels updated');
    return true;
  }

  /**
   * The autopilot's list when taken this tick or the one before (both tickers
   * start together, so the autopilot's listing of this tick is often still
   * under way) and after this agent's last label write (whose node versions it
   * would not know). A list that is stale all the same (a user's `docker node
   * update`) only makes the engine refuse the update as out of sequence.
   */
  function recentList(): readonly SwarmNode[] | null {
    const r = d.recentNodes?.();
    return r && now() - r.at < 2 * intervalMs && r.at > lastWriteAt ? r.nodes : null;
  }

  async function doTick(): Promise<void> {
    const sw = d.monitor.last().info?.swarm;
    if (!sw || sw.state !== 'active' || !sw.isManager || !sw.nodeId) return setLeader(false);
    let nodes: readonly SwarmNode[];
    try {
      nodes = recentList() ?? (await d.docker.listNodes());
    } catch (err) {
      log.debug({ code: isPiswarmError(err) ? err.code : 'PISWARM_ERR_INTERNAL' }, 'cannot list nodes for labels');
      return setLeader(false);
    }
    setLeader(nodes.find((n) => n.id === sw.nodeId)?.leader === true);
    if (!leader) return;
    const listed = new Set(nodes.map((n) => n.id));
    for (const id of [...applied.keys(), ...failures.keys()]) {
      if (!listed.has(id)) {
        applied.delete(id);
        failures.delete(id);
      }
    }
    const plan = planLabels(nodes, factsBySwarmNode(d.members()), applied);
    for (const [id, key] of plan.settled) applied.set(id, key);
    const t = now();
    const done = new Map<string, Record<string, string>>();
    for (const u of plan.updates) {
      if ((failures.get(u.nodeId)?.until ?? -Infinity) > t) continue;
      if (await apply(u)) done.set(u.nodeId, u.labels);
    }
    managed = countManaged(nodes.map((n) => ({ ...n, labels: done.get(n.id) ?? n.labels })));
  }

  const ticker = createTicker({
    intervalMs,
    run: doTick,
    enabled: () => config.labels.enabled,
    onError: (err) => {
      // A bug in one tick must not stop the next one.
      results.error++;
      log.error({ err }, 'labels tick failed');
    },
  });

  const collector: Collector = {
    name: 'labels',
    collect: (): MetricFamily[] => [
      {
        name: 'piswarm_labels_updates_total',
        help: 'Node updates of the hardware labels (piswarm.arch, .model, .memory_gb, .storage, .disk_speed) this agent made as Raft leader, by result.',
        type: 'counter',
        samples: (['ok', 'error'] as const).map((result) => ({ labels: { result }, value: results[result] })),
      },
      { name: 'piswarm_labels_managed', help: 'Hardware labels on the swarm\'s nodes as this agent last saw them as Raft leader (0 elsewhere).', type: 'gauge', samples: [{ value: leader ? managed : 0 }] },
    ],
  };

  return {
    name: 'labels',
    collectors: [collector],
    async start() {
      if (!config.labels.enabled) {
        log.info('hardware node labels disabled by configuration');
        return;
      }
      ticker.start();
    },
    stop: () => ticker.stop(),
    tick: () => ticker.tick(),
  };
}
