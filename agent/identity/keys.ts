import { createHash, createHmac, hkdfSync } from 'node:crypto';

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
