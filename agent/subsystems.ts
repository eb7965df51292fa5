import type { Config } from '../shared/config-schema.js';
import type { Logger } from './log/logger.js';
import type { DockerEngine } from './docker/engine.js';
import type { EngineMonitor } from './docker/monitor.js';
import type { Subsystem } from './lifecycle/subsystem.js';
import { formationSubsystem } from './formation/subsystem.js';
import { createAutopilot } from './autopilot/autopilot.js';
import { membershipSubsystem, type HostFacts } from './membership/subsystem.js';
import { engineRecovery } from './docker/engine-recovery.js';
import { keyringSubsystem } from './keyring/subsystem.js';
import { upgradeSubsystem } from './upgrade/subsystem.js';
import type { HealthDocument } from './health/aggregate.js';
import type { HostSnapshot } from './host/types.js';
import { clusterSubsystem } from './cluster/subsystem.js';
import { dashboardSubsystem } from './dashboard/subsystem.js';
import { labelsSubsystem } from './labels/subsystem.js';
import { createNodeContext } from './identity/context.js';
import type { HardwareOverride } from './host/hardware.js';

export interface SubsystemDeps {
  log: Logger;
  docker: DockerEngine;
  monitor: EngineMonitor;
  /** This node's health facts, published to peers over gossip. */
  facts: () => HostFacts;
  /** For the cluster view's facts (agent/cluster): absent in tests that do not model them. */
  version?: string;
  health?: () => HealthDocument;
  snapshot?: () => HostSnapshot;
  /** Hardware a simulated Pi claims (PISWARM_SIM_HARDWARE): published instead of what the host says. */
  hardwareOverride?: HardwareOverride;
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
  const node = createNodeContext(config, deps.log);
  // Before formation and gossip start: they sign with the keys it loads (a past rotation's).
  const keyring = node.keys && config.clusterKey
    ? keyringSubsystem({
        node,
        configKey: config.clusterKey,
        stateDir: config.stateDir,
        log: deps.log,
        peers: () => formation.formation.status().confirmedPeers.map((p) => ({ nodeId: p.nodeId, name: p.name, addr: p.addr, port: p.port })),
        client: () => formation.peerClient,
        docker: deps.docker,
      })
    : null;
  // Rolling upgrades: releases verified, kept and installed through the root installer; catch-up reads the cluster view (bound late).
  const upgrade = node.keys
    ? upgradeSubsystem({
        stateDir: config.stateDir,
        running: deps.version ?? '',
        nodeId: node.identity.nodeId,
        releaseKey: config.upgrade.releaseKey,
        deadlineMs: (config.upgrade.healthDeadlineS + 120) * 1000,
        catchUp: config.upgrade.catchUp,
        catchUpIntervalMs: config.upgrade.catchUpIntervalMs,
        log: deps.log,
        peers: () =>
          cluster.view().nodes
            .filter((n) => !n.self && n.addr && n.gossip?.state === 'alive')
            .map((n) => ({ nodeId: n.id, name: n.hostname, addr: n.addr!, port: config.http.port, version: n.facts.version })),
        client: () => formation.peerClient,
      })
    : null;
  // Peer reads are answered from the cluster view's data (bound late: the cluster is built next).
  const formation = formationSubsystem(config, { ...deps, node, engine: deps.monitor, recentNodes: () => recentNodes(), ...(keyring ? { keyring: { keyringStep: keyring.step, rotate: keyring.rotate, revoke: keyring.revoke } } : {}), ...(upgrade ? { release: upgrade } : {}), peerReads: { checks: () => cluster.peerReads.checks(), services: () => cluster.peerReads.services() } });
  // Built before the membership, which publishes its facts; started last.
  let autopilotRef: ReturnType<typeof createAutopilot> | null = null;
  /** The autopilot's last node list, unless one of its steps changed the swarm since (formation and labels list less). */
  const recentNodes = () => {
    const l = autopilotRef?.nodes() ?? null;
    const stepAt = autopilotRef?.status().lastStepAt ?? null;
    return l && (stepAt === null || stepAt < l.at) ? l : null;
  };
  const cluster = clusterSubsystem(config, {
    log: deps.log,
    version: deps.version ?? '',
    health: () => deps.health?.() ?? null,
    snapshot: () => deps.snapshot?.() ?? null,
    members: () => membership.members(),
    formation: () => formation.formation.status(),
    engineNodes: () => autopilotRef?.nodes() ?? null,
    ...(deps.hardwareOverride ? { hardwareOverride: deps.hardwareOverride } : {}),
    peerClient: formation.peerClient,
    ...(deps.docker.listServicesAndTasks ? { listServices: () => deps.docker.listServicesAndTasks!() } : {}),
    autopilot: () => {
      const a = autopilotRef;
      if (!a) return null;
      return { role: a.status().role, target: a.status().assessment?.target ?? null, steps: a.history() };
    },
  });
  const membership = membershipSubsystem(config, {
    node,
    extraMeta: (budget) => cluster.publisher.meta(budget),
    onChange: () => cluster.membersChanged(),
    log: deps.log,
    monitor: deps.monitor,
    facts: deps.facts,
    confirmedPeers: () => formation.formation.status().confirmedPeers.map((p) => p.addr),
    joinAddress: () => formation.formation.joinAddress(),
  });
  if (keyring) parts.push(keyring);
  parts.push(engineRecovery({ monitor: deps.monitor, log: deps.log, stateDir: config.stateDir, relayAddress: formation.joinRelayAddress }), formation, membership);
  autopilotRef = createAutopilot({ config, log: deps.log.child({ mod: 'autopilot' }), docker: deps.docker, monitor: deps.monitor, membership });
  const labels = labelsSubsystem(config, { log: deps.log, docker: deps.docker, monitor: deps.monitor, members: () => membership.members(), recentNodes });
  parts.push(autopilotRef, labels, cluster, dashboardSubsystem({ log: deps.log, view: cluster.view }));
  if (upgrade) parts.push(upgrade);
  return parts;
}
