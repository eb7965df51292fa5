import type { FastifyPluginAsync, FastifyReply, FastifyRequest } from 'fastify';
import { Value } from '@sinclair/typebox/value';
import { PiswarmError, type ErrorCode } from '../../shared/errors.js';
import {
  FormationStatus,
  GrantRequest,
  HelloRequest,
  PEER_AUTH_HEADER,
  PEER_BODY_LIMIT,
  PeerReadRequest,
  PeersResponse,
  type GrantResponse,
  type PeerChecksResponse,
  type PeerServicesResponse,
  type HelloResponse,
  type PeerView,
} from '../../shared/wire/peer.js';
import { KeyringRequest, RevokeRequest, RotateRequest, type KeyringResponse, type RevokeResponse, type RotateResponse } from '../../shared/wire/keyring.js';
import { ChunkRequest, FetchRequest, InstallRequest, OfferRequest, RELEASE_BODY_LIMIT, RevertRequest, TargetRequest } from '../../shared/wire/release.js';
import type { ReleaseHandlers } from '../upgrade/subsystem.js';
import { errorBody } from '../http/errors.js';
import type { ClusterKeys } from '../identity/keys.js';
import type { NodeIdentity } from '../identity/identity.js';
import { AuthError, sealToken, signResponse, verifyRequest, type AuthHeader, type ReplayCache, type SelfAddressing } from './protocol.js';

export interface GrantSource {
  swarmId: string;
  createdAt: string | null;
  managerAddrs: string[];
  /** The worker join token; never logged, never returned in clear. */
  workerToken: string;
}

export interface PeerRouteContext {
  keys: ClusterKeys | null;
  identity: NodeIdentity;
  windowMs: number;
  replay: ReplayCache;
  /** Which requests are addressed to this node (replays meant for another node are refused). */
  self: SelfAddressing;
  now(): number;
  nonce(): string;
  iv(): Buffer;
  /** Answers a verified hello; also a hint that the caller exists. */
  hello(req: HelloRequest, remote: string): HelloResponse;
  /** Throws PISWARM_ERR_NOT_MANAGER unless this node is a manager. */
  grantSource(): Promise<GrantSource>;
  onGrantIssued(joiner: GrantRequest): void;
  status(): FormationStatus;
  peers(): PeerView[];
  /** Swarm nodes as a manager's engine lists them; throws NOT_MANAGER elsewhere. */
  nodes(): Promise<unknown[]>;
  /** This node's warn and fail checks with their output, bounded (agent/cluster/check-output.ts). */
  checks(): Omit<PeerChecksResponse, 'v' | 'nodeId'>;
  /** A manager's cached service summary, bounded; throws NOT_MANAGER elsewhere, UNAVAILABLE before the first listing. */
  services(): Promise<Omit<PeerServicesResponse, 'v' | 'nodeId'>>;
  authFailure(reason: string): void;
  /** A refused grant request, by reason (see grantRefusalReason). */
  grantRefused(reason: string): void;
  /** One step of a cluster key change on this node (agent/keyring); absent: UNAVAILABLE. */
  keyringStep?(auth: AuthHeader, req: KeyringRequest): KeyringResponse;
  /** The operator's whole-cluster rotation, run from this node (agent/keyring). */
  rotate?(auth: AuthHeader, req: RotateRequest): Promise<RotateResponse>;
  /** The operator's revoke of a node, run on this manager (agent/keyring/revoke.ts). */
  revoke?(auth: AuthHeader, req: RevokeRequest): Promise<RevokeResponse>;
  /** Releases offered, sent, installed and read (agent/upgrade); absent: UNAVAILABLE. */
  release?: ReleaseHandlers;
}

declare module 'fastify' {
  interface FastifyRequest {
    piswarmRawBody?: string;
  }
}

const NO_QUERY = { type: 'object', properties: {}, additionalProperties: false } as const;

/** The `reason` of piswarm_formation_grants_refused_total for the error code a refused caller got. */
const REFUSAL_REASONS: Partial<Record<ErrorCode, string>> = {
  PISWARM_ERR_BAD_REQUEST: 'malformed',
  PISWARM_ERR_BODY_TOO_LARGE: 'too_large',
  PISWARM_ERR_UNSUPPORTED_MEDIA: 'unsupported_media',
  PISWARM_ERR_NO_CLUSTER_KEY: 'no_key',
  PISWARM_ERR_NOT_MANAGER: 'not_manager',
  PISWARM_ERR_DOCKER: 'engine',
  PISWARM_ERR_DOCKER_UNREACHABLE: 'engine',
};

/**
 * Why a grant request was refused, from the error that refused it: an
 * authentication failure names its own reason (malformed, wrong_cluster,
 * bad_mac, stale, replay), anything else is named by the stable code its
 * caller got (a body that is not JSON is `malformed`, as one that is not a
 * grant request).
 */
export function grantRefusalReason(err: Error): string {
  if (err instanceof AuthError) return err.reason;
  return REFUSAL_REASONS[errorBody(err).body.code] ?? 'internal';
}

/**
 * Peer endpoints (POST /v1/peers/hello, POST /v1/grants, and the on-demand
 * reads POST /v1/peers/checks and POST /v1/peers/services) and the read-only
 * formation views (GET /v1/formation, GET /v1/peers). Errors are thrown as
 * PiswarmError so the app's one error handler answers them with a stable
 * code; nothing here ever puts a token or key into an answer in clear.
 */
export function createPeerRoutes(ctx: PeerRouteContext): FastifyPluginAsync {
  return async (app) => {
    // Peer bodies are JSON and nothing else: another media type (text/plain
    // was parsed as text before) is 415 before anything is read.
    app.removeAllContentTypeParsers();
    // The MAC covers the exact bytes sent, so keep them: re-serialising the
    // parsed object would not reproduce them byte for byte.
    app.addContentTypeParser('application/json', { parseAs: 'string' }, (req: FastifyRequest, body: string | Buffer, done) => {
      const text = typeof body === 'string' ? body : body.toString('utf8');
      req.piswarmRawBody = text;
      try {
        done(null, JSON.parse(text));
      } catch {
        done(new PiswarmError('PISWARM_ERR_BAD_REQUEST', 'body is not valid JSON'), undefined);
      }
    });

    // Every refused grant request is counted here, once: refusals that never
    // reach the handler (not JSON, oversized, another media type) as much as
    // those it throws.
    app.addHook('onError', async (req, _reply, err) => {
      if (req.routeOptions.url === '/v1/grants') ctx.grantRefused(grantRefusalReason(err));
      // Refused by the app's length check (a declared length over the route's limit) or by the parser.
      const code = (err as { code?: string }).code;
      if (code === 'FST_ERR_CTP_BODY_TOO_LARGE' || code === 'PISWARM_ERR_BODY_TOO_LARGE') ctx.authFailure('too_large');
    });

    const authenticate = (req: FastifyRequest, path: string) => {
      if (!ctx.keys) throw new PiswarmError('PISWARM_ERR_NO_CLUSTER_KEY');
      try {
        // The keys it came under are kept for the answer: a key change may drop them meanwhile.
        return verifyRequest(ctx.keys, { method: req.method, path, body: req.piswarmRawBody ?? '', header: req.headers[PEER_AUTH_HEADER], now: ctx.now(), windowMs: ctx.windowMs, replay: ctx.replay, self: ctx.self });
      } catch (err) {
        if (err instanceof AuthError) ctx.authFailure(err.reason);
        throw err;
      }
    };

    const validate = <T>(schema: Parameters<typeof Value.Check>[0], body: unknown, what: string): T => {
      if (!Value.Check(schema, body)) {
        const first = Value.Errors(schema, body).First();
        ctx.authFailure('malformed_body');
        throw new PiswarmError('PISWARM_ERR_BAD_REQUEST', `${what}: ${first ? `${first.path || '/'} ${first.message}` : 'invalid body'}`);
      }
      return body as T;
    };

    const route = { bodyLimit: PEER_BODY_LIMIT, schema: { querystring: NO_QUERY } };

    /** A 200 answer bound to the request it answers (its nonce and addressee). */
    const signed = (reply: FastifyReply, auth: AuthHeader & { keys: ClusterKeys }, payload: object, nonce = ctx.nonce()) => {
      const answer = JSON.stringify(payload);
      const header = signResponse(auth.keys, { requestNonce: auth.nonce, to: auth.to, status: 200, body: answer, nodeId: ctx.identity.nodeId, now: ctx.now(), nonce });
      return reply.code(200).header(PEER_AUTH_HEADER, header).type('application/json').send(answer);
    };

    app.post('/v1/peers/hello', route, async (req, reply) => {
      const auth = authenticate(req, '/v1/peers/hello');
      const body = validate<HelloRequest>(HelloRequest, req.body, 'hello');
      if (body.nodeId !== auth.nodeId) {
        ctx.authFailure('malformed_body');
        throw new PiswarmError('PISWARM_ERR_BAD_REQUEST', 'hello: nodeId differs from the signed node id');
      }
      return signed(reply, auth, ctx.hello(body, req.socket.remoteAddress ?? ''));
    });

    app.post('/v1/grants', route, async (req, reply) => {
      const auth = authenticate(req, '/v1/grants');
      const joiner = validate<GrantRequest>(GrantRequest, req.body, 'grant');
      if (joiner.nodeId !== auth.nodeId) throw new PiswarmError('PISWARM_ERR_BAD_REQUEST', 'grant: nodeId differs from the signed node id');
      const src = await ctx.grantSource();
      const responseNonce = ctx.nonce();
      const sealed = sealToken(
        auth.keys,
        { requestNonce: auth.nonce, responseNonce, joinerId: joiner.nodeId, managerId: ctx.identity.nodeId, swarmId: src.swarmId, managerAddrs: src.managerAddrs },
        src.workerToken,
        ctx.iv(),
      );
      const grant: GrantResponse = { v: 1, swarmId: src.swarmId, createdAt: src.createdAt, managerNodeId: ctx.identity.nodeId, managerAddrs: src.managerAddrs, ...sealed };
      ctx.onGrantIssued(joiner);
      return signed(reply, auth, grant, responseNonce);
    });

    // Reads for the dashboard: answered from memory (health is evaluated over
    // cached state, services are the manager's last listing), never an engine call.
    app.post('/v1/peers/checks', route, async (req, reply) => {
      const auth = authenticate(req, '/v1/peers/checks');
      validate<PeerReadRequest>(PeerReadRequest, req.body, 'checks');
      const answer: PeerChecksResponse = { v: 1, nodeId: ctx.identity.nodeId, ...ctx.checks() };
      return signed(reply, auth, answer);
    });

    app.post('/v1/peers/services', route, async (req, reply) => {
      const auth = authenticate(req, '/v1/peers/services');
      validate<PeerReadRequest>(PeerReadRequest, req.body, 'services');
      const answer: PeerServicesResponse = { v: 1, nodeId: ctx.identity.nodeId, ...(await ctx.services()) };
      return signed(reply, auth, answer);
    });

    // A cluster key change: a step on this node, or (the operator, through
    // the CLI on a node) the whole rotation run from here.
    app.post('/v1/peers/keyring', route, async (req, reply) => {
      const auth = authenticate(req, '/v1/peers/keyring');
      const body = validate<KeyringRequest>(KeyringRequest, req.body, 'keyring');
      if (!ctx.keyringStep) throw new PiswarmError('PISWARM_ERR_UNAVAILABLE', 'key changes are not wired on this node');
      return signed(reply, auth, ctx.keyringStep(auth, body));
    });

    app.post('/v1/peers/rotate-key', route, async (req, reply) => {
      const auth = authenticate(req, '/v1/peers/rotate-key');
      const body = validate<RotateRequest>(RotateRequest, req.body, 'rotate-key');
      if (!ctx.rotate) throw new PiswarmError('PISWARM_ERR_UNAVAILABLE', 'key changes are not wired on this node');
      return signed(reply, auth, await ctx.rotate(auth, body));
    });

    app.post('/v1/peers/revoke', route, async (req, reply) => {
      const auth = authenticate(req, '/v1/peers/revoke');
      const body = validate<RevokeRequest>(RevokeRequest, req.body, 'revoke');
      if (!ctx.revoke) throw new PiswarmError('PISWARM_ERR_UNAVAILABLE', 'revoke is not wired on this node');
      return signed(reply, auth, await ctx.revoke(auth, body));
    });

    // Rolling upgrades (agent/upgrade): every body authenticated like the rest; the release itself is verified against the release key.
    const releaseRoute = <T>(path: string, schema: Parameters<typeof Value.Check>[0], handle: (h: ReleaseHandlers, body: T) => object, bodyLimit = PEER_BODY_LIMIT) =>
      app.post(path, { ...route, bodyLimit }, async (req, reply) => {
        const auth = authenticate(req, path);
        const body = validate<T>(schema, req.body, path.slice('/v1/peers/'.length));
        if (!ctx.release) throw new PiswarmError('PISWARM_ERR_UNAVAILABLE', 'upgrades are not wired on this node (no cluster key?)');
        return signed(reply, auth, handle(ctx.release, body));
      });
    releaseRoute<OfferRequest>('/v1/peers/release/offer', OfferRequest, (h, b) => h.offer(b));
    releaseRoute<ChunkRequest>('/v1/peers/release/chunk', ChunkRequest, (h, b) => h.chunk(b), RELEASE_BODY_LIMIT);
    releaseRoute<InstallRequest>('/v1/peers/release/install', InstallRequest, (h, b) => h.install(b.sha256));
    releaseRoute<TargetRequest>('/v1/peers/release/target', TargetRequest, (h, b) => h.target(b));
    releaseRoute<RevertRequest>('/v1/peers/release/revert', RevertRequest, (h, b) => h.revert(b));
    releaseRoute<PeerReadRequest>('/v1/peers/release/status', PeerReadRequest, (h) => h.status());
    releaseRoute<FetchRequest>('/v1/peers/release/fetch', FetchRequest, (h, b) => h.fetch(b));

    app.get('/v1/formation', { schema: { querystring: NO_QUERY, response: { 200: FormationStatus } } }, async () => ctx.status());
    app.get('/v1/peers', { schema: { querystring: NO_QUERY, response: { 200: PeersResponse } } }, async () => ({ peers: ctx.peers() }));
    app.get('/v1/nodes', { schema: { querystring: NO_QUERY } }, async () => ({ nodes: await ctx.nodes() }));
  };
}
