import { mkdtemp, readdir, readFile, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import type { FastifyInstance } from 'fastify';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { buildHub } from '../../hub/app.js';
import { LowdbStore } from '../../hub/store/lowdb-store.js';

const ADMIN = 'tat_api-tokens-first-admin';
const DAY_MS = 24 * 3_600_000;

let dir: string;
let store: LowdbStore | null = null;
let app: FastifyInstance | null = null;

async function start(): Promise<void> {
  store = new LowdbStore({ dir: path.join(dir, 'store'), nodeShards: 2, serviceShards: 2 });
  await store.open();
  ({ app } = await buildHub({ store, adminToken: ADMIN, dataDir: dir }));
}

async function stop(): Promise<void> {
  await app?.close();
  await store?.close();
  app = null;
  store = null;
}

beforeEach(async () => {
  dir = await mkdtemp(path.join(os.tmpdir(), 'tether-api-tokens-api-'));
  await start();
});
afterEach(async () => {
  await stop();
  await rm(dir, { recursive: true, force: true });
});

const call = (method: string, url: string, token: string | null = ADMIN, body?: unknown) =>
  app!.inject({ method: method as 'GET', url, headers: token ? { authorization: `Bearer ${token}` } : {}, ...(body !== undefined ? { payload: body as object } : {}) });

/** Every file of the data dir, as text. */
async function everyFile(root: string): Promise<string> {
  let all = '';
  for (const entry of await readdir(root, { withFileTypes: true, recursive: true })) {
    if (entry.isFile()) all += await readFile(path.join(entry.parentPath, entry.name), 'utf8');
  }
  return all;
}

describe('API tokens over the API', () => {
  it('makes a token shown once, lists it without its secret, and revokes it', async () => {
    const made = await call('POST', '/v1/api-tokens', ADMIN, { role: 'operator', name: 'deploy-bot', ttl: '30d' });
    expect(made.statusCode).toBe(201);
    const body = made.json();
    expect(body).toEqual({
      id: expect.stringMatching(/^[0-9a-f]{16}$/),
      name: 'deploy-bot',
      role: 'operator',
      createdAt: expect.any(String),
      expiresAt: expect.any(String),
      lastUsedAt: null,
      expired: false,
      token: expect.stringMatching(/^tat_/),
    });
    expect(Date.parse(body.expiresAt) - Date.parse(body.createdAt)).toBe(30 * DAY_MS);

    // It works, for its role.
    expect((await call('GET', '/v1/nodes', body.token)).statusCode).toBe(200);
    expect((await call('PUT', '/v1/services/web', body.token, { image: 'busybox:1' })).statusCode).toBe(201);
    expect((await call('GET', '/v1/api-tokens', body.token)).statusCode).toBe(403);

    const listed = await call('GET', '/v1/api-tokens');
    expect(listed.statusCode).toBe(200);
    expect(listed.json().apiTokens).toEqual([{ ...body, token: undefined, lastUsedAt: expect.any(String) }].map(({ token: _t, ...rest }) => rest));
    expect(listed.body).not.toContain(body.token.split('.')[1]);
    // Nor anywhere on disk: the store holds a digest.
    await store!.close();
    expect(await everyFile(dir)).not.toContain(body.token.split('.')[1]);

    const revoked = await call('DELETE', `/v1/api-tokens/${body.id}`);
    expect(revoked.statusCode).toBe(200);
    expect(revoked.json()).toMatchObject({ id: body.id, name: 'deploy-bot', revoked: true });
    const refused = await call('GET', '/v1/nodes', body.token);
    expect(refused.statusCode).toBe(401);
    expect(refused.json().error.code).toBe('unauthorized');
    expect((await call('GET', '/v1/api-tokens')).json().apiTokens).toEqual([]);
    const again = await call('DELETE', `/v1/api-tokens/${body.id}`);
    expect(again.statusCode).toBe(404);
    expect(again.json().error.code).toBe('api_token_not_found');
  });

  it('lasts until revoked without a ttl, and across a restart', async () => {
    const made = (await call('POST', '/v1/api-tokens', ADMIN, { role: 'viewer', name: 'dashboard' })).json();
    expect(made.expiresAt).toBeNull();
    await stop();
    await start();
    expect((await call('GET', '/v1/services', made.token)).statusCode).toBe(200);
    expect((await call('GET', '/v1/api-tokens')).json().apiTokens.map((t: { name: string }) => t.name)).toEqual(['dashboard']);
  });

  it('lets an admin API token make and revoke tokens too', async () => {
    const admin2 = (await call('POST', '/v1/api-tokens', ADMIN, { role: 'admin', name: 'second' })).json();
    const viewer = await call('POST', '/v1/api-tokens', admin2.token, { role: 'viewer', name: 'wall' });
    expect(viewer.statusCode).toBe(201);
    expect((await call('DELETE', `/v1/api-tokens/${viewer.json().id}`, admin2.token)).statusCode).toBe(200);
    // Join tokens take any admin token as well.
    expect((await call('POST', '/v1/join-tokens', admin2.token, {})).statusCode).toBe(201);
  });

  it.each([
    [{ name: 'x' }, 'role', /required/],
    [{ role: 'root', name: 'x' }, 'role', /viewer, operator or admin/],
    [{ role: 'viewer' }, 'name', /required/],
    [{ role: 'viewer', name: 'has space' }, 'name', /letters/],
    [{ role: 'viewer', name: 'x', ttl: 'forever' }, 'ttl', /duration/],
    [{ role: 'viewer', name: 'x', ttl: '10s' }, 'ttl', /minute/],
    [{ role: 'viewer', name: 'x', ttl: 30 }, 'ttl', /string/],
    [{ role: 'viewer', name: 'x', scopes: [] }, 'scopes', /unknown field/],
  ])('refuses %j with 400 naming %s, and makes nothing', async (input, field, reason) => {
    const res = await call('POST', '/v1/api-tokens', ADMIN, input);
    expect(res.statusCode).toBe(400);
    expect(res.json().error.details).toEqual(expect.arrayContaining([expect.objectContaining({ path: field, message: expect.stringMatching(reason) })]));
    expect((await call('GET', '/v1/api-tokens')).json().apiTokens).toEqual([]);
  });

  it('refuses a name in use, and the first admin token\'s', async () => {
    expect((await call('POST', '/v1/api-tokens', ADMIN, { role: 'viewer', name: 'wall' })).statusCode).toBe(201);
    for (const name of ['wall', 'admin']) {
      const res = await call('POST', '/v1/api-tokens', ADMIN, { role: 'admin', name });
      expect(res.statusCode).toBe(409);
      expect(res.json().error.code).toBe('api_token_name_taken');
    }
  });
});
