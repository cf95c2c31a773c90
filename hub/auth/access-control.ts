import type { FastifyInstance } from 'fastify';
import type { Clock } from '../../shared/clock.js';
import { auditRecordOf } from '../audit/audit-record.js';
import type { AuditTrail } from '../audit/audit-trail.js';
import { ApiError } from '../http/errors.js';
import type { ApiTokens, Principal } from './api-tokens.js';
import { roleReaches } from './roles.js';
import { ruleOf } from './route-rules.js';
import { bearerToken } from './secrets.js';

declare module 'fastify' {
  interface FastifyRequest {
    /** The token a request was made with, once the access hook has checked it; null on open routes. */
    principal: Principal | null;
  }
}

/** A route registered with no line in route-rules.ts: a bug, caught before the hub serves anything. */
export class MissingRouteRuleError extends Error {
  readonly code = 'missing_route_rule';
  constructor(method: string, url: string) {
    super(`${method} ${url} has no access rule: add it to hub/auth/route-rules.ts`);
  }
}

const isRead = (method: string) => method === 'GET' || method === 'HEAD';

/**
 * Who may do what, for the whole app, in one place: every request to a route is checked against
 * its rule in route-rules.ts (401 without a valid token, 403 for a role below the rule), and every
 * change asked of the API (any method but GET and HEAD, whatever its outcome) is handed to the
 * audit trail once answered. Install it before registering any route: the routes registered after
 * it are checked for a rule, and the hub does not start with one that has none.
 */
export function installAccessControl(app: FastifyInstance, { tokens, audit, clock }: { tokens: ApiTokens; audit: AuditTrail; clock: Clock }): void {
  app.decorateRequest('principal', null);

  app.addHook('onRoute', (route) => {
    for (const method of [route.method].flat()) if (ruleOf(method, route.url) === undefined) throw new MissingRouteRuleError(method, route.url);
  });

  app.addHook('onRequest', async (request) => {
    const url = request.routeOptions.url;
    // No route: the 404 answer guards nothing and says nothing.
    if (url === undefined) return;
    const rule = ruleOf(request.method, url);
    if (rule === undefined) throw new MissingRouteRuleError(request.method, url);
    if (rule === 'open') return;
    const authenticated = tokens.authenticate(bearerToken(request.headers.authorization));
    if (!authenticated.ok) throw new ApiError(401, 'unauthorized', authenticated.reason);
    const { principal } = authenticated;
    request.principal = principal;
    if (!roleReaches(principal.role, rule)) {
      throw new ApiError(403, 'forbidden', `${request.method} ${url} needs the ${rule} role; token "${principal.name}" has the ${principal.role} role`);
    }
  });

  app.addHook('onResponse', async (request, reply) => {
    const url = request.routeOptions.url;
    if (url === undefined || isRead(request.method) || ruleOf(request.method, url) === 'open') return;
    audit.record(auditRecordOf(request, reply, request.principal, clock.nowMs()));
  });
}
