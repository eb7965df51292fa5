import { Type, type Static } from '@sinclair/typebox';

/**
 * What peers say to each other and what the formation endpoints answer.
 * Every peer request and answer also carries an `x-piswarm-auth` header
 * (see agent/peers/protocol.ts); these schemas are the bodies.
 */
export const PEER_AUTH_HEADER = 'x-piswarm-auth';
/** Peer request bodies are tiny; anything larger is refused before parsing. */
export const PEER_BODY_LIMIT = 4096;

const NodeId = Type.String({ pattern: '^[0-9a-f]{24}$' });
const Addr = Type.String({ minLength: 2, maxLength: 45 });
const SwarmId = Type.String({ minLength: 1, maxLength: 64, pattern: '^[0-9A-Za-z]+$' });
const NodeName = Type.String({ minLength: 1, maxLength: 63 });

export const FORMATION_PHASES = ['discovering', 'candidate', 'waiting', 'initialising', 'joining', 'member', 'manager', 'degraded', 'disabled'] as const;
export const FormationPhase = Type.Union(FORMATION_PHASES.map((p) => Type.Literal(p)));
export type FormationPhase = (typeof FORMATION_PHASES)[number];

/** The swarm a node is part of, as it reports it to peers. */
export const PeerSwarm = Type.Object(
  {
    id: SwarmId,
    createdAt: Type.Union([Type.String({ maxLength: 64 }), Type.Null()]),
    role: Type.Union([Type.Literal('manager'), Type.Literal('worker')]),
    /** Nodes in the swarm as the engine counts them (managers only), else null. */
    nodes: Type.Union([Type.Integer({ minimum: 0 }), Type.Null()]),
    /** Where to reach this swarm's managers (host:2377). */
    managerAddrs: Type.Array(Type.String({ maxLength: 64 }), { maxItems: 16 }),
    /** Running user-service tasks on this node (for the split-heal rule), null when unknown. */
    runningTasks: Type.Union([Type.Integer({ minimum: 0 }), Type.Null()]),
  },
  { additionalProperties: false },
);
export type PeerSwarm = Static<typeof PeerSwarm>;

export const HelloRequest = Type.Object(
  {
    v: Type.Literal(1),
    nodeId: NodeId,
    name: NodeName,
    addr: Addr,
    port: Type.Integer({ minimum: 1, maximum: 65535 }),
    /** The asker's swarm node id when its engine is in a swarm: a manager answers whether it still lists it. */
    swarmNodeId: Type.Optional(Type.String({ minLength: 1, maxLength: 64, pattern: '^[0-9a-z]+$' })),
  },
  { additionalProperties: false },
);
export type HelloRequest = Static<typeof HelloRequest>;

export const HelloResponse = Type.Object(
  {
    v: Type.Literal(1),
    nodeId: NodeId,
    name: NodeName,
    addr: Addr,
    port: Type.Integer({ minimum: 1, maximum: 65535 }),
    phase: FormationPhase,
    swarm: Type.Union([PeerSwarm, Type.Null()]),
    /** Swarms this node has seen (persisted): forming a new one is off once any exists. */
    seenSwarms: Type.Array(SwarmId, { maxItems: 16 }),
    /**
     * A manager's answer to the asker's swarmNodeId: whether its engine lists
     * that node. Absent when this node is no manager, was not asked, or its
     * node list is not fresh.
     */
    listsAsker: Type.Optional(Type.Boolean()),
  },
  { additionalProperties: false },
);
export type HelloResponse = Static<typeof HelloResponse>;

export const GrantRequest = Type.Object(
  {
    v: Type.Literal(1),
    nodeId: NodeId,
    name: NodeName,
    addr: Addr,
  },
  { additionalProperties: false },
);
export type GrantRequest = Static<typeof GrantRequest>;

/** The worker token travels only as AES-256-GCM ciphertext (see agent/peers/protocol.ts). */
export const GrantResponse = Type.Object(
  {
    v: Type.Literal(1),
    swarmId: SwarmId,
    createdAt: Type.Union([Type.String({ maxLength: 64 }), Type.Null()]),
    managerNodeId: NodeId,
    managerAddrs: Type.Array(Type.String({ maxLength: 64 }), { minItems: 1, maxItems: 16 }),
    iv: Type.String({ maxLength: 32 }),
    ciphertext: Type.String({ maxLength: 1024 }),
    tag: Type.String({ maxLength: 32 }),
  },
  { additionalProperties: false },
);
export type GrantResponse = Static<typeof GrantResponse>;

export const PeerView = Type.Object({
  nodeId: Type.String(),
  name: Type.String(),
  addr: Type.String(),
  port: Type.Integer(),
  phase: Type.String(),
  source: Type.String(),
  swarmId: Type.Union([Type.String(), Type.Null()]),
  role: Type.Union([Type.String(), Type.Null()]),
  confirmedAt: Type.Union([Type.String(), Type.Null()]),
  lastError: Type.Union([Type.String(), Type.Null()]),
});
export type PeerView = Static<typeof PeerView>;

export const TimelineEntry = Type.Object({
  at: Type.String(),
  from: Type.String(),
  to: Type.String(),
  reason: Type.String(),
});
export type TimelineEntry = Static<typeof TimelineEntry>;

/** A first-manager election's outcome, as /v1/formation shows it and formation.json keeps it. */
export const ElectionResult = Type.Object({ winner: Type.Union([Type.String(), Type.Null()]), rank: Type.Array(Type.String()), why: Type.String(), at: Type.String() });
export type ElectionResult = Static<typeof ElectionResult>;

export const FormationStatus = Type.Object({
  enabled: Type.Boolean(),
  nodeId: Type.String(),
  name: Type.String(),
  address: Type.Union([Type.String(), Type.Null()]),
  phase: FormationPhase,
  reason: Type.String(),
  swarm: Type.Union([Type.Object({ id: Type.String(), role: Type.String(), createdAt: Type.Union([Type.String(), Type.Null()]) }), Type.Null()]),
  confirmedPeers: Type.Array(PeerView),
  /**
   * The last first-manager election this node took part in: kept once the
   * swarm exists (and on joiners), so "who created it and why" stays
   * answerable. `at`: when this winner and reason were decided.
   */
  election: Type.Union([ElectionResult, Type.Null()]),
  split: Type.Union([Type.Object({ swarms: Type.Array(Type.String()), winner: Type.String(), action: Type.String() }), Type.Null()]),
  seenSwarms: Type.Array(Type.String()),
  foreignClusters: Type.Array(Type.Object({ clusterId: Type.String(), addr: Type.String(), lastSeen: Type.String() })),
  timeline: Type.Array(TimelineEntry),
});
export type FormationStatus = Static<typeof FormationStatus>;

export const PeersResponse = Type.Object({ peers: Type.Array(PeerView) });
export type PeersResponse = Static<typeof PeersResponse>;

/**
 * On-demand reads between members (POST, signed like every peer request):
 * what does not fit the gossip datagram. The request body is only `{"v":1}`;
 * who asks and for whom is in the signed header.
 */
export const PeerReadRequest = Type.Object({ v: Type.Literal(1) }, { additionalProperties: false });
export type PeerReadRequest = Static<typeof PeerReadRequest>;

/** Bounds of a checks answer: output per check, checks per answer. */
export const CHECK_OUTPUT_MAX = 512;
export const CHECKS_MAX = 16;

/** One non-passing health check result: no observed value, nothing but what explains the status. */
export const PeerCheck = Type.Object(
  {
    name: Type.String({ minLength: 1, maxLength: 64 }),
    status: Type.Union([Type.Literal('warn'), Type.Literal('fail')]),
    component: Type.Union([Type.String({ maxLength: 64 }), Type.Null()]),
    output: Type.String({ maxLength: CHECK_OUTPUT_MAX }),
    observedAt: Type.Union([Type.String({ maxLength: 40 }), Type.Null()]),
  },
  { additionalProperties: false },
);
export type PeerCheck = Static<typeof PeerCheck>;

/** POST /v1/peers/checks: a member's warn and fail results with their output, worst first. */
export const PeerChecksResponse = Type.Object(
  {
    v: Type.Literal(1),
    nodeId: NodeId,
    status: Type.Union([Type.Literal('pass'), Type.Literal('warn'), Type.Literal('fail')]),
    checks: Type.Array(PeerCheck, { maxItems: CHECKS_MAX }),
    /** Non-passing results left out to stay within CHECKS_MAX. */
    omitted: Type.Integer({ minimum: 0 }),
  },
  { additionalProperties: false },
);
export type PeerChecksResponse = Static<typeof PeerChecksResponse>;

/** Bounds of a services answer (the client reads at most 64 KiB of it). */
export const SERVICES_MAX = 100;
export const SERVICES_ANSWER_BYTES = 48 * 1024;

/** shared/wire/cluster.ts ServiceSummary as a schema: a manager's answer is checked against it. */
export const PeerServiceSummary = Type.Object(
  {
    name: Type.String({ maxLength: 256 }),
    image: Type.String({ maxLength: 512 }),
    mode: Type.Union([Type.Literal('replicated'), Type.Literal('global')]),
    desired: Type.Union([Type.Integer({ minimum: 0 }), Type.Null()]),
    running: Type.Integer({ minimum: 0 }),
    ports: Type.Array(Type.String({ maxLength: 64 }), { maxItems: 64 }),
    nodes: Type.Array(Type.String({ maxLength: 64 }), { maxItems: 256 }),
  },
  { additionalProperties: false },
);

/** POST /v1/peers/services: a manager's service summary (names, images, replicas, ports, nodes). */
export const PeerServicesResponse = Type.Object(
  {
    v: Type.Literal(1),
    nodeId: NodeId,
    services: Type.Array(PeerServiceSummary, { maxItems: SERVICES_MAX }),
    /** Services left out to stay within SERVICES_MAX and SERVICES_ANSWER_BYTES. */
    omitted: Type.Integer({ minimum: 0 }),
  },
  { additionalProperties: false },
);
export type PeerServicesResponse = Static<typeof PeerServicesResponse>;
