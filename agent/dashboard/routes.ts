import type { FastifyPluginAsync, FastifyReply, FastifyRequest } from 'fastify';
import { PiswarmError } from '../../shared/errors.js';
import type { Asset } from './assets.js';
import type { HistoryDocument } from './history.js';

const NO_QUERY = { type: 'object', properties: {}, additionalProperties: false } as const;

export interface DashboardRoutesDeps {
  /** Null until start() read the files (or when they are missing from the release). */
  assets: () => ReadonlyMap<string, Asset> | null;
  history: () => HistoryDocument;
}

function send(req: FastifyRequest, reply: FastifyReply, a: Asset | undefined): FastifyReply {
  if (!a) throw new PiswarmError('PISWARM_ERR_UNAVAILABLE', 'the dashboard files are missing from this release');
  void reply.header('etag', a.etag).header('cache-control', 'no-cache').type(a.type);
  if (req.headers['if-none-match'] === a.etag) return reply.code(304).send();
  return reply.send(a.body);
}

/**
 * The read-only dashboard: /ui/ and its two files, /v1/cluster/history, and
 * GET / for a browser. `/` itself belongs to agent/http/app.ts (a JSON index
 * that scripts read); a root-level onRequest hook answers it with the page
 * only when the client asks for HTML, so neither the JSON index nor app.ts
 * changes. The hook must be root-level, hence skip-override (what
 * fastify-plugin sets).
 */
export function dashboardRoutes(d: DashboardRoutesDeps): FastifyPluginAsync {
  const plugin: FastifyPluginAsync = async (app) => {
    app.addHook('onRequest', async (req, reply) => {
      if (req.method === 'GET' && req.url === '/' && /\btext\/html\b/.test(req.headers.accept ?? '')) {
        const a = d.assets()?.get('index.html');
        if (a) return send(req, reply, a);
      }
      return undefined;
    });
    app.get('/ui/', { schema: { querystring: NO_QUERY } }, async (req, reply) => send(req, reply, d.assets()?.get('index.html')));
    app.get('/ui/app.js', { schema: { querystring: NO_QUERY } }, async (req, reply) => send(req, reply, d.assets()?.get('app.js')));
    app.get('/ui/style.css', { schema: { querystring: NO_QUERY } }, async (req, reply) => send(req, reply, d.assets()?.get('style.css')));
    app.get('/v1/cluster/history', { schema: { querystring: NO_QUERY } }, async (_req, reply) => reply.header('cache-control', 'no-store').send(d.history()));
  };
  (plugin as unknown as Record<symbol, boolean>)[Symbol.for('skip-override')] = true;
  return plugin;
}
