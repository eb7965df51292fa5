import { PiswarmError } from '../../shared/errors.js';
import type { ClusterDocument, ClusterNode, ServiceSummary } from '../../shared/wire/cluster.js';
import type { PeerCheck } from '../../shared/wire/peer.js';
import type { PeerReadClient } from '../peers/client.js';
import { FetchCache } from './fetch-cache.js';

/** GET /v1/cluster/nodes/:name/checks. */
export interface NodeChecksAnswer {
  node: string;
  id: string;
  /** 'local': this node's own checks; 'peer': fetched from the member over the peer API. */
  source: 'local' | 'peer';
  status: 'pass' | 'warn' | 'fail';
  checks: PeerCheck[];
  omitted: number;
  /** When the member answered (this node's clock). */
  fetchedAt: string;
}

export const REMOTE_TTL_MS = 5_000;
/** Checks fetches running at once (a page asks for its troubled nodes only). */
export const CHECKS_IN_FLIGHT = 4;
/** A worker's services: shown this long after the last answer while managers do not answer. */
export const SERVICES_KEEP_MS = 3 * REMOTE_TTL_MS;

export interface RemoteReadsDeps {
  client: PeerReadClient | null;
  /** The HTTP port every agent serves (the peer API's). */
  port: number;
  /** This node's own non-passing checks; throws UNAVAILABLE before its first health evaluation. */
  localChecks: () => Omit<NodeChecksAnswer, 'node' | 'id' | 'source' | 'fetchedAt'>;
  now: () => number;
  onError: (what: 'checks' | 'services', err: unknown) => void;
}

export interface RemoteReads {
  nodeChecks(doc: ClusterDocument, name: string): Promise<NodeChecksAnswer>;
  /** A worker's services from a manager: the last answer (or null), and a fetch started when it is due. */
  workerServices(doc: ClusterDocument): ServiceSummary[] | null;
  /** The last answer, fetching nothing. */
  lastWorkerServices(): ServiceSummary[] | null;
}

function findNode(doc: ClusterDocument, name: string): ClusterNode {
  const n = doc.nodes.find((x) => x.hostname === name) ?? doc.nodes.find((x) => x.id === name);
  if (!n) throw new PiswarmError('PISWARM_ERR_NOT_FOUND', `no node named ${JSON.stringify(name.slice(0, 64))} in this cluster`);
  return n;
}

/** Pure: where a member's agent answers peer reads, or why it cannot be asked. */
export function peerTarget(n: ClusterNode, port: number): { addr: string; port: number; nodeId: string } {
  if (!n.gossip) throw new PiswarmError('PISWARM_ERR_UNAVAILABLE', `${n.hostname} runs no piswarm agent that this node knows of`);
  if (n.gossip.state === 'dead' || n.gossip.state === 'left' || !n.addr) throw new PiswarmError('PISWARM_ERR_PEER_UNREACHABLE', `${n.hostname} is ${n.gossip.state}: not asked`);
  return { addr: n.addr, port, nodeId: n.id };
}

/** Pure: the managers a worker may ask for services (alive members that say they are managers), in a stable order. */
export function managerCandidates(doc: ClusterDocument): ClusterNode[] {
  return doc.nodes.filter((n) => !n.self && n.addr && n.gossip?.state === 'alive' && n.swarm.role === 'manager').sort((a, b) => a.id.localeCompare(b.id));
}

/**
 * What the serving agent fetches from other members on demand: a member's
 * check outputs (too long for gossip) and, on a worker, a manager's service
 * summary. Both go through a FetchCache: one fetch per member (or for the
 * services) per REMOTE_TTL_MS, shared by every caller meanwhile, and a bound
 * on fetches at once.
 */
export function createRemoteReads(d: RemoteReadsDeps): RemoteReads {
  const checks = new FetchCache<Omit<NodeChecksAnswer, 'node' | 'source'>>({ ttlMs: REMOTE_TTL_MS, maxInFlight: CHECKS_IN_FLIGHT, maxEntries: 256, now: d.now });
  const services = new FetchCache<ServiceSummary[]>({ ttlMs: REMOTE_TTL_MS, maxInFlight: 1, maxEntries: 1, now: d.now });
  // After a manager fails to answer, the next fetch asks the next one.
  let turn = 0;
  const lastWorkerServices = (): ServiceSummary[] | null => {
    const last = services.last('services');
    return last && d.now() - last.at <= SERVICES_KEEP_MS ? last.value : null;
  };

  return {
    async nodeChecks(doc, name) {
      const n = findNode(doc, name);
      if (n.self) return { node: n.hostname, id: n.id, source: 'local', ...d.localChecks(), fetchedAt: new Date(d.now()).toISOString() };
      const target = peerTarget(n, d.port);
      const client = d.client;
      if (!client) throw new PiswarmError('PISWARM_ERR_NO_CLUSTER_KEY', 'no cluster key: this node cannot ask its peers');
      const r = await checks.get(n.id, async () => {
        const a = await client.checks(target);
        return { id: a.nodeId, status: a.status, checks: a.checks, omitted: a.omitted, fetchedAt: new Date(d.now()).toISOString() };
      });
      return { node: n.hostname, source: 'peer', ...r.value };
    },

    workerServices(doc) {
      const client = d.client;
      const managers = managerCandidates(doc);
      if (client && managers.length > 0 && services.due('services')) {
        const m = managers[turn % managers.length]!;
        services
          .get('services', async () => (await client.services({ addr: m.addr!, port: d.port, nodeId: m.id })).services)
          .catch((err: unknown) => {
            turn++;
            d.onError('services', err);
          });
      }
      return lastWorkerServices();
    },

    lastWorkerServices,
  };
}
