import type { FastifyPluginAsync } from 'fastify';
import type { ClusterDocument } from '../../shared/wire/cluster.js';
import type { NodeChecksAnswer } from './remote.js';
import { prometheusTargets } from './sd.js';

const NO_QUERY = { type: 'object', properties: {}, additionalProperties: false } as const;

export interface ClusterRoutesDeps {
  view: (opts?: { fetch?: boolean }) => ClusterDocument;
  /** Brings what /v1/cluster shows from this engine up to date (a manager's services), before view({ fetch: true }). */
  fresh?: () => Promise<void>;
  /** A node's warn and fail checks with their output: its own, or fetched from it (cached, bounded). */
  nodeChecks?: (name: string) => Promise<NodeChecksAnswer>;
  /** The HTTP port every agent serves /metrics on. */
  port: number;
}

const NODE_PARAMS = { type: 'object', properties: { name: { type: 'string', minLength: 1, maxLength: 253 } }, required: ['name'], additionalProperties: false } as const;

/**
 * GET /v1/cluster and GET /v1/sd/prometheus, answered from memory (on a
 * worker /v1/cluster may start one cached services read from a manager),
 * and GET /v1/cluster/nodes/:name/checks, the one on-demand peer read.
 */
export function clusterRoutes(d: ClusterRoutesDeps): FastifyPluginAsync {
  return async (app) => {
    app.get('/v1/cluster', { schema: { querystring: NO_QUERY } }, async (_req, reply) => {
      await d.fresh?.();
      return reply.header('cache-control', 'no-store').send(d.view({ fetch: true }));
    });
    const nodeChecks = d.nodeChecks;
    if (nodeChecks) {
      app.get<{ Params: { name: string } }>('/v1/cluster/nodes/:name/checks', { schema: { querystring: NO_QUERY, params: NODE_PARAMS } }, async (req, reply) =>
        reply.header('cache-control', 'no-store').send(await nodeChecks(req.params.name)),
      );
    }
    app.get('/v1/sd/prometheus', { schema: { querystring: NO_QUERY } }, async (_req, reply) =>
      reply.type('application/json').header('cache-control', 'no-store').send(JSON.stringify(prometheusTargets(d.view(), d.port))),
    );
  };
}
