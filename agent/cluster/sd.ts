import type { ClusterDocument, PrometheusTargetGroup } from '../../shared/wire/cluster.js';
import { joinHostPort } from '../net/address.js';

/**
 * Pure: Prometheus HTTP service discovery from the cluster view. One group per
 * live member (alive or suspect: a suspicion lasts seconds, and dropping the
 * target for it would punch holes in its series); dead and left members drop
 * out, and so do nodes only the engine lists (no agent answers there). Every
 * agent serves HTTP on the same port as this one (the cluster file sets it
 * for all cards), so `port` is this node's.
 */
export function prometheusTargets(doc: ClusterDocument, port: number): PrometheusTargetGroup[] {
  return doc.nodes
    .filter((n) => n.addr !== null && (n.gossip?.state === 'alive' || n.gossip?.state === 'suspect'))
    .map((n) => ({
      targets: [joinHostPort(n.addr!, port)],
      labels: {
        node: n.hostname,
        role: n.swarm.role,
        cluster: doc.cluster.name,
        model: n.facts.model ?? '',
        arch: n.facts.arch ?? '',
      },
    }));
}
