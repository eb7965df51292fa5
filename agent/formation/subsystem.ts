import type { Config } from '../../shared/config-schema.js';
import { errFields } from '../../shared/errors.js';
import type { DockerEngine } from '../docker/engine.js';
import type { Logger } from '../log/logger.js';
import type { Subsystem } from '../lifecycle/subsystem.js';
import { loadOrCreateIdentity, type NodeIdentity } from '../identity/identity.js';
import { deriveClusterKeys } from '../identity/keys.js';
import { createMdnsDiscovery } from '../discovery/mdns.js';
import { createPeerClient } from '../peers/client.js';
import { detectAdvertiseAddress, hostInterfaces } from '../net/address.js';
import { wallClock } from '../lifecycle/clock.js';
import { createFormation, type Formation } from './controller.js';

/**
 * Formation built from the real adapters, as one Subsystem for
 * agent/subsystems.ts:
 *
 *   const formation = formationSubsystem(config, deps);
 *   parts.push(formation);
 *
 * Without a cluster key it still exists (routes answer NO_CLUSTER_KEY and
 * /health warns) but discovers and forms nothing.
 */
export function formationSubsystem(config: Readonly<Config>, deps: { log: Logger; docker: DockerEngine }): Subsystem & { formation: Formation } {
  let identity: NodeIdentity;
  let disabledReason: string | undefined;
  try {
    identity = loadOrCreateIdentity(config.stateDir, config.nodeName ?? 'piswarm');
  } catch (err) {
    // Without a stable identity a restart could look like a new node; better
    // to form nothing and say so in /health than to crash-loop or duplicate.
    const { code, detail } = errFields(err);
    disabledReason = detail;
    deps.log.error({ code, detail }, 'node identity unavailable: formation is off');
    identity = { nodeId: '0'.repeat(24), name: config.nodeName ?? 'piswarm', createdAt: '' };
  }
  const keys = config.clusterKey && !disabledReason ? deriveClusterKeys(config.clusterKey) : null;
  const now = wallClock.now;
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
    peerClient: keys ? createPeerClient({ keys, identity, timeoutMs: config.discovery.requestTimeoutMs, windowMs: config.formation.authWindowMs }) : null,
    address: () => detectAdvertiseAddress(config),
    interfaces: hostInterfaces,
    ...(disabledReason ? { disabledReason } : {}),
  });
  return {
    name: 'formation',
    formation,
    start: () => formation.start(),
    stop: () => formation.stop(),
    collectors: [formation.collector],
    checks: formation.healthChecks,
    routes: formation.routes,
  };
}
