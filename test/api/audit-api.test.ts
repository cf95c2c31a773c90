import { mkdtemp, readFile, rm, stat } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import type { FastifyInstance } from 'fastify';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { buildHub } from '../../hub/app.js';
import { LowdbStore } from '../../hub/store/lowdb-store.js';

const ADMIN = 'tat_audit-first-admin';
/** Recognisable: found in the audit log as text or as base64, it leaked. */
const SECRET = 'AUDIT-SECRET-VALUE-5f2b9c';
const PASSWORD = 'AUDIT-REGISTRY-PASSWORD-81d3';

let dir: string;
let store: LowdbStore;
let app: FastifyInstance;

beforeEach(async () => {
  dir = await mkdtemp(path.join(os.tmpdir(), 'tether-audit-api-'));
  store = new LowdbStore({ dir: path.join(dir, 'store'), nodeShards: 2, serviceShards: 2 });
  await store.open();
  ({ app } = await buildHub({ store, adminToken: ADMIN, dataDir: dir }));
});
afterEach(async () => {
  await app.close();
  await store.close();
  await rm(dir, { recursive: true, force: true });
});

const call = (method: string, url: string, token: string | null = ADMIN, body?: unknown) =>
  app.inject({ method: method as 'GET', url, remoteAddress: '10.1.2.3', headers: token ? { authorization: `Bearer ${token}` } : {}, ...(body !== undefined ? { payload: body as object } : {}) });

const auditFile = () => path.join(dir, 'audit', 'audit.log');

describe('the audit log', () => {
  it('records every change asked of the API, whatever its outcome, and no read', async () => {
    const viewer = (await call('POST', '/v1/api-tokens', ADMIN, { role: 'viewer', name: 'wall' })).json();
    expect((await call('PUT', '/v1/services/web', ADMIN, { image: 'busybox:1', replicas: 2 })).statusCode).toBe(201);
    expect((await call('POST', '/v1/services/web/scale', viewer.token, { replicas: 3 })).statusCode).toBe(403);
    expect((await call('DELETE', '/v1/services/web?purgeVolumes=true', null)).statusCode).toBe(401);
    expect((await call('PUT', '/v1/services/Bad_Name', ADMIN, { image: 'a' })).statusCode).toBe(400);
    expect((await call('GET', '/v1/services', ADMIN)).statusCode).toBe(200);

    const read = await call('GET', '/v1/audit');
    expect(read.statusCode).toBe(200);
    const { records, more, lost } = read.json();
    expect(more).toBe(false);
    expect(lost).toEqual({ dropped: 0, failedWrites: 0 });
    const time = expect.stringMatching(/^\d{4}-\d\d-\d\dT/);
    expect(records).toEqual([
      { time, token: { id: 'admin', name: 'admin', role: 'admin' }, remoteAddress: '10.1.2.3', method: 'POST', route: '/v1/api-tokens', target: {}, status: 201 },
      { time, token: { id: 'admin', name: 'admin', role: 'admin' }, remoteAddress: '10.1.2.3', method: 'PUT', route: '/v1/services/:name', target: { name: 'web' }, status: 201 },
      { time, token: { id: viewer.id, name: 'wall', role: 'viewer' }, remoteAddress: '10.1.2.3', method: 'POST', route: '/v1/services/:name/scale', target: { name: 'web' }, status: 403 },
      { time, token: null, remoteAddress: '10.1.2.3', method: 'DELETE', route: '/v1/services/:name', target: { name: 'web' }, query: { purgeVolumes: 'true' }, status: 401 },
      { time, token: { id: 'admin', name: 'admin', role: 'admin' }, remoteAddress: '10.1.2.3', method: 'PUT', route: '/v1/services/:name', target: { name: 'Bad_Name' }, status: 400 },
    ]);
    // The made token's secret is in its answer only.
    expect(await readFile(auditFile(), 'utf8')).not.toContain(viewer.token.split('.')[1]);
    expect((await stat(auditFile())).mode & 0o777).toBe(0o600);
  });

  it('records a secret written, never its value (as text or base64), nor a registry password', async () => {
    expect((await call('PUT', '/v1/secrets/db-password', ADMIN, { value: SECRET })).statusCode).toBe(201);
    expect((await call('PUT', '/v1/secrets/db-password', ADMIN, { valueBase64: Buffer.from(`${SECRET}-2`).toString('base64') })).statusCode).toBe(200);
    const spec = { image: '127.0.0.1:5001/busybox:1', registryAuth: { username: 'tether', password: PASSWORD } };
    expect((await call('PUT', '/v1/services/private', ADMIN, spec)).statusCode).toBe(201);
    await call('GET', '/v1/audit');
    const log = await readFile(auditFile(), 'utf8');
    expect(log).toContain('"route":"/v1/secrets/:name","target":{"name":"db-password"}');
    for (const leak of [SECRET, Buffer.from(SECRET).toString('base64'), Buffer.from(`${SECRET}-2`).toString('base64'), PASSWORD]) expect(log).not.toContain(leak);
    expect(log.split('\n').filter(Boolean)).toHaveLength(3);
  });

  it('reads back the newest records, since a time, at most a limit', async () => {
    for (let n = 0; n < 5; n++) await call('PUT', `/v1/configs/c${n}`, ADMIN, { value: `v${n}` });
    const newest = (await call('GET', '/v1/audit?limit=2')).json();
    expect(newest.records.map((r: { target: { name: string } }) => r.target.name)).toEqual(['c3', 'c4']);
    expect(newest.more).toBe(true);
    const all = (await call('GET', '/v1/audit')).json().records;
    const since = (await call('GET', `/v1/audit?since=${encodeURIComponent(all[2].time)}`)).json();
    expect(since.records.map((r: { time: string }) => r.time)).toEqual(all.slice(2).map((r: { time: string }) => r.time).filter((t: string) => t >= all[2].time));
    expect(since.records.length).toBeGreaterThanOrEqual(3);
  });

  it.each([
    ['limit=0', 'limit'],
    ['limit=1001', 'limit'],
    ['limit=ten', 'limit'],
    ['since=yesterday', 'since'],
  ])('refuses ?%s with 400 naming %s', async (query, field) => {
    const res = await call('GET', `/v1/audit?${query}`);
    expect(res.statusCode).toBe(400);
    expect(res.json().error.details[0].path).toBe(field);
  });

  it('is for admins only', async () => {
    const operator = (await call('POST', '/v1/api-tokens', ADMIN, { role: 'operator', name: 'ci' })).json();
    expect((await call('GET', '/v1/audit', operator.token)).statusCode).toBe(403);
    expect((await call('GET', '/v1/audit', null)).statusCode).toBe(401);
  });

  it('never fails a request when it cannot write: the loss is counted', async () => {
    await app.close();
    await store.close();
    await rm(dir, { recursive: true, force: true });
    dir = await mkdtemp(path.join(os.tmpdir(), 'tether-audit-api-'));
    store = new LowdbStore({ dir: path.join(dir, 'store'), nodeShards: 2, serviceShards: 2 });
    await store.open();
    // A file where the audit dir goes: every append fails.
    const { writeFile } = await import('node:fs/promises');
    await writeFile(path.join(dir, 'audit'), 'in the way');
    ({ app } = await buildHub({ store, adminToken: ADMIN, dataDir: dir }));
    expect((await call('PUT', '/v1/configs/a', ADMIN, { value: '1' })).statusCode).toBe(201);
    expect((await call('PUT', '/v1/configs/b', ADMIN, { value: '2' })).statusCode).toBe(201);
    const read = await call('GET', '/v1/audit');
    expect(read.statusCode).toBe(200);
    expect(read.json()).toMatchObject({ records: [], lost: { dropped: 0, failedWrites: 2 } });
  });
});
