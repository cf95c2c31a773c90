import type { FastifyReply, FastifyRequest } from 'fastify';
import type { Principal } from '../auth/api-tokens.js';
import type { Role } from '../auth/roles.js';

/**
 * One change asked of the API, as the audit log keeps it: who (the token's name and role), from
 * where, what (the route's pattern and its parameters) and how it ended. Never a body: a
 * secret's value, a spec's registry password, a token made all travel in bodies.
 */
export interface AuditRecord {
  time: string;
  /** Null when the request carried no valid token (a refused attempt is worth keeping too). */
  token: { id: string; name: string; role: Role } | null;
  remoteAddress: string;
  method: string;
  /** The route's pattern, e.g. `/v1/services/:name`. */
  route: string;
  /** The route's parameters, e.g. `{ "name": "web" }`: names and ids, never values. */
  target: Record<string, string>;
  /** The query string, when there is one (`purgeVolumes` changes what a delete does). */
  query?: Record<string, string>;
  status: number;
}

/** A query may be long and many-keyed; the record keeps enough of it to read. */
const MAX_QUERY_KEYS = 16;
const MAX_QUERY_VALUE_CHARS = 200;

function boundedQuery(query: unknown): Record<string, string> | undefined {
  if (!query || typeof query !== 'object') return undefined;
  const entries = Object.entries(query as Record<string, unknown>).slice(0, MAX_QUERY_KEYS);
  if (entries.length === 0) return undefined;
  return Object.fromEntries(entries.map(([key, value]) => [key.slice(0, MAX_QUERY_VALUE_CHARS), String(value).slice(0, MAX_QUERY_VALUE_CHARS)]));
}

export function auditRecordOf(request: FastifyRequest, reply: FastifyReply, principal: Principal | null, nowMs: number): AuditRecord {
  const query = boundedQuery(request.query);
  return {
    time: new Date(nowMs).toISOString(),
    token: principal ? { id: principal.tokenId, name: principal.name, role: principal.role } : null,
    remoteAddress: request.ip,
    method: request.method,
    route: request.routeOptions.url ?? request.url.split('?')[0]!,
    target: { ...(request.params as Record<string, string>) },
    ...(query ? { query } : {}),
    status: reply.statusCode,
  };
}
