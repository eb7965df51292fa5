import type { ClusterDocument } from '../../shared/wire/cluster.js';

/** [unix seconds, cpu %, mem %, temp °C]; null where the figure was unknown or stale. */
export type HistoryPoint = [number, number | null, number | null, number | null];

export interface HistoryDocument {
  intervalS: number;
  nodes: Record<string, { hostname: string; points: HistoryPoint[] }>;
}

/**
 * The serving agent's short memory of every node's figures, for the
 * dashboard's sparklines: `points` samples per node (60 x 10 s = 10 min),
 * at most `maxNodes` nodes; nodes gone from the view are forgotten. Bounded
 * whatever the cluster does: maxNodes x points x 4 numbers.
 */
export class ClusterHistory {
  private readonly byId = new Map<string, { hostname: string; points: HistoryPoint[] }>();

  constructor(private readonly opts: { points: number; maxNodes: number; intervalS: number }) {}

  record(doc: ClusterDocument, nowS: number): void {
    const seen = new Set<string>();
    for (const n of doc.nodes) {
      if (seen.size >= this.opts.maxNodes) break;
      seen.add(n.id);
      const f = n.facts;
      const live = !f.stale;
      const h = this.byId.get(n.id) ?? { hostname: n.hostname, points: [] };
      h.hostname = n.hostname;
      h.points.push([nowS, live ? f.cpuPct : null, live ? f.memPct : null, live ? f.tempC : null]);
      if (h.points.length > this.opts.points) h.points.splice(0, h.points.length - this.opts.points);
      this.byId.set(n.id, h);
    }
    for (const id of this.byId.keys()) if (!seen.has(id)) this.byId.delete(id);
  }

  toJSON(): HistoryDocument {
    return { intervalS: this.opts.intervalS, nodes: Object.fromEntries(this.byId) };
  }
}
