import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { deriveClusterKeys } from '../identity/keys.js';
import { writeFileAtomic } from '../lifecycle/state-file.js';
import { MAX_KEYS, type Ring } from './ring.js';

/**
 * The keys a rotation gave this node, in its state directory (mode 0600).
 * The configured key (/etc/piswarm/cluster.key, root's) is the card's and the
 * agent cannot write it, so after a rotation this file is what a restarted
 * agent signs with. It names the configured key it continues (by cluster id,
 * never the key): a card re-provisioned with another key
 * (`install.sh --cluster-key-file`) starts from that key, not from this file.
 */
export const KEYRING_FILE = 'keyring.json';

interface KeyringFile {
  v: 1;
  /** The cluster id of the configured key this ring continues. */
  continues: string;
  primary: string;
  accepted: string[];
  updatedAt: string;
}

export type LoadedRing = { ring: Ring; source: 'config' | 'file'; problem: string | null };

const isKey = (k: unknown): k is string => typeof k === 'string' && k.length >= 32 && k.length <= 512;

/** The ring to start with: the file's when it continues the configured key, else the configured key alone (and why). */
export function loadRing(stateDir: string, configKey: string, read: (p: string) => string = (p) => readFileSync(p, 'utf8')): LoadedRing {
  const alone: Ring = { primary: configKey, accepted: [] };
  let text: string;
  try {
    text = read(join(stateDir, KEYRING_FILE));
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    return { ring: alone, source: 'config', problem: code === 'ENOENT' ? null : `cannot read ${KEYRING_FILE} (${code ?? 'error'}): the configured key is used` };
  }
  let f: Partial<KeyringFile>;
  try {
    f = JSON.parse(text) as Partial<KeyringFile>;
  } catch {
    return { ring: alone, source: 'config', problem: `${KEYRING_FILE} is not JSON: the configured key is used` };
  }
  if (f?.v !== 1 || !isKey(f.primary) || !Array.isArray(f.accepted) || !f.accepted.every(isKey) || f.accepted.length >= MAX_KEYS || typeof f.continues !== 'string') {
    return { ring: alone, source: 'config', problem: `${KEYRING_FILE} is not a keyring this release reads: the configured key is used` };
  }
  const configId = deriveClusterKeys(configKey).clusterId;
  if (f.continues !== configId && f.primary !== configKey && !f.accepted.includes(configKey)) {
    return { ring: alone, source: 'config', problem: `${KEYRING_FILE} continues another configured key (the card was given a new key): the configured key is used` };
  }
  return { ring: { primary: f.primary, accepted: [...f.accepted] }, source: 'file', problem: null };
}

export function saveRing(stateDir: string, configKey: string, ring: Ring, now: Date, write = writeFileAtomic): void {
  const f: KeyringFile = { v: 1, continues: deriveClusterKeys(configKey).clusterId, primary: ring.primary, accepted: ring.accepted, updatedAt: now.toISOString() };
  write(join(stateDir, KEYRING_FILE), `${JSON.stringify(f, null, 2)}\n`, 0o600);
}
