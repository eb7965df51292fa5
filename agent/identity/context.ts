import type { Config } from '../../shared/config-schema.js';
import { errFields } from '../../shared/errors.js';
import { deriveGossipKeys, GossipKeyring } from '../../shared/wire/gossip.js';
import type { Logger } from '../log/logger.js';
import { detectAdvertiseAddress, type AddressChoice } from '../net/address.js';
import { loadOrCreateIdentity, type NodeIdentity } from './identity.js';
import { deriveClusterKeys, Keyring } from './keys.js';

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
  /** Peer HTTP, adverts and grants; null without a cluster key or an identity. One key, or several during a key rotation. */
  readonly keys: Keyring | null;
  /** Gossip datagrams; null when `keys` is. Changes with `keys` (setClusterKeys). */
  readonly gossipKeys: GossipKeyring | null;
  /** Replaces the keys every subsystem holds: sign with `primary`, accept `accepted` too. A no-op without keys. */
  setClusterKeys(primary: string, accepted: readonly string[]): void;
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
  const keys = key ? new Keyring(deriveClusterKeys(key)) : null;
  const gossipKeys = key ? new GossipKeyring(deriveGossipKeys(key)) : null;
  return {
    identity,
    identityError,
    keys,
    gossipKeys,
    setClusterKeys(primary, accepted) {
      keys?.set(deriveClusterKeys(primary), accepted.map(deriveClusterKeys));
      gossipKeys?.set(deriveGossipKeys(primary), accepted.map((k) => deriveGossipKeys(k)));
    },
    address: () => detectAdvertiseAddress(config),
  };
}
