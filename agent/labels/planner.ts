import { LABEL_KEYS, labelsFor, type Desired, type HardwareFacts } from './labels-for.js';

/** A swarm node as the engine listed it: what the planner needs of it. */
export interface LabelledNode {
  id: string;
  hostname: string;
  /** The engine's version index of the node object: an update must name it. */
  version: number;
  labels: Readonly<Record<string, string>>;
}

/** One `node update`: the node's whole new label map, sent with the version it was computed from. */
export interface LabelUpdate {
  nodeId: string;
  hostname: string;
  version: number;
  labels: Record<string, string>;
  /** The keys set (with their new values) and removed, for the log. */
  set: Record<string, string>;
  removed: string[];
  /** What the facts asked for; the executor remembers it as applied (see planLabels). */
  desiredKey: string;
}

/** A stable text of what the facts ask for a node: equal texts, equal facts. */
export const desiredKey = (d: Desired): string => JSON.stringify(LABEL_KEYS.map((k) => (k in d ? d[k] : '?')));

export interface LabelPlan {
  updates: LabelUpdate[];
  /** Nodes whose labels already say what their facts ask (node id -> desiredKey): remembered as applied. */
  settled: Map<string, string>;
}

/**
 * Pure: at most one update per node, only where its labels differ from what
 * its facts ask for. A node without facts (its member is not in gossip) is
 * left alone; a key whose fact is unknown is left as it is; labels outside
 * LABEL_KEYS (a user's own, the autopilot's) are copied unchanged.
 *
 * `applied`: per node, the desiredKey this leader already applied or found in
 * place. Labels change only when facts change: when they are the same as last
 * time, the node is skipped even if its labels differ (an operator edited
 * them, or the listing predates the update), so the leader never fights anyone
 * in a loop.
 */
export function planLabels(nodes: readonly LabelledNode[], facts: ReadonlyMap<string, HardwareFacts>, applied: ReadonlyMap<string, string> = new Map()): LabelPlan {
  const updates: LabelUpdate[] = [];
  const settled = new Map<string, string>();
  for (const n of nodes) {
    const f = facts.get(n.id);
    if (!f) continue;
    const want = labelsFor(f);
    const key = desiredKey(want);
    if (applied.get(n.id) === key) continue;
    const labels: Record<string, string> = { ...n.labels };
    const set: Record<string, string> = {};
    const removed: string[] = [];
    for (const k of LABEL_KEYS) {
      if (!(k in want)) continue;
      const v = want[k];
      if (v === null || v === undefined) {
        if (k in labels) {
          delete labels[k];
          removed.push(k);
        }
      } else if (labels[k] !== v) {
        labels[k] = v;
        set[k] = v;
      }
    }
    if (Object.keys(set).length === 0 && removed.length === 0) settled.set(n.id, key);
    else updates.push({ nodeId: n.id, hostname: n.hostname, version: n.version, labels, set, removed, desiredKey: key });
  }
  return { updates, settled };
}

/** How many of LABEL_KEYS the nodes carry (the managed-labels gauge). */
export function countManaged(nodes: readonly LabelledNode[]): number {
  return nodes.reduce((sum, n) => sum + LABEL_KEYS.filter((k) => k in n.labels).length, 0);
}
