import { PiswarmError, errCode } from '../../shared/errors.js';
import type { KeyringOp, KeyringRequest, KeyringResponse, RevokeRequest, RevokeResponse, RotateRequest, RotateResponse, RotationNode } from '../../shared/wire/keyring.js';
import type { NodeContext } from '../identity/context.js';
import { deriveClusterKeys, keysFor } from '../identity/keys.js';
import type { Subsystem } from '../lifecycle/subsystem.js';
import type { Logger } from '../log/logger.js';
import type { KeyringClient, PeerTarget } from '../peers/client.js';
import { openKey, type AuthHeader } from '../peers/protocol.js';
import { revokeNode, type RevokeDeps } from './revoke.js';
import { applyStep, type Ring } from './ring.js';
import { loadRing, saveRing } from './store.js';

/** More than one key for this long: a rotation that did not finish (health warns). */
export const UNFINISHED_AFTER_MS = 10 * 60_000;

export interface KeyringPeer extends PeerTarget {
  nodeId: string;
  name: string;
}

export interface KeyringDeps {
  node: Pick<NodeContext, 'identity' | 'keys' | 'setClusterKeys'>;
  configKey: string;
  stateDir: string;
  log: Logger;
  /** Who takes part in a rotation: the confirmed peers (formation). */
  peers: () => KeyringPeer[];
  client: () => KeyringClient | null;
  /** For `piswarm node revoke` (agent/keyring/revoke.ts); absent: revoke is UNAVAILABLE. */
  docker?: RevokeDeps['docker'];
  now?: () => number;
  save?: typeof saveRing;
  read?: (path: string) => string;
}

export interface KeyringSubsystem extends Subsystem {
  step(auth: AuthHeader, req: KeyringRequest): KeyringResponse;
  rotate(auth: AuthHeader, req: RotateRequest): Promise<RotateResponse>;
  revoke(auth: AuthHeader, req: RevokeRequest): Promise<RevokeResponse>;
}

const idOf = (key: string) => deriveClusterKeys(key).clusterId;

/**
 * This node's cluster keys over time: loaded at start (the configured key,
 * or the ring a rotation left in the state directory), changed one step at a
 * time by authenticated peers, and the operator's whole rotation run from
 * here: stage everywhere, promote everywhere, drop everywhere. Every node
 * accepts both keys from the first step to the last, so nothing stops
 * answering during a rotation; a node that misses it keeps the old key only
 * and is another cluster once the old key is dropped.
 */
export function keyringSubsystem(deps: KeyringDeps): KeyringSubsystem {
  const log = deps.log.child({ mod: 'keyring' });
  const now = deps.now ?? Date.now;
  const save = deps.save ?? saveRing;
  const loaded = loadRing(deps.stateDir, deps.configKey, deps.read);
  if (loaded.problem) log.warn({ code: 'PISWARM_ERR_KEYRING' }, loaded.problem);
  let ring: Ring = loaded.ring;
  let multiSince: number | null = ring.accepted.length > 0 ? now() : null;
  let rotating = false;
  const steps = new Map<string, number>();
  const outcomes = new Map<string, number>();
  const bump = (m: Map<string, number>, k: string) => m.set(k, (m.get(k) ?? 0) + 1);
  deps.node.setClusterKeys(ring.primary, ring.accepted);
  if (loaded.source === 'file') log.info({ clusterIds: [ring.primary, ...ring.accepted].map(idOf) }, 'cluster keys from the last rotation (keyring.json)');

  const clusterIds = () => deps.node.keys?.clusterIds ?? [];

  function apply(op: KeyringOp, key: string): void {
    let next: Ring;
    try {
      next = applyStep(ring, op, key);
    } catch (err) {
      bump(steps, `${op}:refused`);
      throw err;
    }
    if (next !== ring) {
      save(deps.stateDir, deps.configKey, next, new Date(now()));
      ring = next;
      deps.node.setClusterKeys(ring.primary, ring.accepted);
      multiSince = ring.accepted.length === 0 ? null : multiSince ?? now();
      log.info({ op, clusterId: idOf(key), clusterIds: clusterIds() }, `cluster key step: ${op}`);
    }
    bump(steps, `${op}:ok`);
  }

  /** The key a request carries, opened with the key the request came under and checked against its id. */
  function opened(auth: AuthHeader, req: { clusterId: string; key: KeyringRequest['key'] }): string {
    const keys = deps.node.keys ? keysFor(deps.node.keys, auth.clusterId) : null;
    if (!keys) throw new PiswarmError('PISWARM_ERR_NO_CLUSTER_KEY');
    const key = openKey(keys, { requestNonce: auth.nonce, to: auth.to, clusterId: req.clusterId }, req.key);
    if (key.length < 32 || key.length > 512 || idOf(key) !== req.clusterId) throw new PiswarmError('PISWARM_ERR_KEYRING', 'the key sent does not match the cluster id it names');
    return key;
  }

  /** One step on every node of `nodes` at once: those that took it, with the cluster ids each accepts after it. */
  async function onAll(nodes: KeyringPeer[], op: KeyringOp, key: string, reached: Map<string, RotationNode>): Promise<Array<KeyringPeer & { clusterIds: string[] }>> {
    const client = deps.client();
    const results = await Promise.allSettled(nodes.map((p) => (client ? client.keyringStep(p, op, key) : Promise.reject(new PiswarmError('PISWARM_ERR_NO_CLUSTER_KEY')))));
    const ok: Array<KeyringPeer & { clusterIds: string[] }> = [];
    results.forEach((r, i) => {
      const n = reached.get(nodes[i]!.nodeId)!;
      if (r.status === 'fulfilled') {
        n.reached = op;
        n.error = null;
        ok.push({ ...nodes[i]!, clusterIds: r.value.clusterIds });
      } else {
        n.error = `${op}: ${(r.reason as Error).message}`.slice(0, 300);
        log.warn({ peer: nodes[i]!.nodeId, addr: nodes[i]!.addr, op, code: errCode(r.reason) }, 'a node did not take the cluster key step');
      }
    });
    return ok;
  }

  async function rotateAll(key: string, allowMissing: boolean, exclude: ReadonlySet<string> = new Set()): Promise<RotateResponse> {
    // Resuming a rotation that stopped after this node promoted the key: the old one is still accepted.
    const from = ring.primary !== key ? ring.primary : ring.accepted[0] ?? key;
    const selfNode: RotationNode = { nodeId: deps.node.identity.nodeId, name: deps.node.identity.name, addr: 'self', reached: 'none', error: null };
    const peers = [...new Map(deps.peers().filter((p) => p.nodeId !== selfNode.nodeId && !exclude.has(p.nodeId)).map((p) => [p.nodeId, p])).values()];
    const reached = new Map<string, RotationNode>(peers.map((p) => [p.nodeId, { nodeId: p.nodeId, name: p.name, addr: p.addr, reached: 'none', error: null }]));
    const answer = (outcome: RotateResponse['outcome']): RotateResponse => {
      bump(outcomes, outcome);
      log[outcome === 'rotated' ? 'info' : 'warn']({ from: idOf(from), to: idOf(key), outcome, nodes: reached.size + 1 }, `cluster key rotation ${outcome}`);
      return { v: 1, from: idOf(from), to: idOf(key), outcome, nodes: [selfNode, ...reached.values()] };
    };
    log.info({ from: idOf(from), to: idOf(key), peers: peers.length }, 'cluster key rotation started');
    apply('stage', key);
    selfNode.reached = 'stage';
    const staged = await onAll(peers, 'stage', key, reached);
    // Once any node signs with the new key (a resumed rotation), going back
    // would leave it refused by the nodes that forget the key: go forward.
    const promotedSomewhere = ring.primary === key || staged.some((p) => p.clusterIds[0] === idOf(key));
    if (staged.length < peers.length && !allowMissing && !promotedSomewhere) {
      await onAll(staged, 'abort', key, reached);
      apply('abort', key);
      selfNode.reached = 'abort';
      return answer('aborted');
    }
    const promoted = await onAll(staged, 'promote', key, reached);
    apply('promote', key);
    selfNode.reached = 'promote';
    // The old key goes only once every node that staged signs with the new
    // one: a node still signing with the old key would be refused.
    if (promoted.length < staged.length) return answer('incomplete');
    const dropped = await onAll(promoted, 'drop', key, reached);
    apply('drop', key);
    selfNode.reached = 'drop';
    // Nodes that missed the first step (allowMissing) are listed as such: they are refused once back.
    return answer(dropped.length === promoted.length ? 'rotated' : 'incomplete');
  }

  /** One rotation (or revoke) at a time on this node, never to the key it already signs with alone (to it while the old one is still accepted: a resumed rotation). */
  async function exclusive<T>(key: string, run: () => Promise<T>): Promise<T> {
    if (rotating) throw new PiswarmError('PISWARM_ERR_BUSY', 'a cluster key rotation is already running on this node');
    if (key === ring.primary && ring.accepted.length === 0) throw new PiswarmError('PISWARM_ERR_KEYRING', 'that key is already the cluster key, and the only one: nothing to finish');
    rotating = true;
    try {
      return await run();
    } finally {
      rotating = false;
    }
  }

  return {
    name: 'keyring',
    step(auth, req) {
      apply(req.op, opened(auth, req));
      return { v: 1, nodeId: deps.node.identity.nodeId, clusterIds: clusterIds() };
    },
    rotate(auth, req) {
      const key = opened(auth, req);
      return exclusive(key, () => rotateAll(key, req.allowMissing));
    },
    revoke(auth, req) {
      const docker = deps.docker;
      if (!docker) throw new PiswarmError('PISWARM_ERR_UNAVAILABLE', 'revoke is not wired on this node');
      const key = opened(auth, req);
      const rd: RevokeDeps = { docker, self: deps.node.identity, peers: deps.peers, log, rotate: (k, allowMissing, exclude) => rotateAll(k, allowMissing, exclude) };
      return exclusive(key, () => revokeNode(rd, req.name, key, req.allowMissing));
    },
    collectors: [
      {
        name: 'keyring',
        collect: () => [
          { name: 'piswarm_cluster_keys', help: 'Cluster keys this node accepts (2 during a key rotation).', type: 'gauge', samples: [{ value: 1 + ring.accepted.length }] },
          {
            name: 'piswarm_keyring_steps_total',
            help: 'Cluster key steps asked of this node, by step and result (refused: out of order or unknown key).',
            type: 'counter',
            samples: [...steps].map(([k, value]) => ({ labels: { op: k.split(':')[0]!, result: k.split(':')[1]! }, value })),
          },
          {
            name: 'piswarm_key_rotations_total',
            help: 'Whole-cluster key rotations run from this node, by outcome.',
            type: 'counter',
            samples: [...outcomes].map(([outcome, value]) => ({ labels: { outcome }, value })),
          },
        ],
      },
    ],
    checks: [
      {
        name: 'cluster:keyring',
        run: () => {
          const n = 1 + ring.accepted.length;
          if (multiSince !== null && now() - multiSince >= UNFINISHED_AFTER_MS) {
            return [{ status: 'warn', observedValue: n, output: `${n} cluster keys accepted for ${Math.round((now() - multiSince) / 60_000)} min: a key rotation did not finish; run \`piswarm cluster rotate-key --resume NEW.cluster.json\` (the file it wrote)` }];
          }
          return [{ status: 'pass', observedValue: n }];
        },
      },
    ],
  };
}
