import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import Fastify, { type FastifyInstance } from 'fastify';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildHub } from '../../hub/app.js';
import { installAccessControl } from '../../hub/auth/access-control.js';
import { ApiTokens } from '../../hub/auth/api-tokens.js';
import { DEFAULT_AUTH_FAILURE_LIMITS } from '../../hub/auth/auth-failures.js';
import { MemoryAuditTrail } from '../../hub/audit/memory-audit-trail.js';
import { roleReaches, type Role } from '../../hub/auth/roles.js';
import { ruleOf } from '../../hub/auth/route-rules.js';
import { LowdbStore } from '../../hub/store/lowdb-store.js';
import { connectRaw, readResponseHead, upgradeRequest } from '../helpers/raw-upgrade.js';

/**
 * The role table over every route the hub registers, found in fastify's own route table: a route
 * added without a rule, or with one that breaks what the roles promise, fails here.
 */

const ADMIN = 'tat_route-roles-first-admin';
const T0 = Date.parse('2026-04-01T00:00:00.000Z');
const HOUR_MS = 3_600_000;

let dir: string;
let store: LowdbStore;
let app: FastifyInstance;
const clock = { ms: T0 };
/** A real token of each kind, made through the API. */
const tokens: Record<'viewer' | 'operator' | 'admin' | 'expired' | 'revoked', string> = { viewer: '', operator: '', admin: '', expired: '', revoked: '' };

const inject = (method: string, url: string, authorization: string | null, body?: object) =>
  app.inject({
    method: method as 'GET',
    url,
    headers: authorization === null ? {} : { authorization },
    ...(body !== undefined ? { payload: body } : {}),
  });

async function makeToken(role: Role, name: string, ttl?: string): Promise<{ id: string; token: string }> {
  const res = await inject('POST', '/v1/api-tokens', `Bearer ${ADMIN}`, { role, name, ...(ttl ? { ttl } : {}) });
  expect(res.statusCode, res.body).toBe(201);
  return res.json();
}

/** Every method and path of fastify's route table, from printRoutes (each line a segment under its parent). */
function registeredRoutes(instance: FastifyInstance): Array<{ method: string; url: string }> {
  const routes: Array<{ method: string; url: string }> = [];
  const prefixes: string[] = [];
  for (const line of instance.printRoutes({ commonPrefix: false }).split('\n')) {
    const m = /^((?:[│ ] {3})*)[├└]── (\S+)(?: \(([A-Z, ]+)\))?$/.exec(line);
    if (!m) continue;
    const depth = m[1]!.length / 4;
    prefixes.length = depth;
    const url = `${prefixes.join('')}${m[2]!}`;
    prefixes.push(m[2]!);
    for (const method of (m[3] ?? '').split(', ').filter(Boolean)) routes.push({ method, url });
  }
  return routes;
}

const concrete = (url: string) => url.replace(/:[^/]+/g, 'x-1');
const isRead = (method: string) => method === 'GET' || method === 'HEAD';

beforeAll(async () => {
  dir = await mkdtemp(path.join(os.tmpdir(), 'tether-route-roles-'));
  store = new LowdbStore({ dir: path.join(dir, 'store'), nodeShards: 2, serviceShards: 2 });
  await store.open();
  // Hundreds of refused tokens from one address, on purpose: past the default allowance they would be 429s.
  const authFailures = { ...DEFAULT_AUTH_FAILURE_LIMITS, allowance: 100_000 };
  ({ app } = await buildHub({ store, adminToken: ADMIN, clock: { nowMs: () => clock.ms }, dataDir: dir, config: { authFailures } }));
  await app.listen({ host: '127.0.0.1', port: 0 });
  tokens.viewer = (await makeToken('viewer', 'dash')).token;
  tokens.operator = (await makeToken('operator', 'ci')).token;
  tokens.admin = (await makeToken('admin', 'second-admin')).token;
  tokens.expired = (await makeToken('admin', 'short-lived', '1h')).token;
  const revoked = await makeToken('admin', 'gone');
  tokens.revoked = revoked.token;
  expect((await inject('DELETE', `/v1/api-tokens/${revoked.id}`, `Bearer ${ADMIN}`)).statusCode).toBe(200);
  clock.ms = T0 + 2 * HOUR_MS;
});

afterAll(async () => {
  await app?.close();
  await store?.close();
  await rm(dir, { recursive: true, force: true });
});

/**
 * Outside the roles: health, the device's join (its own token), and what a device installs the
 * agent from (no secret in it); nothing else.
 */
const OPEN_ROUTES = [
  'GET /healthz',
  'HEAD /healthz',
  'POST /v1/join',
  ...['/install.sh', '/agent/tether-agent.js', '/agent/tether-agent.js.sha256'].flatMap((url) => [`GET ${url}`, `HEAD ${url}`]),
];

describe('the role table over every route', () => {
  it('finds the whole route table, and a rule for every route in it', () => {
    const routes = registeredRoutes(app);
    // Not an empty walk: the hub has some thirty routes, each GET with its HEAD.
    expect(routes.length).toBeGreaterThanOrEqual(40);
    const missing = routes.filter((r) => ruleOf(r.method, r.url) === undefined).map((r) => `${r.method} ${r.url}`);
    expect(missing).toEqual([]);
  });

  it('keeps what the roles promise, whatever the table says', () => {
    for (const { method, url } of registeredRoutes(app)) {
      const rule = ruleOf(method, url)!;
      const route = `${method} ${url}`;
      // Outside the roles: health, and the device's join (its own token); nothing else.
      // And reads of the API reference (hub/http/openapi.ts), which says what the routes are, not what the fleet holds.
      const reference = isRead(method) && (url === '/openapi.json' || url === '/docs' || url.startsWith('/docs/'));
      if (rule === 'open' && !reference) expect(OPEN_ROUTES).toContain(route);
      // A viewer only reads.
      if (rule === 'viewer') expect(isRead(method), route).toBe(true);
      // Not for an operator: secrets' values, tokens, node removal and credentials, the audit log.
      const adminOnly =
        (url.startsWith('/v1/secrets') && !isRead(method)) ||
        url.startsWith('/v1/api-tokens') ||
        url.startsWith('/v1/join-tokens') ||
        url.startsWith('/v1/audit') ||
        (url.startsWith('/v1/nodes/') && (method === 'DELETE' || url.endsWith('/rotate-credential')));
      if (adminOnly) expect(rule, route).toBe('admin');
    }
  });

  it('refuses, allows or forbids each route for each kind of token as its rule says', async () => {
    const refusals: Array<[string, string | null]> = [
      ['no token', null],
      ['a wrong token', `Bearer tat_0123456789abcdef.${'A'.repeat(43)}`],
      ['a malformed token', 'Bearer not a token'],
      ['a bare Bearer', 'Bearer'],
      ['another scheme', `Basic ${Buffer.from(`admin:${ADMIN}`).toString('base64')}`],
      ['a node credential', `Bearer tnc_node-1.${'A'.repeat(43)}`],
      ['an expired token', `Bearer ${tokens.expired}`],
      ['a revoked token', `Bearer ${tokens.revoked}`],
    ];
    const holders: Array<[string, Role, string]> = [
      ['viewer', 'viewer', tokens.viewer],
      ['operator', 'operator', tokens.operator],
      ['admin API token', 'admin', tokens.admin],
      ['first admin token', 'admin', ADMIN],
    ];
    const outcomes: string[] = [];
    for (const { method, url } of registeredRoutes(app)) {
      const rule = ruleOf(method, url)!;
      const body = isRead(method) || method === 'DELETE' ? undefined : {};
      const target = concrete(url);
      if (rule === 'open') {
        for (const [what, authorization] of refusals) {
          const res = await inject(method, target, authorization, body);
          if (res.statusCode === 401 || res.statusCode === 403) outcomes.push(`${method} ${url} refused ${what} although open: ${res.statusCode}`);
        }
        continue;
      }
      for (const [what, authorization] of refusals) {
        const res = await inject(method, target, authorization, body);
        if (res.statusCode !== 401) outcomes.push(`${method} ${url} with ${what}: ${res.statusCode}, not 401`);
        else if (method !== 'HEAD' && res.json().error.code !== 'unauthorized') outcomes.push(`${method} ${url} with ${what}: code ${res.json().error.code}`);
      }
      for (const [what, role, token] of holders) {
        const res = await inject(method, target, `Bearer ${token}`, body);
        const may = roleReaches(role, rule);
        if (may && (res.statusCode === 401 || res.statusCode === 403)) outcomes.push(`${method} ${url} refused the ${what}: ${res.statusCode}`);
        if (!may && res.statusCode !== 403) outcomes.push(`${method} ${url} let the ${what} in: ${res.statusCode}, not 403`);
        if (!may && method !== 'HEAD' && res.statusCode === 403) expect(res.json().error).toMatchObject({ code: 'forbidden', message: expect.stringContaining(rule) });
      }
    }
    expect(outcomes).toEqual([]);
  });

  it('says why a token is refused', async () => {
    const expired = await inject('GET', '/v1/nodes', `Bearer ${tokens.expired}`);
    expect(expired.json().error.message).toMatch(/"short-lived" expired at 2026-04-01T01:00:00.000Z/);
    const missing = await inject('GET', '/v1/nodes', null);
    expect(missing.json().error.message).toMatch(/Authorization: Bearer/);
  });

  it('leaves the state as it was after a refused write', async () => {
    const spec = { image: 'busybox:1', replicas: 1 };
    expect((await inject('PUT', '/v1/services/web', `Bearer ${tokens.viewer}`, spec)).statusCode).toBe(403);
    expect((await inject('PUT', '/v1/services/web', `Bearer ${tokens.revoked}`, spec)).statusCode).toBe(401);
    expect((await inject('GET', '/v1/services/web', `Bearer ${tokens.viewer}`)).statusCode).toBe(404);
    expect((await inject('PUT', '/v1/secrets/db', `Bearer ${tokens.operator}`, { value: 'pw' })).statusCode).toBe(403);
    expect((await inject('GET', '/v1/secrets/db', `Bearer ${tokens.operator}`)).statusCode).toBe(404);
    expect((await inject('POST', '/v1/api-tokens', `Bearer ${tokens.operator}`, { role: 'admin', name: 'mine' })).statusCode).toBe(403);
    expect((await inject('GET', '/v1/api-tokens', `Bearer ${ADMIN}`)).json().apiTokens.map((t: { name: string }) => t.name)).not.toContain('mine');
    // The operator's own work goes through.
    expect((await inject('PUT', '/v1/services/web', `Bearer ${tokens.operator}`, spec)).statusCode).toBe(201);
  });

  it('keeps API tokens, even an admin one, off the agent endpoint', async () => {
    const address = app.server.address();
    if (typeof address !== 'object' || !address) throw new Error('not listening');
    for (const credential of [ADMIN, tokens.admin, tokens.operator]) {
      const socket = await connectRaw({ host: '127.0.0.1', port: address.port });
      socket.write(upgradeRequest({ credential }));
      const { status, head } = await readResponseHead(socket);
      socket.destroy();
      expect(status, head).toBe(401);
    }
  });
});

describe('a route without a rule', () => {
  it('stops the app from starting, naming the route', async () => {
    const bare = Fastify();
    const tokensOfNone = new ApiTokens({ store, adminToken: ADMIN, clock: { nowMs: () => clock.ms } });
    installAccessControl(bare, { tokens: tokensOfNone, audit: new MemoryAuditTrail(), clock: { nowMs: () => clock.ms } });
    await bare.register(async (plugin) => {
      plugin.get('/v1/nodes', async () => ({}));
    });
    void bare.register(async (plugin) => {
      plugin.post('/v1/forgotten/:thing', async () => ({}));
    });
    await expect(bare.ready()).rejects.toThrow(/POST \/v1\/forgotten\/:thing has no access rule/);
    await bare.close().catch(() => undefined);
  });
});
