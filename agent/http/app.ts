import Fastify, { LogController, type FastifyBaseLogger, type FastifyReply, type FastifyInstance, type FastifyPluginAsync } from 'fastify';
import { HEALTH_CONTENT_TYPE, METRICS_CONTENT_TYPE } from '../../shared/constants.js';
import { ERROR_CODES, PiswarmError, type ErrorCode } from '../../shared/errors.js';
import type { Logger } from '../log/logger.js';
import type { HealthDocument } from '../health/aggregate.js';
import { httpStatusFor } from '../health/aggregate.js';
import { makeErrorHandler } from './errors.js';

export interface AppDeps {
  log: Logger;
  bodyLimit: number;
  version: string;
  health: () => HealthDocument;
  metrics: () => string;
  /** Runs the read-only disk benchmark; absent when the node has none. */
  diskBench?: () => Promise<unknown>;
  /** Route plugins of other subsystems (formation, gossip, ...). */
  plugins?: FastifyPluginAsync[];
  /** Counts every error response by code (exported as piswarm_http_errors_total). */
  countError: (code: ErrorCode) => void;
}

const NO_QUERY = { type: 'object', properties: {}, additionalProperties: false } as const;

export function isLoopback(addr: string | undefined): boolean {
  if (!addr) return false;
  return addr === '::1' || addr.startsWith('127.') || addr.startsWith('::ffff:127.');
}

function clientErrorCode(err: NodeJS.ErrnoException): ErrorCode {
  if (err.code === 'HPE_HEADER_OVERFLOW') return 'PISWARM_ERR_HEADERS_TOO_LARGE';
  if (err.code === 'ERR_HTTP_REQUEST_TIMEOUT') return 'PISWARM_ERR_REQUEST_TIMEOUT';
  return 'PISWARM_ERR_BAD_REQUEST';
}

/** A whole HTTP/1.1 error response, written straight to a socket the parser gave up on. */
function rawErrorResponse(code: ErrorCode): string {
  const { status, message } = ERROR_CODES[code];
  const body = JSON.stringify({ statusCode: status, code, message });
  const reason = { 400: 'Bad Request', 408: 'Request Timeout', 431: 'Request Header Fields Too Large' }[status] ?? 'Error';
  return `HTTP/1.1 ${status} ${reason}\r\nContent-Type: application/json\r\nContent-Length: ${Buffer.byteLength(body)}\r\nConnection: close\r\n\r\n${body}`;
}

/**
 * Builds the HTTP API without listening: main.ts listens, tests inject.
 * Unknown routes are 404, known routes with another method are 405 with Allow,
 * and every error has a stable code (see errors.ts).
 */
export async function buildApp(deps: AppDeps): Promise<FastifyInstance> {
  const app = Fastify({
    loggerInstance: deps.log.child({ mod: 'http' }) as FastifyBaseLogger,
    // Scrapes every few seconds would flood the journal (and wear the SD card).
    logController: new LogController({ disableRequestLogging: true }),
    bodyLimit: deps.bodyLimit,
    return503OnClosing: true,
    requestTimeout: 30_000,
    // Reject unknown query parameters instead of silently dropping them.
    ajv: { customOptions: { removeAdditional: false, coerceTypes: 'array', allErrors: false } },
    // A URL fastify cannot decode (`/%zz`) never reaches setErrorHandler:
    // answer it with our code and count it like any other bad request.
    frameworkErrors: (err, _req, reply) => {
      deps.countError('PISWARM_ERR_BAD_REQUEST');
      void (reply as FastifyReply).code(400).type('application/json').send({ statusCode: 400, code: 'PISWARM_ERR_BAD_REQUEST', message: err.message });
    },
    // Errors below HTTP (a garbage request line, headers over Node's limit, a
    // request that never finished) arrive on the socket, before any route.
    clientErrorHandler: (err: NodeJS.ErrnoException, socket) => {
      if (err.code === 'ECONNRESET' || !socket.writable) {
        socket.destroy();
        return;
      }
      const code = clientErrorCode(err);
      deps.countError(code);
      socket.end(rawErrorResponse(code));
    },
  });

  const methods = new Map<string, Set<string>>();
  app.addHook('onRoute', (r) => {
    const set = methods.get(r.url) ?? new Set<string>();
    for (const m of [r.method].flat()) set.add(m);
    methods.set(r.url, set);
  });

  app.setErrorHandler(makeErrorHandler(deps.log.child({ mod: 'http' }), deps.countError));
  app.setNotFoundHandler((req, reply) => {
    const path = req.url.split('?')[0] ?? req.url;
    const allowed = methods.get(path);
    const code: ErrorCode = allowed ? 'PISWARM_ERR_METHOD_NOT_ALLOWED' : 'PISWARM_ERR_NOT_FOUND';
    deps.countError(code);
    if (allowed) void reply.header('allow', [...allowed].join(', '));
    void reply.code(ERROR_CODES[code].status).send({ statusCode: ERROR_CODES[code].status, code, message: allowed ? `${req.method} is not allowed on ${path}` : `no route ${path}` });
  });

  app.get('/', { schema: { querystring: NO_QUERY } }, async () => ({
    name: 'piswarm',
    version: deps.version,
    endpoints: ['/health', '/livez', '/metrics', ...(deps.diskBench ? ['POST /v1/bench/disk (loopback only)'] : [])],
  }));

  app.get('/health', { schema: { querystring: NO_QUERY } }, async (_req, reply) => {
    const doc = deps.health();
    return reply.code(httpStatusFor(doc.status)).type(HEALTH_CONTENT_TYPE).header('cache-control', 'no-store').send(JSON.stringify(doc));
  });

  // Liveness: answers whenever the event loop runs. Docker or hardware trouble
  // never fails it, because restarting the agent fixes neither.
  app.get('/livez', { schema: { querystring: NO_QUERY } }, async (_req, reply) =>
    reply.type(HEALTH_CONTENT_TYPE).send(JSON.stringify({ status: 'pass' })),
  );

  app.get('/metrics', { schema: { querystring: NO_QUERY } }, async (_req, reply) =>
    reply.type(METRICS_CONTENT_TYPE).send(deps.metrics()),
  );

  if (deps.diskBench) {
    const run = deps.diskBench;
    app.post('/v1/bench/disk', { schema: { querystring: NO_QUERY } }, async (req) => {
      if (!isLoopback(req.socket.remoteAddress)) throw new PiswarmError('PISWARM_ERR_FORBIDDEN');
      return run();
    });
  }

  for (const plugin of deps.plugins ?? []) await app.register(plugin);
  return app;
}
