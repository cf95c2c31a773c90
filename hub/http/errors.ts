import type { FastifyError, FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import type { FieldError } from '../../shared/validation.js';
import { StoreWriteError } from '../store/store-write-error.js';

/** What a client is told to wait before retrying a write the store could not make. */
const STORE_RETRY_AFTER_S = 30;

/** An expected, operator-facing error: a stable code, a message, and the fields at fault. */
export class ApiError extends Error {
  constructor(
    readonly statusCode: number,
    readonly code: string,
    message: string,
    readonly details: FieldError[] = [],
  ) {
    super(message);
  }
}

export function invalid(code: string, errors: FieldError[]): ApiError {
  const summary = errors
    .slice(0, 3)
    .map((e) => (e.path ? `${e.path}: ${e.message}` : e.message))
    .join('; ');
  return new ApiError(400, code, summary || 'invalid request', errors);
}

/** What an error message may quote of a request's URL: enough to recognise it, never the whole of a huge one. */
const MAX_QUOTED_URL_CHARS = 120;

function quotedPath(url: string): string {
  const path = url.split('?')[0] ?? '';
  return path.length <= MAX_QUOTED_URL_CHARS ? path : `${path.slice(0, MAX_QUOTED_URL_CHARS)}...`;
}

/**
 * Errors fastify raises before routing (a parameter longer than the router allows, a URL that does
 * not decode) never reach the error handler: without this they leave in fastify's own shape.
 */
export function frameworkErrors(error: FastifyError, request: FastifyRequest, reply: FastifyReply): void {
  const where = quotedPath(request.url);
  if (error.code === 'FST_ERR_MAX_PARAM_LENGTH') {
    void reply.status(414).send({ error: { code: 'uri_too_long', message: `a path segment of ${where} is longer than the hub accepts` } });
    return;
  }
  if (error.code === 'FST_ERR_BAD_URL') {
    void reply.status(400).send({ error: { code: 'bad_url', message: `${where} is not a valid URL (bad percent-encoding)` } });
    return;
  }
  const status = error.statusCode ?? 400;
  if (status >= 500) {
    request.log.error({ err: error }, 'request failed before routing');
    void reply.status(500).send({ error: { code: 'internal', message: 'internal error; see the hub log' } });
    return;
  }
  void reply.status(status).send({ error: { code: 'bad_request', message: error.message.slice(0, 200) } });
}

/** Maps fastify's own errors (bad JSON, body too large, wrong content type) to the same shape. */
export function registerErrorHandling(app: FastifyInstance): void {
  app.setErrorHandler((error: FastifyError | ApiError | StoreWriteError, request, reply) => {
    if (error instanceof StoreWriteError) return storeWriteFailed(error, request, reply);
    if (error instanceof ApiError) {
      const body: Record<string, unknown> = { code: error.code, message: error.message };
      if (error.details.length > 0) body.details = error.details;
      return reply.status(error.statusCode).send({ error: body });
    }
    const status = error.statusCode ?? 500;
    if (status >= 500) {
      request.log.error({ err: error }, 'request failed');
      return reply.status(500).send({ error: { code: 'internal', message: 'internal error; see the hub log' } });
    }
    const code = (error.code ?? 'bad_request').replace(/^FST_ERR_/, '').toLowerCase();
    return reply.status(status).send({ error: { code, message: error.message } });
  });
  app.setNotFoundHandler((request, reply) =>
    reply.status(404).send({ error: { code: 'not_found', message: `no route ${request.method} ${quotedPath(request.url)}` } }),
  );
}

/**
 * A write the hub could not make durable: nothing of it was kept, so the client may retry. A full
 * disk is 507 (the operator must free space); anything else (read-only, I/O error, permissions) is
 * 503 with Retry-After. Both name the cause rather than a generic 500.
 */
function storeWriteFailed(error: StoreWriteError, request: FastifyRequest, reply: FastifyReply): FastifyReply {
  request.log.error({ err: error, code: error.code, file: error.file }, 'store write failed; the change was not kept');
  if (error.diskFull) {
    return reply.status(507).send({
      error: { code: 'insufficient_storage', message: `the hub's data directory is full: cannot write ${error.file} (${error.code}); nothing was changed: free space and retry` },
    });
  }
  return reply
    .status(503)
    .header('retry-after', String(STORE_RETRY_AFTER_S))
    .send({ error: { code: 'store_unavailable', message: `the hub cannot write to its data directory: ${error.file} (${error.code}); nothing was changed: retry later` } });
}
