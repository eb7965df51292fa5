import type { HealthDocument } from '../health/aggregate.js';
import type { HostSnapshot } from '../host/types.js';
import type { StorageKind } from '../host/storage.js';
import { factsFrom, fitFacts, type NodeFacts } from './facts.js';

export interface FactsPublisherDeps {
  version: string;
  health: () => HealthDocument | null;
  snapshot: () => HostSnapshot | null;
  cpuPct: () => number | null;
  uptimeS: () => number;
  arch: string;
  model: () => string | null;
  /** The board's revision code and root disk kind (agent/host/hardware.ts); absent: unknown. */
  hardware?: () => { rev: string | null; storage: StorageKind | null };
  now: () => number;
  /** How often the figures are refreshed (and so re-gossiped); health changes go out at once. */
  periodMs: number;
}

export interface FactsPublisher {
  /** The `x` metadata entry fitting `budget` bytes; {} when nothing fits. Called on every membership refresh. */
  meta(budget: number): Record<string, unknown>;
  /** This node's facts as last published, with their age in ms. */
  current(): { facts: NodeFacts; ageMs: number } | null;
}

/**
 * Decides what this node publishes and how often. Figures change every
 * sample, so publishing each change would bump the gossip incarnation every
 * few seconds: they are refreshed once a period (the `seq` bump makes that
 * one update), while a change of health status or of failing checks goes out
 * on the next membership refresh.
 */
export function createFactsPublisher(d: FactsPublisherDeps): FactsPublisher {
  let seq = 0;
  let facts: NodeFacts | null = null;
  let at = 0;
  return {
    meta(budget) {
      const t = d.now();
      const health = d.health();
      const hw = d.hardware?.() ?? { rev: null, storage: null };
      // The board model and hardware are read shortly after start: publish them at once rather than a period later
      // (the node labels follow them, agent/labels).
      const hwChanged = facts !== null && (facts.rev !== hw.rev || facts.storage !== hw.storage);
      if (!facts || t - at >= d.periodMs || (facts.model === null && d.model() !== null) || hwChanged) {
        seq++;
        facts = factsFrom({ seq, version: d.version, health, snapshot: d.snapshot(), cpuPct: d.cpuPct(), uptimeS: d.uptimeS(), arch: d.arch, model: d.model(), hardware: hw });
        at = t;
      } else {
        const fresh = factsFrom({ seq, version: d.version, health, snapshot: null, cpuPct: null, uptimeS: 0, arch: d.arch, model: null });
        facts = { ...facts, health: fresh.health, checks: fresh.checks };
      }
      return fitFacts(facts, budget) ?? {};
    },
    current: () => (facts ? { facts, ageMs: d.now() - at } : null),
  };
}
