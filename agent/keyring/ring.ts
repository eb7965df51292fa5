import { PiswarmError } from '../../shared/errors.js';
import type { KeyringOp } from '../../shared/wire/keyring.js';

/**
 * The cluster keys one node holds, as key strings: it signs with `primary`
 * and accepts `accepted` as well. Pure: one step of a rotation
 * (shared/wire/keyring.ts) on the ring, or a coded error for a step out of
 * order. Every step is idempotent, so a retried request changes nothing.
 */
export interface Ring {
  primary: string;
  accepted: string[];
}

/** At most this many keys at once: a rotation needs two; a third would be a second rotation started before the first ended. */
export const MAX_KEYS = 2;

export function applyStep(ring: Ring, op: KeyringOp, key: string): Ring {
  const held = ring.primary === key || ring.accepted.includes(key);
  switch (op) {
    case 'stage':
      if (held) return ring;
      if (1 + ring.accepted.length >= MAX_KEYS) throw refused(`this node already holds ${MAX_KEYS} keys: finish or abort the rotation under way first`);
      return { primary: ring.primary, accepted: [...ring.accepted, key] };
    case 'promote':
      if (ring.primary === key) return ring;
      if (!held) throw refused('promote: this node never staged that key');
      return { primary: key, accepted: [ring.primary, ...ring.accepted.filter((k) => k !== key)] };
    case 'drop':
      if (ring.primary !== key) throw refused('drop: the node does not sign with that key yet (promote first)');
      return { primary: key, accepted: [] };
    case 'abort':
      if (ring.primary === key) throw refused('abort: that key is already promoted here; rotate again instead');
      return { primary: ring.primary, accepted: ring.accepted.filter((k) => k !== key) };
  }
}

function refused(message: string): PiswarmError {
  return new PiswarmError('PISWARM_ERR_KEYRING', message);
}
