/**
 * A ring of keys during a cluster key rotation: `primary` first, then each of
 * `accepted` not already in it by `same`. The one rule behind both key rings
 * (agent/identity/keys.ts Keyring, shared/wire/gossip.ts GossipKeyring).
 */
export function keyRing<K>(primary: K, accepted: readonly K[], same: (a: K, b: K) => boolean): readonly K[] {
  const out = [primary];
  for (const k of accepted) if (!out.some((o) => same(o, k))) out.push(k);
  return Object.freeze(out);
}
