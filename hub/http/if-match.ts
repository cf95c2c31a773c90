/**
 * `If-Match` on writes, `ETag` on reads of one record (see hub/revision-match.ts). A stale
 * revision answers 412 with the current one, so that a client can show it or read again.
 */
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { etagOf, parseIfMatch, RevisionMismatchError, type RevisionCondition } from '../revision-match.js';
import { ApiError } from './errors.js';

/**
 * The request's If-Match as a condition, or its `If-None-Match: *` (the record must not exist);
 * undefined without either; 400 when one does not parse, or both are given.
 */
export function ifMatchOf(request: FastifyRequest): RevisionCondition | undefined {
  const header = request.headers['if-match'];
  const noneMatch = request.headers['if-none-match'];
  if (noneMatch !== undefined) {
    const invalid = (message: string) => new ApiError(400, 'invalid_header', `If-None-Match: ${message}`, [{ path: 'If-None-Match', message }]);
    if (noneMatch.trim() !== '*') throw invalid('only * is taken on a write (create only if it does not exist)');
    if (header !== undefined) throw invalid('goes with no If-Match: the two ask for opposite things');
    return { kind: 'absent' };
  }
  if (header === undefined) return undefined;
  const parsed = parseIfMatch(Array.isArray(header) ? header.join(',') : header);
  if ('error' in parsed) throw new ApiError(400, 'invalid_header', `If-Match: ${parsed.error}`, [{ path: 'If-Match', message: parsed.error }]);
  return parsed;
}

export function withEtag(reply: FastifyReply, revision: number): void {
  void reply.header('etag', etagOf(revision));
}

/**
 * Answers a stale revision in `app`'s routes (a plugin's own scope) with 412 and the current
 * revision, which the hub's error handler could not add; every other error goes on to it.
 */
export function answerStaleRevisions(app: FastifyInstance): void {
  app.setErrorHandler((error, _request, reply) => {
    if (!(error instanceof RevisionMismatchError)) throw error;
    if (error.currentRevision !== null) withEtag(reply, error.currentRevision);
    return reply.status(412).send({ error: { code: error.code, message: error.message }, currentRevision: error.currentRevision });
  });
}
