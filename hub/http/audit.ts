import type { FastifyInstance } from 'fastify';
import Type from 'typebox';
import type { AuditTrail } from '../audit/audit-trail.js';
import { invalid } from './errors.js';
import { routeSchema } from './route-schema.js';

const DEFAULT_LIMIT = 100;
const MAX_LIMIT = 1000;

/** Strings as a URL carries them; the handler reads them and names what is wrong with one. */
export const AuditQuerySchema = Type.Object({
  since: Type.Optional(Type.String({ description: 'records at or after this ISO time, like 2026-01-31T12:00:00Z' })),
  limit: Type.Optional(Type.String({ description: `at most this many records, the newest (1 to ${MAX_LIMIT}; default ${DEFAULT_LIMIT})` })),
});

/** `GET /v1/audit?since=<ISO time>&limit=<n>`: the newest records, oldest first (admin only, as the route table says). */
export async function auditRoutes(app: FastifyInstance, { audit }: { audit: AuditTrail }): Promise<void> {
  app.get<{ Querystring: { since?: string; limit?: string } }>('/v1/audit', routeSchema({ summary: 'Read the audit log', tags: ['hub'], querystring: AuditQuerySchema }), async (request) => {
    const { since, limit } = request.query;
    let sinceMs: number | null = null;
    if (since !== undefined) {
      sinceMs = Date.parse(since);
      // Date.parse takes more than ISO ("March 7"): a time that only looks right is refused.
      if (!/^\d{4}-\d\d-\d\d(T[\d:.]+(Z|[+-]\d\d:\d\d)?)?$/.test(since) || Number.isNaN(sinceMs)) {
        throw invalid('invalid_query', [{ path: 'since', message: `must be an ISO time like 2026-01-31T12:00:00Z, got "${since.slice(0, 40)}"` }]);
      }
    }
    let count = DEFAULT_LIMIT;
    if (limit !== undefined) {
      count = /^\d{1,5}$/.test(limit) ? Number(limit) : NaN;
      if (!(count >= 1 && count <= MAX_LIMIT)) throw invalid('invalid_query', [{ path: 'limit', message: `must be an integer from 1 to ${MAX_LIMIT}, got "${limit.slice(0, 20)}"` }]);
    }
    const read = await audit.read({ sinceMs, limit: count });
    const { dropped, failed } = audit.stats();
    // What the log could not keep since the hub started: an audit with holes must say so.
    return { ...read, lost: { dropped, failedWrites: failed } };
  });
}
