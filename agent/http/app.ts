import Fastify, { LogController, type FastifyBaseLogger, type FastifyError, type FastifyReply, type FastifyInstance, type FastifyPluginAsync } from 'fastify';
import { HEALTH_CONTENT_TYPE, METRICS_CONTENT_TYPE } from '../../shared/constants.js';
import { ERROR_CODES, PiswarmError, type ErrorCode } from '../../shared/errors.js';
import type { Logger } from '../log/logger.js';
import type { HealthDocument } from '../health/aggregate.js';
import { httpStatusFor } from '../health/aggregate.js';
import { makeErrorHandler } from './errors.js';
import type { IncomingMessage, Server, ServerResponse } from 'node:http';
import type { Socket } from 'node:net';
import type { Duplex } from 'node:stream';
import { acceptsGzip, gzipBody } from './compress.js';

export interface AppDeps {
  log: Logger;
  bodyLimit: number;
  version: string;
  health: () => HealthDocument | Promise<HealthDocument>;
  metrics: () => string | Promise<string>;
  /** Runs the read-only disk benchmark; absent when the node has none. */
  diskBench?: () => Promise<unknown>;
  /** Route plugins of other subsystems (formation, gossip, ...). */
  plugins?: FastifyPluginAsync[];
  /** Counts every error response by code (exported as piswarm_http_errors_total). */
  countError: (code: ErrorCode) => void;
  /** Open connections served at once, in all and per client address (default MAX_CONNECTIONS, MAX_CONNECTIONS_PER_CLIENT). */
  connectionLimits?: { total: number; perClient: number };
}

const NO_QUERY = { type: 'object', properties: {}, additionalProperties: false } as const;
const REQUEST_TIMEOUT_MS = 30_000;
/** Open connections the API serves at once, and from one client address. */
export const MAX_CONNECTIONS = 256;
export const MAX_CONNECTIONS_PER_CLIENT = 32;

/**
 * Bounds what one client can hold open. An outsider with 300 connections of
 * GET /metrics starved gossip on the same event loop until peers marked the
 * node suspect; past these bounds a connection gets a 503 or 429 with our
 * code and is closed at once, before any request is parsed.
 */
/**
 * Node's requestTimeout does not cut a request whose headers arrived and
 * whose body never finishes (an unfinished body lived 89 s): this deadline
 * does, from the moment the headers were read.
 */
const timedOut = new WeakSet<IncomingMessage>();

function bodyDeadline(req: IncomingMessage, res: ServerResponse, countError: (code: ErrorCode) => void): void {
  if (req.complete) return;
  const timer = setTimeout(() => {
    if (req.complete || req.socket.destroyed) return;
    timedOut.add(req);
    countError('PISWARM_ERR_REQUEST_TIMEOUT');
    req.socket.end(rawErrorResponse('PISWARM_ERR_REQUEST_TIMEOUT'));
    req.socket.destroySoon();
  }, REQUEST_TIMEOUT_MS);
  timer.unref();
  const done = () => clearTimeout(timer);
  req.once('end', done);
  req.once('close', done);
  res.once('finish', done);
}

function bound(server: Server, limits: { total: number; perClient: number }, countError: (code: ErrorCode) => void): void {
  server.maxConnections = limits.total;
  server.on('drop', () => countError('PISWARM_ERR_UNAVAILABLE'));
  const perClient = new Map<string, number>();
  server.on('connection', (socket: Socket) => {
    const ip = socket.remoteAddress ?? '';
    const n = (perClient.get(ip) ?? 0) + 1;
    perClient.set(ip, n);
    socket.once('close', () => {
      const left = (perClient.get(ip) ?? 1) - 1;
      if (left <= 0) perClient.delete(ip);
      else perClient.set(ip, left);
    });
    if (n > limits.perClient) {
      countError('PISWARM_ERR_TOO_MANY_CONNECTIONS');
      socket.end(rawErrorResponse('PISWARM_ERR_TOO_MANY_CONNECTIONS'));
      socket.destroySoon();
    }
  });
  // CONNECT is never served: without a listener Node closed the socket silently.
  server.on('connect', (_req: IncomingMessage, socket: Duplex) => {
    countError('PISWARM_ERR_METHOD_NOT_ALLOWED');
    socket.end(rawErrorResponse('PISWARM_ERR_METHOD_NOT_ALLOWED'));
  });
}

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
  const reason = { 400: 'Bad Request', 405: 'Method Not Allowed', 408: 'Request Timeout', 429: 'Too Many Requests', 431: 'Request Header Fields Too Large', 503: 'Service Unavailable' }[status] ?? 'Error';
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
    requestTimeout: REQUEST_TIMEOUT_MS,
    http: {
      // Node answers a request without Host with a bare 400 of its own; the
      // onRequest hook below answers it with our code instead.
      requireHostHeader: false,
      // Node enforces its header deadline only when it checks (every 30 s by
      // default); check often enough that the deadline is the one configured.
      connectionsCheckingInterval: 2_000,
    },
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

  bound(app.server, deps.connectionLimits ?? { total: MAX_CONNECTIONS, perClient: MAX_CONNECTIONS_PER_CLIENT }, deps.countError);

  // Before any route: a request without Host (HTTP/1.1 requires one), and a
  // body no route will read (over the limit, or on a GET) is not drained.
  app.addHook('onRequest', async (req, reply) => {
    if (req.headers.host === undefined && req.raw.httpVersion === '1.1') throw new PiswarmError('PISWARM_ERR_BAD_REQUEST', 'missing Host header');
    const length = Number(req.headers['content-length'] ?? 0);
    // A route's own limit where it sets one (a release chunk is larger than any other body).
    const limit = req.routeOptions.bodyLimit ?? deps.bodyLimit;
    if (length > limit) {
      void reply.header('connection', 'close');
      throw new PiswarmError('PISWARM_ERR_BODY_TOO_LARGE', `request body of ${length} bytes exceeds ${limit}`);
    }
    const hasBody = length > 0 || req.headers['transfer-encoding'] !== undefined;
    if ((req.method === 'GET' || req.method === 'HEAD') && hasBody) void reply.header('connection', 'close');
    if (hasBody) bodyDeadline(req.raw, reply.raw, deps.countError);
  });

  const methods = new Map<string, Set<string>>();
  app.addHook('onRoute', (r) => {
    const set = methods.get(r.url) ?? new Set<string>();
    for (const m of [r.method].flat()) set.add(m);
    methods.set(r.url, set);
  });

  const handleError = makeErrorHandler(deps.log.child({ mod: 'http' }), deps.countError);
  // A request cut by bodyDeadline was answered (408) and counted there; the
  // parser's 'aborted' error that follows is no second error.
  app.setErrorHandler((err: FastifyError, req, reply) => {
    if (timedOut.has(req.raw)) return;
    return handleError(err, req, reply);
  });
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
    const doc = await deps.health();
    return reply.code(httpStatusFor(doc.status)).type(HEALTH_CONTENT_TYPE).header('cache-control', 'no-store').send(JSON.stringify(doc));
  });

  // Liveness: answers whenever the event loop runs. Docker or hardware trouble
  // never fails it, because restarting the agent fixes neither.
  app.get('/livez', { schema: { querystring: NO_QUERY } }, async (_req, reply) =>
    reply.type(HEALTH_CONTENT_TYPE).send(JSON.stringify({ status: 'pass' })),
  );

  app.get('/metrics', { schema: { querystring: NO_QUERY } }, async (req, reply) => {
    const text = await deps.metrics();
    void reply.type(METRICS_CONTENT_TYPE).header('vary', 'accept-encoding');
    if (!acceptsGzip(req.headers['accept-encoding'])) return reply.send(text);
    return reply.header('content-encoding', 'gzip').send(await gzipBody(text));
  });

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
