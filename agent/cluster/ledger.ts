import type { Member } from '../membership/types.js';
import { readFacts } from './facts.js';

/**
 * When each member's facts last changed as seen here (receiver's clock, so
 * no clock skew between Pis enters the age). A member bumps `seq` every
 * publish period, so a growing age means its figures are no longer arriving.
 */
export class FactsLedger {
  private readonly seen = new Map<string, { seq: number; at: number }>();

  observe(members: readonly Member[], now: number): void {
    const ids = new Set<string>();
    for (const m of members) {
      ids.add(m.id);
      const f = readFacts(m.meta);
      if (!f) continue;
      const prev = this.seen.get(m.id);
      if (!prev || prev.seq !== f.seq) this.seen.set(m.id, { seq: f.seq, at: now });
    }
    for (const id of this.seen.keys()) if (!ids.has(id)) this.seen.delete(id);
  }

  /** Ms since the member's facts last changed; null when none arrived. */
  ageMs(id: string, now: number): number | null {
    const s = this.seen.get(id);
    return s ? Math.max(0, now - s.at) : null;
  }
}
