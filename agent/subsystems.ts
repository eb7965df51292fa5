import type { Config } from '../shared/config-schema.js';
import type { Logger } from './log/logger.js';
import type { DockerEngine } from './docker/engine.js';
import type { EngineMonitor } from './docker/monitor.js';
import type { Subsystem } from './lifecycle/subsystem.js';
import { formationSubsystem } from './formation/subsystem.js';
import { createAutopilot } from './autopilot/autopilot.js';
import { membershipSubsystem, type HostFacts } from './membership/subsystem.js';
import { engineRecovery } from './docker/engine-recovery.js';

export interface SubsystemDeps {
  log: Logger;
  docker: DockerEngine;
  monitor: EngineMonitor;
  /** This node's health facts, published to peers over gossip. */
  facts: () => HostFacts;
}

/**
 * The cluster-facing parts of the agent, in start order (stopped in reverse).
 * Each is built here from the real adapters; tests build them with their own.
 */
export function agentSubsystems(config: Readonly<Config>, deps: SubsystemDeps): Subsystem[] {
  const parts: Subsystem[] = [];
  if (!config.clusterKey) {
    deps.log.warn({ code: 'PISWARM_ERR_NO_CLUSTER_KEY' }, 'no cluster key configured: discovery and swarm formation are off');
  }
  const formation = formationSubsystem(config, deps);
  const membership = membershipSubsystem(config, {
    log: deps.log,
    monitor: deps.monitor,
    facts: deps.facts,
    confirmedPeers: () => formation.formation.status().confirmedPeers.map((p) => p.addr),
    joinAddress: () => formation.formation.joinAddress(),
  });
  parts.push(engineRecovery({ monitor: deps.monitor, log: deps.log, stateDir: config.stateDir }), formation, membership);
  parts.push(createAutopilot({ config, log: deps.log.child({ mod: 'autopilot' }), docker: deps.docker, monitor: deps.monitor, membership }));
  return parts;
}
