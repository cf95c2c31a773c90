import type { Role } from './roles.js';

/**
 * Who may use each route of the hub: the least role that may (roles.ts: a token of a higher role
 * may too), or `open` for routes outside the roles, which authenticate by other means or not at
 * all. Every route the hub registers must be here: the hub refuses to start with one that is not
 * (access-control.ts), so that a new route is never left open, nor closed, by accident.
 *
 * Keyed by method and route pattern, as fastify registers them; parameter names do not matter
 * (`/v1/nodes/:id` and `/v1/nodes/:nodeId` are the same route). HEAD follows GET.
 *
 * Why each line says what it says:
 * - viewer: reads, which never show a secret's value (every view of a secret or of a registry
 *   password is redacted); configs are not secrets, and their values are shown.
 * - operator: what running services takes (deploy, update, scale, rollback, resume, move, delete
 *   a service, configs) and holds on nodes (cordon, drain, uncordon, name and labels).
 * - admin: secrets' values, every kind of token (they are keys to the fleet), removing a node or
 *   renewing its credential (identity), and the audit log (what others did).
 * The agent's WebSocket endpoint is not a fastify route: the gateway takes node credentials only.
 */
export const ROUTE_RULES: Readonly<Record<string, Role | 'open'>> = {
  // Load balancers and supervisors ask without credentials.
  'GET /healthz': 'open',
  // A device joining: authenticated by its join token (hub/http/join.ts).
  'POST /v1/join': 'open',

  'GET /metrics': 'viewer',

  'GET /v1/nodes': 'viewer',
  'GET /v1/nodes/:id': 'viewer',
  'PATCH /v1/nodes/:id': 'operator',
  'POST /v1/nodes/:id/cordon': 'operator',
  'POST /v1/nodes/:id/drain': 'operator',
  'POST /v1/nodes/:id/uncordon': 'operator',
  'DELETE /v1/nodes/:id': 'admin',
  'POST /v1/nodes/:id/rotate-credential': 'admin',

  'GET /v1/services': 'viewer',
  'GET /v1/services/:name': 'viewer',
  'GET /v1/services/:name/revisions': 'viewer',
  'PUT /v1/services/:name': 'operator',
  'DELETE /v1/services/:name': 'operator',
  'POST /v1/services/:name/rollback': 'operator',
  'POST /v1/services/:name/resume': 'operator',
  'POST /v1/services/:name/scale': 'operator',
  'POST /v1/services/:name/replicas/:id/move': 'operator',
  // Containers' output may hold data a viewer must not see (tokens printed at start, customers' records).
  'GET /v1/services/:name/logs': 'operator',

  'GET /v1/configs': 'viewer',
  'GET /v1/configs/:name': 'viewer',
  'PUT /v1/configs/:name': 'operator',
  'DELETE /v1/configs/:name': 'operator',

  'GET /v1/secrets': 'viewer',
  'GET /v1/secrets/:name': 'viewer',
  'PUT /v1/secrets/:name': 'admin',
  'DELETE /v1/secrets/:name': 'admin',

  'POST /v1/join-tokens': 'admin',
  'GET /v1/join-tokens': 'admin',
  'DELETE /v1/join-tokens/:id': 'admin',

  'POST /v1/api-tokens': 'admin',
  'GET /v1/api-tokens': 'admin',
  'DELETE /v1/api-tokens/:id': 'admin',

  'GET /v1/audit': 'admin',

  // What happened to services, replicas and nodes: what the views show, as it changes.
  'GET /v1/events': 'viewer',

  // The API reference (hub/http/openapi.ts): what the routes are, never what the fleet holds;
  // open, so that a client can read it before it has a token. /docs/* are the page's own files.
  'GET /openapi.json': 'open',
  'GET /docs': 'open',
  'GET /docs/': 'open',
  'GET /docs/*': 'open',
  'GET /docs/json': 'open',
  'GET /docs/yaml': 'open',
  'GET /docs/static/*': 'open',
  'GET /docs/static/index.html': 'open',
  'GET /docs/static/swagger-initializer.js': 'open',

  // What a device installs the agent from (hub/http/installer.ts): no secret in them, and a
  // device has no credential before it joins.
  'GET /install.sh': 'open',
  'GET /agent/tether-agent.js': 'open',
  'GET /agent/tether-agent.js.sha256': 'open',
};

/** `METHOD /path/:`: the table's key without parameter names. */
function routeKey(method: string, url: string): string {
  return `${method === 'HEAD' ? 'GET' : method} ${url.replace(/:[^/]+/g, ':')}`;
}

const RULES_BY_KEY = new Map(
  Object.entries(ROUTE_RULES).map(([key, rule]) => {
    const [method, url] = key.split(' ') as [string, string];
    return [routeKey(method, url), rule] as const;
  }),
);

/** The rule of a route as fastify registered it; undefined: the route has none (a bug). */
export function ruleOf(method: string, url: string): Role | 'open' | undefined {
  return RULES_BY_KEY.get(routeKey(method, url));
}
