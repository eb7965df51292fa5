import { PiswarmError } from '../../shared/errors.js';
import type { RevokeResponse, RotateResponse } from '../../shared/wire/keyring.js';
import type { DockerEngine, SwarmNode } from '../docker/engine.js';
import type { Logger } from '../log/logger.js';
import type { KeyringPeer } from './subsystem.js';

export interface RevokeDeps {
  docker: Pick<DockerEngine, 'info' | 'listNodes' | 'updateNode' | 'removeNode' | 'rotateJoinTokens'>;
  self: { nodeId: string; name: string };
  peers: () => KeyringPeer[];
  /** The cluster key rotation over every confirmed peer except `exclude` (node ids). */
  rotate: (key: string, allowMissing: boolean, exclude: ReadonlySet<string>) => Promise<RotateResponse>;
  log: Logger;
}

/** Pure: the swarm node named (hostname or id), and the piswarm agents that are that node (same name, or same address). */
export function revokeTargets(name: string, nodes: readonly SwarmNode[], peers: readonly KeyringPeer[]): { node: SwarmNode | null; peers: KeyringPeer[] } {
  const node = nodes.find((n) => n.id === name) ?? nodes.find((n) => n.hostname === name) ?? null;
  return { node, peers: peers.filter((p) => p.name === name || p.nodeId === name || (node?.addr && p.addr === node.addr)) };
}

/**
 * `piswarm node revoke NAME`, run on a swarm manager. The cluster key goes
 * first: once the other agents hold a key the card does not, its agent can
 * no longer obtain a grant, so removing it from the swarm is final (removed
 * first, it could ask for a grant and join again under the current key).
 * Then demote (a manager) and remove it, then rotate both join tokens, so a
 * token copied off the card is void too.
 */
export async function revokeNode(deps: RevokeDeps, name: string, key: string, allowMissing: boolean): Promise<RevokeResponse> {
  const info = await deps.docker.info();
  if (!info.swarm.isManager) throw new PiswarmError('PISWARM_ERR_NOT_MANAGER', 'revoke runs on a swarm manager: it removes the node from the swarm');
  const { node, peers } = revokeTargets(name, await deps.docker.listNodes(), deps.peers());
  if (node?.id === info.swarm.nodeId || name === deps.self.name || name === deps.self.nodeId) {
    throw new PiswarmError('PISWARM_ERR_BAD_REQUEST', `${name} is the node asked: run the revoke on another manager`);
  }
  if (!node && peers.length === 0) throw new PiswarmError('PISWARM_ERR_NOT_FOUND', `no swarm node and no piswarm peer named ${JSON.stringify(name)}`);
  deps.log.warn({ name, swarmNodeId: node?.id ?? null, peers: peers.map((p) => p.nodeId) }, 'revoking a node: new cluster key without it, then out of the swarm');
  const rotation = await deps.rotate(key, allowMissing, new Set(peers.map((p) => p.nodeId)));
  const answer = (swarmNode: RevokeResponse['swarmNode'], tokensRotated: boolean): RevokeResponse => ({ v: 1, name, excluded: peers.map((p) => p.name), swarmNode, tokensRotated, rotation });
  if (rotation.outcome !== 'rotated') return answer(node ? { id: node.id, hostname: node.hostname, wasManager: node.role === 'manager', removed: false } : null, false);
  if (!node) {
    await deps.docker.rotateJoinTokens();
    return answer(null, true);
  }
  if (node.role === 'manager') await deps.docker.updateNode(node.id, { role: 'worker' });
  await deps.docker.removeNode(node.id, true);
  await deps.docker.rotateJoinTokens();
  deps.log.warn({ name, swarmNodeId: node.id }, 'node revoked: removed from the swarm, join tokens rotated');
  return answer({ id: node.id, hostname: node.hostname, wasManager: node.role === 'manager', removed: true }, true);
}
