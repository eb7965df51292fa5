import type { Config } from '../../shared/config-schema.js';
import { errFields } from '../../shared/errors.js';
import { deriveGossipKeys, type GossipKeys } from '../../shared/wire/gossip.js';
import type { Logger } from '../log/logger.js';
import { detectAdvertiseAddress, type AddressChoice } from '../net/address.js';
import { loadOrCreateIdentity, type NodeIdentity } from './identity.js';
import { deriveClusterKeys, type ClusterKeys } from './keys.js';

/**
 * Who this node is, what it derives from the cluster key, and how it finds
 * its advertise address: built once at start (agent/subsystems.ts) and handed
 * to formation, discovery, the peer protocol and gossip, so they can never
 * disagree about the node id or the keys.
 */
export interface NodeContext {
  readonly identity: NodeIdentity;
  /** Why the identity could not be loaded (formation and gossip are then off); null when it was. */
  readonly identityError: string | null;
  /** Peer HTTP, adverts and grants; null without a cluster key or an identity. */
  readonly keys: ClusterKeys | null;
  /** Gossip datagrams; null when `keys` is. */
  readonly gossipKeys: GossipKeys | null;
  /** The advertise address chosen now; throws PISWARM_ERR_NO_ADDRESS while there is none. */
  address(): AddressChoice;
}

const NO_IDENTITY = '0'.repeat(24);

export function createNodeContext(config: Readonly<Config>, log: Pick<Logger, 'error'>): NodeContext {
  const name = config.nodeName ?? 'piswarm';
  let identity: NodeIdentity;
  let identityError: string | null = null;
  try {
    identity = loadOrCreateIdentity(config.stateDir, name);
  } catch (err) {
    // Without a stable identity a restart could look like a new node; better
    // to form nothing and say so in /health than to crash-loop or duplicate.
    const { code, detail } = errFields(err);
    identityError = detail;
    log.error({ code, detail }, 'node identity unavailable: formation and gossip are off');
    identity = { nodeId: NO_IDENTITY, name, createdAt: '' };
  }
  const key = identityError === null ? config.clusterKey : undefined;
  return {
    identity,
    identityError,
    keys: key ? deriveClusterKeys(key) : null,
    gossipKeys: key ? deriveGossipKeys(key) : null,
    address: () => detectAdvertiseAddress(config),
  };
}
