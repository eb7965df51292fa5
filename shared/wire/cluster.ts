/**
 * GET /v1/cluster: the whole cluster as one node sees it (agent, CLI, dashboard and tests speak it).
 * Never a secret in it: no key, no token, no environment.
 */
export type GossipState = 'alive' | 'suspect' | 'dead' | 'left';
export type ManagerStatus = 'Leader' | 'Reachable' | 'Unreachable' | 'Unknown';

export interface ClusterNodeFacts {
  version: string | null;
  cpuPct: number | null;
  memPct: number | null;
  load1: number | null;
  tempC: number | null;
  /** Under-voltage now or since boot (Pi firmware). */
  undervoltage: boolean | null;
  /** Throttled, capped or under-voltage right now (Pi firmware). */
  throttledNow: boolean | null;
  rootFreePct: number | null;
  /** Benchmarked sequential read of the boot disk. */
  diskReadMBps: number | null;
  uptimeS: number | null;
  model: string | null;
  arch: string | null;
  /** Seconds since these figures were published (as seen by the answering node); null when none arrived. */
  ageS: number | null;
  /** Older than three publish periods: the member no longer sends them. */
  stale: boolean;
}

export interface ClusterNode {
  /** Gossip node id (the agent's identity), or the swarm node id for a node only the engine lists. */
  id: string;
  hostname: string;
  addr: string | null;
  self: boolean;
  /** Null: the engine lists the node but gossip does not know it (its agent is not running). */
  gossip: { state: GossipState; sinceS: number } | null;
  swarm: {
    nodeId: string | null;
    role: 'manager' | 'worker' | 'none';
    /** The engine's node state (ready, down, ...), from a manager's view; null when only gossip speaks. */
    state: string | null;
    availability: string | null;
    managerStatus: ManagerStatus | null;
  };
  health: { status: 'pass' | 'warn' | 'fail' | null; checks: string[] };
  facts: ClusterNodeFacts;
}

export interface ClusterStep {
  at: string;
  kind: string;
  node: string;
  hostname: string;
  reason: string;
  detail: string;
  outcome: 'done' | 'refused';
  refusal: string | null;
}

export interface ClusterDocument {
  generatedAt: string;
  servedBy: { id: string; hostname: string };
  cluster: {
    name: string;
    swarmId: string | null;
    /** 'engine': this node is a manager and its engine listed the nodes; 'gossip': members' own word only. */
    source: 'engine' | 'gossip';
    /** Age of the engine's node list (seconds); null without one. */
    engineListAgeS: number | null;
    managers: number;
    managersReachable: number | null;
    managerTarget: number | null;
    /** How many more managers can be lost before quorum is; null without an engine view. */
    quorumMargin: number | null;
    members: Record<GossipState, number>;
    election: { winner: string | null; why: string; at: string } | null;
    autopilot: { role: string; steps: ClusterStep[] } | null;
  };
  nodes: ClusterNode[];
  /** A manager's services (refreshed every few seconds); null on a worker. */
  services: ServiceSummary[] | null;
}

/** A swarm service as a manager's engine lists it: no spec beyond these fields ever leaves the agent. */
export interface ServiceSummary {
  name: string;
  image: string;
  mode: 'replicated' | 'global';
  /** Null for a global service. */
  desired: number | null;
  running: number;
  ports: string[];
  nodes: string[];
}

/** Prometheus HTTP service discovery (https://prometheus.io/docs/prometheus/latest/http_sd/). */
export type PrometheusTargetGroup = { targets: string[]; labels: Record<string, string> };
