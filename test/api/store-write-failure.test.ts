import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import type { FastifyInstance } from 'fastify';
import { buildHub } from '../../hub/app.js';
import { LowdbStore } from '../../hub/store/lowdb-store.js';

const TOKEN = 'tat_store_failure_test_token';

let dir: string;
let app: FastifyInstance | null = null;
const control = { failWith: null as string | null };

async function startHub(): Promise<FastifyInstance> {
  const store = new LowdbStore({
    dir,
    beforeWrite: () => {
      if (control.failWith) throw Object.assign(new Error(`${control.failWith}: simulated`), { code: control.failWith });
    },
  });
  await store.open();
  ({ app } = await buildHub({ store, adminToken: TOKEN }));
  return app;
}

const call = (method: string, url: string, body?: object) =>
  app!.inject({ method: method as 'GET', url, headers: { authorization: `Bearer ${TOKEN}` }, ...(body ? { payload: body } : {}) });

beforeEach(async () => {
  dir = await mkdtemp(path.join(os.tmpdir(), 'tether-api-store-'));
  control.failWith = null;
});
afterEach(async () => {
  control.failWith = null;
  await app?.close();
  app = null;
  await rm(dir, { recursive: true, force: true });
});

describe('API writes the store cannot make', () => {
  it('says failing on /healthz while writes fail, and ok again once space is back, with no write in between', async () => {
    await startHub();
    control.failWith = 'ENOSPC';
    expect((await call('PUT', '/v1/services/web', { image: 'nginx:1' })).statusCode).toBe(507);
    expect((await call('GET', '/healthz')).statusCode).toBe(503);
    control.failWith = null;
    // No client writes again: the hub finds out by itself when asked.
    await vi.waitFor(async () => expect((await call('GET', '/healthz')).statusCode).toBe(200), { timeout: 10_000, interval: 100 });
  });

  it('answers 507, keeps nothing of the change, and a restart finds the same', async () => {
    await startHub();
    expect((await call('PUT', '/v1/services/web', { image: 'nginx:1' })).statusCode).toBe(201);

    control.failWith = 'ENOSPC';
    const put = await call('PUT', '/v1/services/web', { image: 'nginx:2' });
    expect(put.statusCode).toBe(507);
    expect(put.json().error.code).toBe('insufficient_storage');
    expect(put.json().error.message).toMatch(/data directory is full/);
    // The same PUT again is a change still, not `unchanged`.
    expect((await call('PUT', '/v1/services/web', { image: 'nginx:2' })).statusCode).toBe(507);
    expect((await call('GET', '/v1/services/web')).json()).toMatchObject({ revision: 1, spec: { image: 'nginx:1' } });
    // A retried DELETE finds the service: it was never deleted.
    expect((await call('DELETE', '/v1/services/web')).statusCode).toBe(507);
    expect((await call('DELETE', '/v1/services/web')).statusCode).toBe(507);
    expect((await call('GET', '/v1/services/web')).statusCode).toBe(200);
    const created = await call('PUT', '/v1/services/api', { image: 'nginx:1' });
    expect(created.statusCode).toBe(507);
    expect((await call('GET', '/v1/services/api')).statusCode).toBe(404);

    control.failWith = null;
    await app!.close();
    app = null;
    await startHub();
    expect((await call('GET', '/v1/services/web')).json()).toMatchObject({ revision: 1, spec: { image: 'nginx:1' } });
    expect((await call('GET', '/v1/services/api')).statusCode).toBe(404);
    // Once the disk works, the same PUT is accepted as the change it is.
    const retried = await call('PUT', '/v1/services/web', { image: 'nginx:2' });
    expect(retried.statusCode).toBe(200);
    expect(retried.json()).toMatchObject({ outcome: 'updated', revision: 2 });
  });

  it('refuses a join token it cannot store', async () => {
    await startHub();
    control.failWith = 'ENOSPC';
    const res = await call('POST', '/v1/join-tokens', {});
    expect(res.statusCode).toBe(507);
    expect(res.json().error.code).toBe('insufficient_storage');
    expect(res.json().token).toBeUndefined();
  });

  it('answers 503 with Retry-After and the cause for other write errors', async () => {
    await startHub();
    control.failWith = 'EROFS';
    const res = await call('PUT', '/v1/services/web', { image: 'nginx:1' });
    expect(res.statusCode).toBe(503);
    expect(Number(res.headers['retry-after'])).toBeGreaterThan(0);
    expect(res.json().error).toMatchObject({ code: 'store_unavailable' });
    expect(res.json().error.message).toMatch(/EROFS/);
  });

  it('reports the store failing on /healthz and counts failed writes in /metrics, until a write lands', async () => {
    await startHub();
    const healthy = await app!.inject({ method: 'GET', url: '/healthz' });
    expect(healthy.statusCode).toBe(200);
    expect(healthy.json()).toMatchObject({ status: 'ok', store: { ok: true } });

    control.failWith = 'ENOSPC';
    await call('PUT', '/v1/services/web', { image: 'nginx:1' });
    const failing = await app!.inject({ method: 'GET', url: '/healthz' });
    expect(failing.statusCode).toBe(503);
    expect(failing.json()).toMatchObject({ status: 'failing', store: { ok: false } });
    expect(failing.json().store.error).toMatch(/ENOSPC/);
    expect(typeof failing.json().store.since).toBe('string');
    const metrics = (await call('GET', '/metrics')).body;
    const failures = Number(/^tether_store_write_failures_total (\d+)$/m.exec(metrics)?.[1]);
    expect(failures).toBeGreaterThanOrEqual(1);

    control.failWith = null;
    expect((await call('PUT', '/v1/services/web', { image: 'nginx:1' })).statusCode).toBe(201);
    const recovered = await app!.inject({ method: 'GET', url: '/healthz' });
    expect(recovered.statusCode).toBe(200);
    expect(recovered.json()).toMatchObject({ status: 'ok', store: { ok: true, error: null } });
  });
});
