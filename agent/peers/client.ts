import { randomBytes } from 'node:crypto';
import { Value } from '@sinclair/typebox/value';
import { Agent, request } from 'undici';
import { PiswarmError, isPiswarmError, type ErrorCode } from '../../shared/errors.js';
import {
  GrantResponse,
  HelloResponse,
  PEER_AUTH_HEADER,
  PeerChecksResponse,
  PeerServicesResponse,
  type GrantRequest,
  type HelloRequest,
} from '../../shared/wire/peer.js';
import { KeyringResponse, RevokeResponse, RotateResponse, type KeyringOp } from '../../shared/wire/keyring.js';
import { ChunkResponse, FetchResponse, OfferResponse, RELEASE_BODY_LIMIT, ReleaseStatus, type ReleaseSignature } from '../../shared/wire/release.js';
import { deriveClusterKeys, keysFor, type ClusterKeys } from '../identity/keys.js';
import type { NodeIdentity } from '../identity/identity.js';
import { joinHostPort } from '../net/address.js';
import { AuthError, addressee, openToken, sealKey, signRequest, verifyResponse } from './protocol.js';

export interface PeerTarget {
  addr: string;
  port: number;
  /**
   * The node expected there, when known: the request is addressed to it (and
   * the answer must come from it); unknown, it is addressed to addr:port.
   */
  nodeId?: string | null;
}

export interface VerifiedHello {
  /** Node id proven by the answer's MAC (equals response.nodeId). */
  nodeId: string;
  response: HelloResponse;
}

export interface OpenedGrant {
  token: string;
  swarmId: string;
  createdAt: string | null;
  managerAddrs: string[];
  managerNodeId: string;
}

export interface PeerClient {
  hello(target: PeerTarget, body: HelloRequest, signal?: AbortSignal): Promise<VerifiedHello>;
  grant(target: PeerTarget, body: GrantRequest, signal?: AbortSignal): Promise<OpenedGrant>;
  close(): Promise<void>;
}

/** A cluster key change (agent/keyring): the new key sealed for each request. */
export interface KeyringClient {
  /** One step on the node addressed; answers the cluster ids it accepts after it. */
  keyringStep(target: PeerTarget, op: KeyringOp, key: string, signal?: AbortSignal): Promise<KeyringResponse>;
  /** The operator asks the node addressed to rotate the whole cluster to `key` (long: every node, every step). */
  rotate(target: PeerTarget, key: string, allowMissing: boolean, timeoutMs: number): Promise<RotateResponse>;
  /** The operator asks the manager addressed to revoke node `name`, rotating the cluster key to `key`. */
  revoke(target: PeerTarget, name: string, key: string, allowMissing: boolean, timeoutMs: number): Promise<RevokeResponse>;
}

/** Releases (agent/upgrade): offered, sent in chunks, installed, read back by a node catching up. */
export interface ReleaseClient {
  releaseOffer(target: PeerTarget, signature: ReleaseSignature): Promise<OfferResponse>;
  releaseChunk(target: PeerTarget, sha256: string, offset: number, data: Buffer): Promise<ChunkResponse>;
  releaseInstall(target: PeerTarget, sha256: string): Promise<ReleaseStatus>;
  releaseTarget(target: PeerTarget, signature: ReleaseSignature): Promise<ReleaseStatus>;
  releaseRevert(target: PeerTarget, version: string): Promise<ReleaseStatus>;
  releaseStatus(target: PeerTarget, signal?: AbortSignal): Promise<ReleaseStatus>;
  releaseFetch(target: PeerTarget, sha256: string, offset: number): Promise<FetchResponse>;
}

/** On-demand reads (agent/cluster): answers verified, and from the node addressed. */
export interface PeerReadClient {
  checks(target: PeerTarget & { nodeId: string }, signal?: AbortSignal): Promise<PeerChecksResponse>;
  services(target: PeerTarget & { nodeId: string }, signal?: AbortSignal): Promise<PeerServicesResponse>;
}

export interface PeerClientOptions {
  keys: ClusterKeys;
  identity: NodeIdentity;
  /** One request's whole deadline: connect, headers and body. */
  timeoutMs: number;
  /** Accepted clock difference for answers. */
  windowMs: number;
  now?: () => number;
  nonce?: () => string;
}

const MAX_ANSWER_BYTES = 64 * 1024;
/** Refusal codes of a peer worth telling apart (its error answers are unsigned hints). */
const PASSED_THROUGH: ReadonlySet<string> = new Set<ErrorCode>(['PISWARM_ERR_NOT_MANAGER', 'PISWARM_ERR_WRONG_CLUSTER', 'PISWARM_ERR_MISADDRESSED', 'PISWARM_ERR_PROTOCOL_VERSION', 'PISWARM_ERR_KEYRING', 'PISWARM_ERR_BUSY', 'PISWARM_ERR_NOT_FOUND', 'PISWARM_ERR_BAD_REQUEST', 'PISWARM_ERR_RELEASE_REFUSED', 'PISWARM_ERR_UPGRADE']);

/**
 * undici with explicit deadlines: a dead Pi must cost at most `timeoutMs`
 * per request, never undici's 300 s defaults. Every answer is verified
 * before anything in it is believed.
 */
export function createPeerClient(opts: PeerClientOptions): PeerClient & PeerReadClient & KeyringClient & ReleaseClient {
  const now = opts.now ?? Date.now;
  const nonce = opts.nonce ?? (() => randomBytes(16).toString('base64url'));
  const dispatcher = new Agent({
    connect: { timeout: opts.timeoutMs },
    headersTimeout: opts.timeoutMs,
    bodyTimeout: opts.timeoutMs,
    keepAliveTimeout: 10_000,
    connections: 4,
  });

  /** `payload` may depend on the request (a key sealed for it): its nonce, addressee and key. */
  type Payload = object | ((r: { nonce: string; to: string; keys: ClusterKeys }) => object);

  async function call(target: PeerTarget, path: string, payload: Payload, signal?: AbortSignal, timeoutMs = opts.timeoutMs, maxAnswer = MAX_ANSWER_BYTES): Promise<{ body: string; nodeId: string; requestNonce: string; responseNonce: string; keys: ClusterKeys }> {
    const reqNonce = nonce();
    const to = addressee(target);
    // The primary key now (a rotation may change it meanwhile): the answer
    // must come under the key the request was made with.
    const keys = keysFor(opts.keys, opts.keys.clusterId)!;
    const body = JSON.stringify(typeof payload === 'function' ? payload({ nonce: reqNonce, to, keys }) : payload);
    const header = signRequest(keys, { method: 'POST', path, body, nodeId: opts.identity.nodeId, to, now: now(), nonce: reqNonce });
    const deadline = AbortSignal.timeout(timeoutMs);
    const sig = signal ? AbortSignal.any([signal, deadline]) : deadline;
    let status: number;
    let text: string;
    let answerAuth: unknown;
    try {
      const res = await request(`http://${joinHostPort(target.addr, target.port)}${path}`, {
        method: 'POST',
        body,
        headers: { 'content-type': 'application/json', [PEER_AUTH_HEADER]: header },
        dispatcher,
        signal: sig,
      });
      status = res.statusCode;
      answerAuth = res.headers[PEER_AUTH_HEADER];
      const chunks: Buffer[] = [];
      let size = 0;
      for await (const chunk of res.body) {
        size += (chunk as Buffer).length;
        if (size > maxAnswer) {
          res.body.destroy();
          throw new PiswarmError('PISWARM_ERR_PEER_UNVERIFIED', `answer of ${target.addr} exceeds ${maxAnswer} bytes`);
        }
        chunks.push(chunk as Buffer);
      }
      text = Buffer.concat(chunks).toString('utf8');
    } catch (err) {
      if (isPiswarmError(err)) throw err;
      throw new PiswarmError('PISWARM_ERR_PEER_UNREACHABLE', `peer ${target.addr}:${target.port} did not answer: ${(err as NodeJS.ErrnoException).code ?? (err as Error).name}`, { cause: err });
    }
    if (status !== 200) {
      // Error answers are not signed (the app's shared error handler writes
      // them), so they are hints only: report the code, believe nothing else.
      let code = 'unknown';
      let said = '';
      let reason: string | undefined;
      try {
        const e = JSON.parse(text) as { code?: unknown; message?: unknown; details?: { reason?: unknown } };
        code = String(e.code ?? 'unknown').slice(0, 64);
        said = typeof e.message === 'string' ? e.message.replace(/[^\x20-\x7e]/g, '?').slice(0, 300) : '';
        if (typeof e.details?.reason === 'string' && /^[a-z_]{1,32}$/.test(e.details.reason)) reason = e.details.reason;
      } catch {
        code = 'unparsable';
      }
      const known = PASSED_THROUGH.has(code) ? (code as ErrorCode) : 'PISWARM_ERR_PEER_UNVERIFIED';
      // The peer's own words for the refusals worth telling apart (an unsigned hint, shown as the peer's).
      const hint = known !== 'PISWARM_ERR_PEER_UNVERIFIED' && said ? `: ${said}` : '';
      throw new PiswarmError(known, `peer ${target.addr}:${target.port} refused ${path} (${status} ${code})${hint}`, { details: { status, code, ...(reason ? { reason } : {}) } });
    }
    try {
      const h = verifyResponse(keys, { requestNonce: reqNonce, to, status, body: text, header: answerAuth, now: now(), windowMs: opts.windowMs });
      if (target.nodeId && h.nodeId !== target.nodeId) throw new AuthError('misaddressed', `answered by ${h.nodeId}, not by ${target.nodeId}`);
      return { body: text, nodeId: h.nodeId, responseNonce: h.nonce, requestNonce: reqNonce, keys };
    } catch (err) {
      const reason = err instanceof AuthError ? err.reason : 'malformed';
      throw new PiswarmError('PISWARM_ERR_PEER_UNVERIFIED', `answer of ${target.addr}:${target.port} failed verification (${reason})`, { cause: err, details: { reason } });
    }
  }

  function parse<T>(schema: Parameters<typeof Value.Check>[0], text: string, target: PeerTarget): T {
    let v: unknown;
    try {
      v = JSON.parse(text);
    } catch (err) {
      throw new PiswarmError('PISWARM_ERR_PEER_UNVERIFIED', `answer of ${target.addr} is not JSON`, { cause: err });
    }
    if (!Value.Check(schema, v)) throw new PiswarmError('PISWARM_ERR_PEER_UNVERIFIED', `answer of ${target.addr} does not match the schema`);
    return v as T;
  }

  /** A read answered by the node addressed, about itself (the body names the node the MAC proved). */
  async function read<T extends { nodeId: string }>(target: PeerTarget & { nodeId: string }, path: string, schema: Parameters<typeof Value.Check>[0], signal?: AbortSignal): Promise<T> {
    const r = await call(target, path, { v: 1 }, signal);
    const answer = parse<T>(schema, r.body, target);
    if (answer.nodeId !== r.nodeId) throw new PiswarmError('PISWARM_ERR_PEER_UNVERIFIED', `answer of ${target.addr} names two node ids`);
    return answer;
  }

  /** A release call: its answer names the node the MAC proved. */
  async function release<T extends { nodeId: string }>(target: PeerTarget, path: string, body: object, schema: Parameters<typeof Value.Check>[0], opt: { signal?: AbortSignal; timeoutMs?: number; maxAnswer?: number } = {}): Promise<T> {
    const r = await call(target, path, body, opt.signal, opt.timeoutMs ?? Math.max(opts.timeoutMs, 30_000), opt.maxAnswer);
    const answer = parse<T>(schema, r.body, target);
    if (answer.nodeId !== r.nodeId) throw new PiswarmError('PISWARM_ERR_PEER_UNVERIFIED', `answer of ${target.addr} names two node ids`);
    return answer;
  }

  return {
    releaseOffer: (target, signature) => release<OfferResponse>(target, '/v1/peers/release/offer', { v: 1, signature }, OfferResponse),
    releaseChunk: (target, sha256, offset, data) => release<ChunkResponse>(target, '/v1/peers/release/chunk', { v: 1, sha256, offset, data: data.toString('base64') }, ChunkResponse),
    releaseInstall: (target, sha256) => release<ReleaseStatus>(target, '/v1/peers/release/install', { v: 1, sha256 }, ReleaseStatus),
    releaseTarget: (target, signature) => release<ReleaseStatus>(target, '/v1/peers/release/target', { v: 1, signature }, ReleaseStatus),
    releaseRevert: (target, version) => release<ReleaseStatus>(target, '/v1/peers/release/revert', { v: 1, version }, ReleaseStatus),
    releaseStatus: (target, signal) => release<ReleaseStatus>(target, '/v1/peers/release/status', { v: 1 }, ReleaseStatus, { ...(signal ? { signal } : {}), timeoutMs: opts.timeoutMs }),
    releaseFetch: (target, sha256, offset) => release<FetchResponse>(target, '/v1/peers/release/fetch', { v: 1, sha256, offset }, FetchResponse, { maxAnswer: RELEASE_BODY_LIMIT }),
    checks: (target, signal) => read<PeerChecksResponse>(target, '/v1/peers/checks', PeerChecksResponse, signal),
    services: (target, signal) => read<PeerServicesResponse>(target, '/v1/peers/services', PeerServicesResponse, signal),
    async hello(target, body, signal) {
      const r = await call(target, '/v1/peers/hello', body, signal);
      const response = parse<HelloResponse>(HelloResponse, r.body, target);
      if (response.nodeId !== r.nodeId) throw new PiswarmError('PISWARM_ERR_PEER_UNVERIFIED', `answer of ${target.addr} names two node ids`);
      return { nodeId: r.nodeId, response };
    },
    async grant(target, body, signal) {
      const r = await call(target, '/v1/grants', body, signal);
      const g = parse<GrantResponse>(GrantResponse, r.body, target);
      if (g.managerNodeId !== r.nodeId) throw new PiswarmError('PISWARM_ERR_PEER_UNVERIFIED', `grant of ${target.addr} names two node ids`);
      const token = openToken(
        r.keys,
        { requestNonce: r.requestNonce, responseNonce: r.responseNonce, joinerId: opts.identity.nodeId, managerId: r.nodeId, swarmId: g.swarmId, managerAddrs: g.managerAddrs },
        g,
      );
      return { token, swarmId: g.swarmId, createdAt: g.createdAt, managerAddrs: g.managerAddrs, managerNodeId: g.managerNodeId };
    },
    async keyringStep(target, op, key, signal) {
      const clusterId = deriveClusterKeys(key).clusterId;
      const r = await call(target, '/v1/peers/keyring', (q) => ({ v: 1, op, clusterId, key: sealKey(q.keys, { requestNonce: q.nonce, to: q.to, clusterId }, key, randomBytes(12)) }), signal);
      const answer = parse<KeyringResponse>(KeyringResponse, r.body, target);
      if (answer.nodeId !== r.nodeId) throw new PiswarmError('PISWARM_ERR_PEER_UNVERIFIED', `answer of ${target.addr} names two node ids`);
      return answer;
    },
    async rotate(target, key, allowMissing, timeoutMs) {
      const clusterId = deriveClusterKeys(key).clusterId;
      const r = await call(target, '/v1/peers/rotate-key', (q) => ({ v: 1, clusterId, allowMissing, key: sealKey(q.keys, { requestNonce: q.nonce, to: q.to, clusterId }, key, randomBytes(12)) }), undefined, timeoutMs);
      return parse<RotateResponse>(RotateResponse, r.body, target);
    },
    async revoke(target, name, key, allowMissing, timeoutMs) {
      const clusterId = deriveClusterKeys(key).clusterId;
      const r = await call(target, '/v1/peers/revoke', (q) => ({ v: 1, name, clusterId, allowMissing, key: sealKey(q.keys, { requestNonce: q.nonce, to: q.to, clusterId }, key, randomBytes(12)) }), undefined, timeoutMs);
      return parse<RevokeResponse>(RevokeResponse, r.body, target);
    },
    close: () => dispatcher.close(),
  };
}
