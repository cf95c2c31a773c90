import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import type { FastifyInstance } from 'fastify';
import { buildHub } from '../../hub/app.js';
import { LowdbStore } from '../../hub/store/lowdb-store.js';

const TOKEN = 'tat_service_revisions_test_token';

let dir: string;
let app: FastifyInstance | null = null;

async function startHub(): Promise<void> {
  const store = new LowdbStore({ dir });
  await store.open();
  ({ app } = await buildHub({ store, adminToken: TOKEN }));
}

const call = (method: string, url: string, body?: object) =>
  app!.inject({ method: method as 'GET', url, headers: { authorization: `Bearer ${TOKEN}` }, ...(body ? { payload: body } : {}) });

beforeEach(async () => {
  dir = await mkdtemp(path.join(os.tmpdir(), 'tether-revisions-'));
});
afterEach(async () => {
  await app?.close();
  app = null;
  await rm(dir, { recursive: true, force: true });
});

describe('service revisions', () => {
  it('keep growing when a service is deleted and created again, across restarts', async () => {
    await startHub();
    expect((await call('PUT', '/v1/services/web', { image: 'nginx:1' })).json()).toMatchObject({ revision: 1 });
    expect((await call('PUT', '/v1/services/web', { image: 'nginx:2' })).json()).toMatchObject({ revision: 2 });
    expect((await call('DELETE', '/v1/services/web')).statusCode).toBe(200);
    const again = await call('PUT', '/v1/services/web', { image: 'nginx:1' });
    expect(again.statusCode).toBe(201);
    expect(again.json()).toMatchObject({ outcome: 'created', revision: 3 });

    expect((await call('DELETE', '/v1/services/web')).statusCode).toBe(200);
    await app!.close();
    app = null;
    await startHub();
    expect((await call('PUT', '/v1/services/web', { image: 'nginx:1' })).json()).toMatchObject({ outcome: 'created', revision: 4 });
    // Other names start at 1 as ever.
    expect((await call('PUT', '/v1/services/api', { image: 'nginx:1' })).json()).toMatchObject({ revision: 1 });
  });

  it('count concurrent changes of one name in order', async () => {
    await startHub();
    const puts = await Promise.all(['nginx:1', 'nginx:2', 'nginx:3'].map((image) => call('PUT', '/v1/services/web', { image })));
    expect(puts.map((r) => r.json().revision).sort()).toEqual([1, 2, 3]);
    const [deleted, recreated] = await Promise.all([call('DELETE', '/v1/services/web'), call('PUT', '/v1/services/web', { image: 'nginx:9' })]);
    expect(deleted.statusCode).toBe(200);
    // Whichever of the two went first, the PUT's revision follows the three before.
    expect(recreated.json()).toMatchObject({ revision: 4 });
  });
});
