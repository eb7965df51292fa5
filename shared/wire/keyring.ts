import { Type, type Static } from '@sinclair/typebox';

/**
 * Changing the cluster key of a live cluster (`piswarm cluster rotate-key`,
 * issue 16). Both bodies travel over the peer protocol (agent/peers/protocol.ts:
 * authenticated, addressed, replay-checked); the new key itself is sealed for
 * the one request (protocol.ts sealKey), never sent in the clear.
 *
 * A rotation is four steps, each applied by every node (agent/keyring/ring.ts):
 *   stage    accept the new key as well (sign with the old one still)
 *   promote  sign with the new key, accept the old one still
 *   drop     forget the old key: its holders are now another cluster
 *   abort    forget a staged key that was never promoted
 */
export const KEYRING_OPS = ['stage', 'promote', 'drop', 'abort'] as const;
export type KeyringOp = (typeof KEYRING_OPS)[number];

/** A cluster id (agent/identity/keys.ts): public, 11 base64url characters. */
export const ClusterIdSchema = Type.String({ pattern: '^[A-Za-z0-9_-]{11}$' });

export const SealedKey = Type.Object(
  {
    iv: Type.String({ maxLength: 32 }),
    ciphertext: Type.String({ maxLength: 1024 }),
    tag: Type.String({ maxLength: 32 }),
  },
  { additionalProperties: false },
);
export type SealedKey = Static<typeof SealedKey>;

/** POST /v1/peers/keyring: one step on the node addressed. */
export const KeyringRequest = Type.Object(
  {
    v: Type.Literal(1),
    op: Type.Union(KEYRING_OPS.map((o) => Type.Literal(o))),
    /** The new key's cluster id: the node checks the key it opens against it. */
    clusterId: ClusterIdSchema,
    key: SealedKey,
  },
  { additionalProperties: false },
);
export type KeyringRequest = Static<typeof KeyringRequest>;

export const KeyringResponse = Type.Object(
  {
    v: Type.Literal(1),
    nodeId: Type.String({ pattern: '^[0-9a-f]{24}$' }),
    /** The cluster ids the node accepts after the step, the one it signs with first. */
    clusterIds: Type.Array(ClusterIdSchema, { minItems: 1, maxItems: 4 }),
  },
  { additionalProperties: false },
);
export type KeyringResponse = Static<typeof KeyringResponse>;

/** POST /v1/peers/rotate-key: the operator (the CLI on a node) asks that node to rotate the whole cluster. */
export const RotateRequest = Type.Object(
  {
    v: Type.Literal(1),
    clusterId: ClusterIdSchema,
    key: SealedKey,
    /** Go on when a known peer does not answer the first step (it will be refused once back). */
    allowMissing: Type.Boolean(),
  },
  { additionalProperties: false },
);
export type RotateRequest = Static<typeof RotateRequest>;

export const RotationNode = Type.Object({
  nodeId: Type.String(),
  name: Type.String(),
  addr: Type.String(),
  /** The last step this node took: 'none' when it never answered. */
  reached: Type.Union([Type.Literal('none'), ...KEYRING_OPS.map((o) => Type.Literal(o))]),
  error: Type.Union([Type.String(), Type.Null()]),
});
export type RotationNode = Static<typeof RotationNode>;

export const RotateResponse = Type.Object({
  v: Type.Literal(1),
  from: ClusterIdSchema,
  to: ClusterIdSchema,
  /**
   * 'rotated': every node that took the first step signs with the new key and has dropped the old
   * (with allowMissing, nodes that never answered are listed with reached 'none');
   * 'incomplete': some took the first steps only, and accept both keys; 'aborted': the old key stays.
   */
  outcome: Type.Union([Type.Literal('rotated'), Type.Literal('aborted'), Type.Literal('incomplete')]),
  nodes: Type.Array(RotationNode, { maxItems: 256 }),
});
export type RotateResponse = Static<typeof RotateResponse>;

/**
 * POST /v1/peers/revoke: the operator revokes a lost card (`piswarm node
 * revoke NAME`), asking a swarm manager. In this order: the cluster key is
 * rotated on every other node (so the card can no longer get a grant), then
 * the node is demoted if a manager and removed from the swarm, then both
 * join tokens are rotated.
 */
export const RevokeRequest = Type.Object(
  {
    v: Type.Literal(1),
    /** The node's hostname, or its swarm node id. */
    name: Type.String({ minLength: 1, maxLength: 253, pattern: '^[A-Za-z0-9._-]+$' }),
    clusterId: ClusterIdSchema,
    key: SealedKey,
    allowMissing: Type.Boolean(),
  },
  { additionalProperties: false },
);
export type RevokeRequest = Static<typeof RevokeRequest>;

export const RevokeResponse = Type.Object({
  v: Type.Literal(1),
  name: Type.String(),
  /** The piswarm agents left out of the rotation as that node (by name or address). */
  excluded: Type.Array(Type.String(), { maxItems: 16 }),
  /** The swarm node, when the swarm had one by that name or id. */
  swarmNode: Type.Union([
    Type.Object({ id: Type.String(), hostname: Type.String(), wasManager: Type.Boolean(), removed: Type.Boolean() }),
    Type.Null(),
  ]),
  tokensRotated: Type.Boolean(),
  rotation: RotateResponse,
});
export type RevokeResponse = Static<typeof RevokeResponse>;
