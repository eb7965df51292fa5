import { createHash, createHmac, hkdfSync } from 'node:crypto';
import { keyRing } from '../../shared/key-ring.js';

/**
 * Everything piswarm derives from the cluster key. The key itself never
 * leaves this process: peers see only its derivations (a public cluster id,
 * HMACs and ciphertext), each under its own HKDF label so that one use can
 * never be turned into another (an advert signature is no request MAC).
 */
export interface ClusterKeys {
  /** Public, 11 characters: tells clusters apart in adverts without revealing the key. */
  readonly clusterId: string;
  readonly advertKey: Buffer;
  readonly authKey: Buffer;
  readonly grantKey: Buffer;
}

const SALT = Buffer.from('piswarm-cluster-v1');

function derive(key: string, label: string, length = 32): Buffer {
  return Buffer.from(hkdfSync('sha256', Buffer.from(key, 'utf8'), SALT, Buffer.from(label), length));
}

export function deriveClusterKeys(clusterKey: string): ClusterKeys {
  return Object.freeze({
    clusterId: derive(clusterKey, 'cluster-id', 8).toString('base64url'),
    advertKey: derive(clusterKey, 'advert-mac'),
    authKey: derive(clusterKey, 'peer-auth'),
    grantKey: derive(clusterKey, 'grant-enc'),
  });
}

export function hmac(key: Buffer, data: string): Buffer {
  return createHmac('sha256', key).update(data, 'utf8').digest();
}

export function sha256b64(data: string | Buffer): string {
  return createHash('sha256').update(data).digest('base64url');
}

/**
 * The cluster keys a node holds while the cluster changes its key (issue 16,
 * `piswarm cluster rotate-key`): it signs and advertises with the primary
 * and accepts a message under any key of the ring, picked by the cluster id
 * the message names (each key has its own id, so no MAC is tried twice and a
 * message under a key the node does not hold is still "another cluster").
 * Outside a rotation the ring holds one key. Formation, discovery, the peer
 * protocol and its client share one ring, so a change is seen by all at once.
 */
export class Keyring implements ClusterKeys {
  #ring: readonly ClusterKeys[];

  constructor(primary: ClusterKeys, accepted: readonly ClusterKeys[] = []) {
    this.#ring = keyRing(primary, accepted, sameId);
  }

  get clusterId(): string { return this.#ring[0]!.clusterId; }
  get advertKey(): Buffer { return this.#ring[0]!.advertKey; }
  get authKey(): Buffer { return this.#ring[0]!.authKey; }
  get grantKey(): Buffer { return this.#ring[0]!.grantKey; }

  /** Every accepted cluster id, the primary's first. */
  get clusterIds(): string[] { return this.#ring.map((k) => k.clusterId); }

  find(clusterId: string | undefined): ClusterKeys | null {
    return this.#ring.find((k) => k.clusterId === clusterId) ?? null;
  }

  set(primary: ClusterKeys, accepted: readonly ClusterKeys[] = []): void {
    this.#ring = keyRing(primary, accepted, sameId);
  }
}

const sameId = (a: ClusterKeys, b: ClusterKeys) => a.clusterId === b.clusterId;

/** The keys of `keys` (one key or a ring) that a message naming `clusterId` was made with, or null: another cluster. */
export function keysFor(keys: ClusterKeys, clusterId: string | undefined): ClusterKeys | null {
  if (keys instanceof Keyring) return keys.find(clusterId);
  return keys.clusterId === clusterId ? keys : null;
}
