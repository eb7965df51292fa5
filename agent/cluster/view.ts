import type { SwarmNode, NodeListing } from '../docker/engine.js';
import type { Member } from '../membership/types.js';
import type { ClusterDocument, ClusterNode, ServiceSummary, ClusterNodeFacts, ClusterStep, GossipState, ManagerStatus } from '../../shared/wire/cluster.js';
import { readFacts, type NodeFacts } from './facts.js';

/** An autopilot step as the autopilot records it (agent/autopilot/autopilot.ts StepRecord). */
export interface StepInput {
  at: number;
  step: { kind: string; nodeId: string; hostname: string; reason: string; detail: string };
  outcome: 'done' | 'refused';
  refusal?: string;
}

export interface ClusterInputs {
  /** Wall clock (ms since the epoch), for the ISO times in the answer. */
  now: number;
  /** The membership's clock (Member.stateChangedAt is on it). */
  monoNow: number;
  clusterName: string;
  self: { id: string; hostname: string };
  /** Gossip members, self included; empty when gossip is off. */
  members: readonly Member[];
  /** Ms since a member's facts last changed here (FactsLedger.ageMs). */
  factsAgeMs: (id: string) => number | null;
  /** Members republish their figures this often; three periods without news is stale. */
  publishPeriodMs: number;
  /** A manager's cached node list, with the wall-clock time it was taken; null elsewhere. */
  engine: NodeListing | null;
  swarmId: string | null;
  election: { winner: string | null; why: string; at: string } | null;
  autopilot: { role: string; target: number | null; steps: readonly StepInput[] } | null;
  /** A manager's cached services; null elsewhere. */
  services?: ServiceSummary[] | null;
}

export const STEPS_SHOWN = 10;

const STATES: readonly GossipState[] = ['alive', 'suspect', 'dead', 'left'];

function managerStatus(n: SwarmNode): ManagerStatus | null {
  if (n.role !== 'manager') return null;
  if (n.leader) return 'Leader';
  if (n.reachability === 'reachable') return 'Reachable';
  if (n.reachability === 'unreachable') return 'Unreachable';
  return 'Unknown';
}

function metaString(m: Member, key: string): string | null {
  const v = m.meta[key];
  return typeof v === 'string' && v.length > 0 && v.length <= 64 ? v : null;
}

function metaNumber(m: Member | null, key: string): number | null {
  const v = m?.meta[key];
  return typeof v === 'number' && Number.isFinite(v) ? v : null;
}

function factsOf(m: Member | null, f: NodeFacts | null, ageMs: number | null, staleMs: number): ClusterNodeFacts {
  const uv = m?.meta.undervoltage;
  const bps = metaNumber(m, 'diskBps');
  return {
    version: f?.version ?? null,
    cpuPct: f?.cpuPct ?? null,
    memPct: f?.memPct ?? null,
    load1: f?.load1 ?? null,
    tempC: metaNumber(m, 'tempC'),
    undervoltage: typeof uv === 'boolean' ? uv : null,
    throttledNow: f?.throttledNow ?? null,
    rootFreePct: f?.rootFreePct ?? null,
    diskReadMBps: bps === null ? null : Math.round(bps / 1e5) / 10,
    uptimeS: f?.uptimeS ?? null,
    model: f?.model ?? null,
    arch: f?.arch ?? null,
    ageS: ageMs === null ? null : Math.round(ageMs / 1000),
    stale: ageMs === null || ageMs > staleMs || (m !== null && m.state !== 'alive'),
  };
}

/** Engine nodes by the gossip member they belong to: the published swarm node id, else a unique hostname. */
function matchEngine(members: readonly Member[], nodes: readonly SwarmNode[]): Map<string, SwarmNode> {
  const byId = new Map(nodes.map((n) => [n.id, n]));
  const byName = new Map<string, SwarmNode | null>();
  for (const n of nodes) byName.set(n.hostname, byName.has(n.hostname) ? null : n);
  const out = new Map<string, SwarmNode>();
  const used = new Set<string>();
  for (const m of members) {
    const sid = metaString(m, 'swarmNodeId');
    const n = (sid ? byId.get(sid) : undefined) ?? (sid ? undefined : byName.get(metaString(m, 'hostname') ?? '') ?? undefined);
    if (n && !used.has(n.id)) {
      out.set(m.id, n);
      used.add(n.id);
    }
  }
  return out;
}

function memberNode(m: Member, n: SwarmNode | undefined, i: ClusterInputs, staleMs: number): ClusterNode {
  const f = readFacts(m.meta);
  const role = metaString(m, 'role');
  return {
    id: m.id,
    hostname: metaString(m, 'hostname') ?? n?.hostname ?? m.id,
    addr: m.addr,
    self: m.id === i.self.id,
    gossip: { state: m.state, sinceS: Math.max(0, Math.round((i.monoNow - m.stateChangedAt) / 1000)) },
    swarm: {
      nodeId: n?.id ?? metaString(m, 'swarmNodeId'),
      role: n ? n.role : role === 'manager' || role === 'worker' ? role : 'none',
      state: n?.state ?? null,
      availability: n?.availability ?? null,
      managerStatus: n ? managerStatus(n) : null,
    },
    health: { status: f?.health ?? null, checks: f?.checks ?? [] },
    facts: factsOf(m, f, i.factsAgeMs(m.id), staleMs),
  };
}

function engineOnlyNode(n: SwarmNode, staleMs: number): ClusterNode {
  return {
    id: n.id,
    hostname: n.hostname,
    addr: n.addr || null,
    self: false,
    gossip: null,
    swarm: { nodeId: n.id, role: n.role, state: n.state, availability: n.availability, managerStatus: managerStatus(n) },
    health: { status: null, checks: [] },
    facts: factsOf(null, null, null, staleMs),
  };
}

function step(r: StepInput): ClusterStep {
  return {
    at: new Date(r.at).toISOString(),
    kind: r.step.kind,
    node: r.step.nodeId,
    hostname: r.step.hostname,
    reason: r.step.reason,
    detail: r.step.detail,
    outcome: r.outcome,
    refusal: r.refusal ?? null,
  };
}

/**
 * Pure: the /v1/cluster answer from what this node already holds in memory.
 * Every gossip member is listed whatever its state (a dead one as dead); a
 * manager adds the nodes its engine lists that gossip does not know.
 */
export function buildClusterView(i: ClusterInputs): ClusterDocument {
  const staleMs = 3 * i.publishPeriodMs;
  const engineNodes = i.engine?.nodes ?? [];
  const matched = matchEngine(i.members, engineNodes);
  const used = new Set([...matched.values()].map((n) => n.id));
  const nodes = [
    ...i.members.map((m) => memberNode(m, matched.get(m.id), i, staleMs)),
    ...engineNodes.filter((n) => !used.has(n.id)).map((n) => engineOnlyNode(n, staleMs)),
  ].sort((a, b) => a.hostname.localeCompare(b.hostname) || a.id.localeCompare(b.id));

  const members = Object.fromEntries(STATES.map((s) => [s, i.members.filter((m) => m.state === s).length])) as Record<GossipState, number>;
  const engineManagers = engineNodes.filter((n) => n.role === 'manager');
  const reachable = engineManagers.filter((n) => n.leader || n.reachability === 'reachable').length;
  const managers = i.engine ? engineManagers.length : nodes.filter((n) => n.gossip?.state === 'alive' && n.swarm.role === 'manager').length;
  const selfMember = i.members.find((m) => m.id === i.self.id);
  return {
    generatedAt: new Date(i.now).toISOString(),
    servedBy: { id: i.self.id, hostname: (selfMember && metaString(selfMember, 'hostname')) || i.self.hostname },
    cluster: {
      name: i.clusterName,
      swarmId: i.swarmId,
      source: i.engine ? 'engine' : 'gossip',
      engineListAgeS: i.engine ? Math.max(0, Math.round((i.now - i.engine.at) / 1000)) : null,
      managers,
      managersReachable: i.engine ? reachable : null,
      managerTarget: i.autopilot?.target ?? null,
      quorumMargin: i.engine && managers > 0 ? reachable - (Math.floor(managers / 2) + 1) : null,
      members,
      election: i.election,
      autopilot: i.autopilot ? { role: i.autopilot.role, steps: i.autopilot.steps.slice(-STEPS_SHOWN).map(step) } : null,
    },
    nodes,
    services: i.services ?? null,
  };
}
