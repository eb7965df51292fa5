import type { FastifyError, FastifyReply, FastifyRequest } from 'fastify';
import { ERROR_CODES, PiswarmError, type ErrorCode } from '../../shared/errors.js';
import type { Logger } from '../log/logger.js';

export interface ErrorBody {
  statusCode: number;
  code: ErrorCode;
  message: string;
}

// Fastify's own error codes that are the caller's fault, and what we call them.
const FASTIFY_CODES: Record<string, ErrorCode> = {
  FST_ERR_CTP_BODY_TOO_LARGE: 'PISWARM_ERR_BODY_TOO_LARGE',
  FST_ERR_CTP_INVALID_MEDIA_TYPE: 'PISWARM_ERR_UNSUPPORTED_MEDIA',
  FST_ERR_CTP_INVALID_CONTENT_LENGTH: 'PISWARM_ERR_BAD_REQUEST',
  FST_ERR_CTP_EMPTY_JSON_BODY: 'PISWARM_ERR_BAD_REQUEST',
  FST_ERR_CTP_INVALID_JSON_BODY: 'PISWARM_ERR_BAD_REQUEST',
  FST_ERR_VALIDATION: 'PISWARM_ERR_BAD_REQUEST',
};

/**
 * One error handler for the whole API: a 4xx says what was wrong, a 5xx says
 * nothing internal. Everything is counted so /metrics shows abuse and bugs.
 */
export function errorBody(err: FastifyError | PiswarmError | Error): { body: ErrorBody; internal: boolean } {
  if (err instanceof PiswarmError) {
    const internal = err.statusCode >= 500;
    const shown = !internal || 'expose' in ERROR_CODES[err.code];
    return { body: { statusCode: err.statusCode, code: err.code, message: shown ? err.message : ERROR_CODES[err.code].message }, internal };
  }
  const fe = err as FastifyError;
  const mapped = (fe.code && FASTIFY_CODES[fe.code]) ?? (fe.validation ? 'PISWARM_ERR_BAD_REQUEST' : undefined);
  if (mapped) {
    const status = ERROR_CODES[mapped].status;
    return { body: { statusCode: status, code: mapped, message: fe.message || ERROR_CODES[mapped].message }, internal: false };
  }
  if (typeof fe.statusCode === 'number' && fe.statusCode >= 400 && fe.statusCode < 500) {
    return { body: { statusCode: fe.statusCode, code: 'PISWARM_ERR_BAD_REQUEST', message: fe.message || 'bad request' }, internal: false };
  }
  return { body: { statusCode: 500, code: 'PISWARM_ERR_INTERNAL', message: ERROR_CODES.PISWARM_ERR_INTERNAL.message }, internal: true };
}

export function makeErrorHandler(log: Logger, count: (code: ErrorCode) => void) {
  return (err: FastifyError, req: FastifyRequest, reply: FastifyReply) => {
    const { body, internal } = errorBody(err);
    count(body.code);
    if (internal) log.error({ err, code: body.code, method: req.method, url: req.routeOptions.url }, 'request failed');
    else log.debug({ code: body.code, method: req.method, url: req.routeOptions.url, detail: body.message }, 'request refused');
    void reply.code(body.statusCode).type('application/json').send(body);
  };
}
