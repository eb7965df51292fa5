import { Type, type Static } from '@sinclair/typebox';

/**
 * Rolling agent upgrades (`piswarm upgrade`, issue 16): what the operator's
 * signature file holds and what travels over the peer protocol (every body
 * authenticated, addressed and replay-checked as in agent/peers/protocol.ts).
 *
 * A release is the tarball `npm run package` builds, signed with the
 * cluster's ed25519 release key (agent/upgrade/signature.ts). The private key
 * stays with the operator; every node holds the public half
 * (config `upgrade.releaseKey`) and verifies before it keeps or installs
 * anything, and the root installer verifies again.
 */

/** The largest release a node accepts (today's is about 1.6 MB). */
export const MAX_RELEASE_BYTES = 64 * 1024 * 1024;
/** Bytes per upload or download request; the body or answer is this in base64 plus a little. */
export const RELEASE_CHUNK_BYTES = 256 * 1024;
/** Body limit of the chunk route: base64 of one chunk and the JSON around it. */
export const RELEASE_BODY_LIMIT = Math.ceil((RELEASE_CHUNK_BYTES * 4) / 3) + 4096;
export const SIGNATURE_FORMAT = 'piswarm-release-signature';

const Sha256 = Type.String({ pattern: '^[0-9a-f]{64}$' });
/** MAJOR.MINOR.PATCH with an optional -pre-release; compared as semver (agent/upgrade/version.ts). */
export const ReleaseVersion = Type.String({ pattern: '^[0-9]{1,6}\\.[0-9]{1,6}\\.[0-9]{1,6}(-[0-9A-Za-z.-]{1,40})?$' });
const NodeIdS = Type.String({ pattern: '^[0-9a-f]{24}$' });

/** RELEASE.tar.gz.sig: written by `piswarm release sign`, carried with the release. */
export const ReleaseSignature = Type.Object(
  {
    format: Type.Literal(SIGNATURE_FORMAT),
    v: Type.Literal(1),
    version: ReleaseVersion,
    size: Type.Integer({ minimum: 1, maximum: MAX_RELEASE_BYTES }),
    sha256: Sha256,
    /** Which release key signed it: 11 characters of the public key's hash (a hint, not a check). */
    keyId: Type.String({ pattern: '^[A-Za-z0-9_-]{11}$' }),
    /** ed25519 over "piswarm-release-v1\nversion\nsize\nsha256", base64url. */
    signature: Type.String({ pattern: '^[A-Za-z0-9_-]{86}$' }),
  },
  { additionalProperties: false },
);
export type ReleaseSignature = Static<typeof ReleaseSignature>;

/** Why a node refused a release; the reason label of piswarm_release_refusals_total. */
export const REFUSAL_REASONS = ['no_release_key', 'unsigned', 'bad_signature', 'tampered', 'truncated', 'too_large', 'downgrade', 'malformed'] as const;
export type RefusalReason = (typeof REFUSAL_REASONS)[number];

/** The root installer's progress on a node (stateDir/upgrade/state.json). */
export const UPGRADE_STATES = ['requested', 'installing', 'probing', 'installed', 'rolled-back', 'refused', 'reverted'] as const;
export type UpgradeStateName = (typeof UPGRADE_STATES)[number];

export const UpgradeState = Type.Object(
  {
    sha256: Sha256,
    version: ReleaseVersion,
    /** The version it replaces. */
    from: Type.String({ maxLength: 64 }),
    state: Type.Union(UPGRADE_STATES.map((s) => Type.Literal(s))),
    at: Type.String({ maxLength: 40 }),
    detail: Type.String({ maxLength: 500 }),
  },
  { additionalProperties: false },
);
export type UpgradeState = Static<typeof UpgradeState>;

/** POST /v1/peers/release/offer: "here is a signed release"; the node verifies the signature first. */
export const OfferRequest = Type.Object({ v: Type.Literal(1), signature: ReleaseSignature }, { additionalProperties: false });
export type OfferRequest = Static<typeof OfferRequest>;

export const OfferResponse = Type.Object(
  {
    v: Type.Literal(1),
    nodeId: NodeIdS,
    /** The version this node runs. */
    running: Type.String({ maxLength: 64 }),
    /** current: it runs this version already; receive: send from `have`; ready: it holds the whole release. */
    state: Type.Union([Type.Literal('current'), Type.Literal('receive'), Type.Literal('ready')]),
    have: Type.Integer({ minimum: 0, maximum: MAX_RELEASE_BYTES }),
  },
  { additionalProperties: false },
);
export type OfferResponse = Static<typeof OfferResponse>;

/** POST /v1/peers/release/chunk: bytes [offset, offset + data) of an offered release. */
export const ChunkRequest = Type.Object(
  {
    v: Type.Literal(1),
    sha256: Sha256,
    offset: Type.Integer({ minimum: 0, maximum: MAX_RELEASE_BYTES }),
    data: Type.String({ minLength: 4, maxLength: Math.ceil((RELEASE_CHUNK_BYTES * 4) / 3) + 4, pattern: '^[A-Za-z0-9+/]*={0,2}$' }),
  },
  { additionalProperties: false },
);
export type ChunkRequest = Static<typeof ChunkRequest>;

export const ChunkResponse = Type.Object(
  { v: Type.Literal(1), nodeId: NodeIdS, have: Type.Integer({ minimum: 0, maximum: MAX_RELEASE_BYTES }), complete: Type.Boolean() },
  { additionalProperties: false },
);
export type ChunkResponse = Static<typeof ChunkResponse>;

/** POST /v1/peers/release/install: install a release this node holds whole (the root installer runs it). */
export const InstallRequest = Type.Object({ v: Type.Literal(1), sha256: Sha256 }, { additionalProperties: false });
export type InstallRequest = Static<typeof InstallRequest>;

/**
 * POST /v1/peers/release/revert (`piswarm upgrade --abort`): leave `version`.
 * The node forgets it as the cluster's version, and if it runs it (installed
 * by the root installer, its previous release kept) asks the installer to
 * put the previous release back.
 */
export const RevertRequest = Type.Object({ v: Type.Literal(1), version: ReleaseVersion }, { additionalProperties: false });
export type RevertRequest = Static<typeof RevertRequest>;

/** POST /v1/peers/release/target: the cluster's version, declared when a rollout finished; nodes that were off catch up to it. */
export const TargetRequest = Type.Object({ v: Type.Literal(1), signature: ReleaseSignature }, { additionalProperties: false });
export type TargetRequest = Static<typeof TargetRequest>;

/** POST /v1/peers/release/status (body `{ v: 1 }`), and the answer of install and target. */
export const ReleaseStatus = Type.Object(
  {
    v: Type.Literal(1),
    nodeId: NodeIdS,
    running: Type.String({ maxLength: 64 }),
    upgrade: Type.Union([UpgradeState, Type.Null()]),
    target: Type.Union([ReleaseSignature, Type.Null()]),
  },
  { additionalProperties: false },
);
export type ReleaseStatus = Static<typeof ReleaseStatus>;

/** POST /v1/peers/release/fetch: a node catching up reads the target release from a peer that holds it. */
export const FetchRequest = Type.Object(
  { v: Type.Literal(1), sha256: Sha256, offset: Type.Integer({ minimum: 0, maximum: MAX_RELEASE_BYTES }) },
  { additionalProperties: false },
);
export type FetchRequest = Static<typeof FetchRequest>;

export const FetchResponse = Type.Object(
  {
    v: Type.Literal(1),
    nodeId: NodeIdS,
    sha256: Sha256,
    offset: Type.Integer({ minimum: 0, maximum: MAX_RELEASE_BYTES }),
    data: Type.String({ maxLength: Math.ceil((RELEASE_CHUNK_BYTES * 4) / 3) + 4, pattern: '^[A-Za-z0-9+/]*={0,2}$' }),
  },
  { additionalProperties: false },
);
export type FetchResponse = Static<typeof FetchResponse>;
