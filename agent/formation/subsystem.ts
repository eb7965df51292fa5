import type { Config } from '../../shared/config-schema.js';
import type { DockerEngine } from '../docker/engine.js';
import type { Logger } from '../log/logger.js';
import type { Subsystem } from '../lifecycle/subsystem.js';
import type { NodeContext } from '../identity/context.js';
import { createMdnsDiscovery } from '../discovery/mdns.js';
import { createPeerClient, type KeyringClient, type PeerClient, type PeerReadClient, type ReleaseClient } from '../peers/client.js';
import { hostInterfaces } from '../net/address.js';
import { wallClock } from '../lifecycle/clock.js';
import { createFormation, type Formation } from './controller.js';
import { createJoinRelay } from './join-relay.js';
import type { FormationDeps } from './types.js';

/**
 * Formation built from the real adapters, as one Subsystem for
 * agent/subsystems.ts:
 *
 *   const formation = formationSubsystem(config, { ...deps, node });
 *   parts.push(formation);
 *
 * Without a cluster key it still exists (routes answer NO_CLUSTER_KEY and
 * /health warns) but discovers and forms nothing.
 */
export function formationSubsystem(
  config: Readonly<Config>,
  deps: { log: Logger; docker: DockerEngine; node: NodeContext; peerReads?: FormationDeps['peerReads']; engine?: FormationDeps['engine']; recentNodes?: FormationDeps['recentNodes']; keyring?: FormationDeps['keyring']; release?: FormationDeps['release'] },
): Subsystem & { formation: Formation; peerClient: (PeerClient & PeerReadClient & KeyringClient & ReleaseClient) | null; joinRelayAddress: () => string | null } {
  const { identity, keys, identityError } = deps.node;
  const now = wallClock.now;
  // Shared with agent/cluster's on-demand reads; formation.stop() closes it (stopped after the cluster).
  const peerClient = keys ? createPeerClient({ keys, identity, timeoutMs: config.discovery.requestTimeoutMs, windowMs: config.formation.authWindowMs }) : null;
  const relayPort = config.formation.joinRelayPort;
  // The relay is one of formation's dependencies, and formation knows the managers: it asks
  // only once listening, which start() does after formation exists. Without a cluster key no
  // peer is authenticated, so there is no manager to forward to: it does not take its port.
  const joinRelay = relayPort > 0 && keys ? createJoinRelay({ port: relayPort, log: deps.log, managers: () => formation.relayManagers() }) : null;
  const formation = createFormation({
    config: config as Config,
    log: deps.log,
    docker: deps.docker,
    clock: wallClock,
    identity,
    keys,
    discovery:
      keys && config.discovery.mdns
        ? createMdnsDiscovery({ keys, identity, log: deps.log, now, maxAgeMs: config.discovery.advertMaxAgeMs, republishMs: config.discovery.republishMs })
        : null,
    peerClient,
    address: deps.node.address,
    interfaces: hostInterfaces,
    ...(identityError !== null ? { disabledReason: identityError } : {}),
    ...(deps.peerReads ? { peerReads: deps.peerReads } : {}),
    ...(deps.engine ? { engine: deps.engine } : {}),
    ...(deps.recentNodes ? { recentNodes: deps.recentNodes } : {}),
    ...(deps.keyring ? { keyring: deps.keyring } : {}),
    ...(deps.release ? { release: deps.release } : {}),
    ...(joinRelay ? { joinRelay } : {}),
  });
  return {
    name: 'formation',
    formation,
    peerClient,
    joinRelayAddress: () => joinRelay?.address() ?? null,
    async start() {
      await joinRelay?.start();
      await formation.start();
    },
    async stop() {
      await formation.stop();
      await joinRelay?.stop();
    },
    collectors: joinRelay ? [formation.collector, joinRelay.collector] : [formation.collector],
    checks: formation.healthChecks,
    routes: formation.routes,
  };
}
