import { randomBytes } from 'node:crypto';
import type { FastifyInstance } from 'fastify';
import { afterEach, describe, expect, it } from 'vitest';
import { buildHub } from '../../hub/app.js';
import type { Hub } from '../../hub/hub.js';
import { MasterKeyring } from '../../hub/secrets/master-keyring.js';
import { NamedValues } from '../../hub/secrets/named-values.js';
import { LowdbStore } from '../../hub/store/lowdb-store.js';
import { tempStores } from '../helpers/temp-stores.js';

const TOKEN = 'tat_service_values_test_token';
const stores = tempStores('tether-service-values-');
let app: FastifyInstance | null = null;
let hub: Hub;
afterEach(async () => {
  await app?.close();
  app = null;
});

async function start(keyring = new MasterKeyring(randomBytes(32))): Promise<void> {
  const store = new LowdbStore({ dir: stores.dir, sealer: keyring });
  await store.open();
  ({ app, hub } = await buildHub({ store, adminToken: TOKEN, sealer: keyring }));
}

const call = (method: string, url: string, body?: unknown) =>
  app!.inject({ method: method as 'GET', url, headers: { authorization: `Bearer ${TOKEN}` }, ...(body !== undefined ? { payload: body as object } : {}) });

async function until<T>(read: () => Promise<T>, ok: (value: T) => boolean, timeoutMs = 5000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await read();
    if (ok(value) || Date.now() > deadline) return value;
    await new Promise((r) => setTimeout(r, 20));
  }
}

const apiSpec = {
  image: 'app:1',
  secrets: [{ name: 'db' }],
  configs: [{ name: 'site', target: '/etc/site.conf' }],
  env: { DB_PASSWORD: { fromSecret: 'db' }, GREETING: 'hi' },
  // One at a time, so the roll is visible as an update.
  update: { parallelism: 1 },
};

describe('services that use configs and secrets', () => {
  it('refuses a spec naming one that does not exist (400 naming the field) and stores nothing', async () => {
    await start();
    const res = await call('PUT', '/v1/services/api', apiSpec);
    expect(res.statusCode).toBe(400);
    const paths = res.json().error.details.map((d: { path: string }) => d.path);
    expect(paths).toEqual(['secrets[0].name', 'configs[0].name', 'env.DB_PASSWORD']);
    expect((await call('GET', '/v1/services/api')).statusCode).toBe(404);
  });

  it('pins the versions, names its users, refuses their delete, and rolls the service when a value changes', async () => {
    await start();
    await call('PUT', '/v1/secrets/db', { value: 'first-password' });
    await call('PUT', '/v1/configs/site', { value: 'hello' });
    const created = await call('PUT', '/v1/services/api', apiSpec);
    expect(created.statusCode).toBe(201);
    expect(created.json().spec.files).toEqual([
      { source: 'secret', name: 'db', version: 1, target: '/run/secrets/db', mode: 0o444, uid: 0, gid: 0 },
      { source: 'config', name: 'site', version: 1, target: '/etc/site.conf', mode: 0o444, uid: 0, gid: 0 },
    ]);
    expect(created.json().spec.envFrom).toEqual({ DB_PASSWORD: { source: 'secret', name: 'db', version: 1 } });
    expect((await call('GET', '/v1/secrets/db')).json().usedBy).toEqual(['api']);
    expect((await call('GET', '/v1/configs')).json().configs[0].usedBy).toEqual(['api']);

    const refused = await call('DELETE', '/v1/secrets/db');
    expect(refused.statusCode).toBe(409);
    expect(refused.json().error.message).toMatch(/"api"/);

    expect((await call('PUT', '/v1/secrets/db', { value: 'second-password' })).json().version).toBe(2);
    const rolled = await until(
      async () => (await call('GET', '/v1/services/api')).json(),
      (view) => view.revision === 2,
    );
    expect(rolled.revision).toBe(2);
    expect(rolled.spec.files[0].version).toBe(2);
    expect(rolled.spec.envFrom.DB_PASSWORD.version).toBe(2);
    // The config did not change: its reference stays.
    expect(rolled.spec.files[1].version).toBe(1);

    // A rollback restores the spec, not an earlier value: the service runs the current secret.
    const back = await call('POST', '/v1/services/api/rollback');
    expect(back.statusCode).toBe(200);
    expect(back.json()).toMatchObject({ outcome: 'unchanged' });

    // No response ever carries the value.
    for (const url of ['/v1/services/api', '/v1/services/api/revisions', '/v1/secrets/db', '/v1/secrets']) {
      expect((await call('GET', url)).body).not.toMatch(/password/);
    }

    // Once the service no longer names it, the secret may go.
    const withoutSecret = { image: 'app:1', configs: apiSpec.configs };
    expect((await call('PUT', '/v1/services/api', withoutSecret)).statusCode).toBe(200);
    expect((await call('GET', '/v1/secrets/db')).json().usedBy).toEqual([]);
    expect((await call('DELETE', '/v1/secrets/db')).statusCode).toBe(200);
  });

  it('rolls, at start, a service left on an older version by a hub stopped between the two writes', async () => {
    const keyring = new MasterKeyring(randomBytes(32));
    await start(keyring);
    await call('PUT', '/v1/secrets/db', { value: 'first-password' });
    await call('PUT', '/v1/configs/site', { value: 'hello' });
    await call('PUT', '/v1/services/api', apiSpec);
    // The value's write lands and the hub stops before it rolls the service: written here by a
    // writer that tells no one.
    await new NamedValues('secret', { store: hub.store, sealer: keyring, usedBy: () => [] }).put('db', Buffer.from('second-password'));
    expect(hub.store.getService('api')!.spec.files![0]!.version).toBe(1);
    await app!.close();
    app = null;
    await start(keyring);
    const view = await until(
      async () => (await call('GET', '/v1/services/api')).json(),
      (v) => v.spec.files[0].version === 2,
    );
    expect(view.spec.files[0].version).toBe(2);
    expect(view.revision).toBe(2);
  });

  it('bounds what one service names in all (4 MiB): a spec past it is a 400, a value growing past it a 409', async () => {
    await start();
    const full = 'x'.repeat(512 * 1024);
    for (let i = 0; i < 7; i++) expect((await call('PUT', `/v1/secrets/s${i}`, { value: full })).statusCode).toBe(201);
    await call('PUT', '/v1/secrets/small', { value: 'tiny' });
    await call('PUT', '/v1/configs/one', { value: 'x' });
    const secrets = [...Array.from({ length: 7 }, (_, i) => ({ name: `s${i}` })), { name: 'small' }];
    const fits = await call('PUT', '/v1/services/big', { image: 'app:1', secrets, env: { ONE: { fromConfig: 'one' } } });
    expect(fits.statusCode).toBe(201);
    // Growing "small" to 512 KiB takes "big" past 4 MiB (with the config's byte): refused, kept as it was.
    const grown = await call('PUT', '/v1/secrets/small', { value: full });
    expect(grown.statusCode).toBe(409);
    expect(grown.json().error).toMatchObject({ code: 'secret_too_large_for_service', message: expect.stringMatching(/service "big"/) });
    expect((await call('GET', '/v1/secrets/small')).json()).toMatchObject({ version: 1, size: 4 });
    // A spec naming all of it at once is refused, naming the field that crossed the line.
    await call('PUT', '/v1/secrets/s7', { value: full });
    const over = await call('PUT', '/v1/services/bigger', { image: 'app:1', secrets: [...secrets, { name: 's7' }] });
    expect(over.statusCode).toBe(400);
    expect(over.json().error.details).toEqual([{ path: 'secrets[8].name', message: expect.stringMatching(/at most 4194304/) }]);
  });
});
