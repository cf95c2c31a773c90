import { setTimeout as sleep } from 'node:timers/promises';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import type { Clock } from '../../shared/clock.js';
import { auditRecordOf } from '../audit/audit-record.js';
import type { AuditTrail } from '../audit/audit-trail.js';
import { ApiError } from '../http/errors.js';
import type { ApiTokens, Principal } from './api-tokens.js';
import type { AuthFailures, AuthKind } from './auth-failures.js';
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
 * Counts a failed authentication against the request's address, and answers as the count says:
 * returns at once or after a delay (the caller then answers 401), or throws a 429 with
 * Retry-After. A failure is never answered sooner than its allowance says, whatever its kind.
 */
export async function holdFailedAuthentication(failures: AuthFailures, request: FastifyRequest, reply: FastifyReply, kind: AuthKind): Promise<void> {
  const verdict = failures.failed(request.ip, kind);
  if (verdict.action === 'slow') await sleep(verdict.delayMs);
  if (verdict.action !== 'refuse') return;
  void reply.header('Retry-After', String(verdict.retryAfterS));
  throw new ApiError(429, 'too_many_failures', `too many failed authentications from this address; retry in ${verdict.retryAfterS} s`);
}

/**
 * Who may do what, for the whole app, in one place: every request to a route is checked against
 * its rule in route-rules.ts (401 without a valid token, 403 for a role below the rule, 429 for
 * an address that failed too often: see auth-failures.ts), and every change asked of the API (any
 * method but GET and HEAD, whatever its outcome but a 429 of that kind) is handed to the audit
 * trail once answered. Install it before registering any route: the routes registered after it
 * are checked for a rule, and the hub does not start with one that has none.
 */
export function installAccessControl(
  app: FastifyInstance,
  { tokens, audit, clock, failures }: { tokens: ApiTokens; audit: AuditTrail; clock: Clock; /** Absent: failures are not throttled (rules checked alone). */ failures?: AuthFailures },
): void {
  app.decorateRequest('principal', null);

  app.addHook('onRoute', (route) => {
    for (const method of [route.method].flat()) if (ruleOf(method, route.url) === undefined) throw new MissingRouteRuleError(method, route.url);
  });

  app.addHook('onRequest', async (request, reply) => {
    const url = request.routeOptions.url;
    // No route: the 404 answer guards nothing and says nothing.
    if (url === undefined) return;
    const rule = ruleOf(request.method, url);
    if (rule === undefined) throw new MissingRouteRuleError(request.method, url);
    if (rule === 'open') return;
    const authenticated = tokens.authenticate(bearerToken(request.headers.authorization));
    if (!authenticated.ok) {
      // A right token is never held here, even from an address refused for its failures: see auth-failures.ts.
      if (failures) await holdFailedAuthentication(failures, request, reply, 'api_token');
      throw new ApiError(401, 'unauthorized', authenticated.reason);
    }
    const { principal } = authenticated;
    request.principal = principal;
    if (!roleReaches(principal.role, rule)) {
      throw new ApiError(403, 'forbidden', `${request.method} ${url} needs the ${rule} role; token "${principal.name}" has the ${principal.role} role`);
    }
  });

  app.addHook('onResponse', async (request, reply) => {
    const url = request.routeOptions.url;
    if (url === undefined || isRead(request.method) || ruleOf(request.method, url) === 'open') return;
    // A failure refused for its address's earlier ones is counted and logged once per burst: a
    // record each would let a flood rotate the real history out of the log.
    if (reply.statusCode === 429 && request.principal === null) return;
    audit.record(auditRecordOf(request, reply, request.principal, clock.nowMs()));
  });
}
