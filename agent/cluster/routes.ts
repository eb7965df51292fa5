import type { FastifyPluginAsync } from 'fastify';
import type { ClusterDocument } from '../../shared/wire/cluster.js';
import { prometheusTargets } from './sd.js';

const NO_QUERY = { type: 'object', properties: {}, additionalProperties: false } as const;

export interface ClusterRoutesDeps {
  view: () => ClusterDocument;
  /** The HTTP port every agent serves /metrics on. */
  port: number;
}

/** GET /v1/cluster and GET /v1/sd/prometheus: both answered from memory, no engine or peer call. */
export function clusterRoutes(d: ClusterRoutesDeps): FastifyPluginAsync {
  return async (app) => {
    app.get('/v1/cluster', { schema: { querystring: NO_QUERY } }, async (_req, reply) => reply.header('cache-control', 'no-store').send(d.view()));
    app.get('/v1/sd/prometheus', { schema: { querystring: NO_QUERY } }, async (_req, reply) =>
      reply.type('application/json').header('cache-control', 'no-store').send(JSON.stringify(prometheusTargets(d.view(), d.port))),
    );
  };
}
