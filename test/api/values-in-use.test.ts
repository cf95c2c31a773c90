import { randomBytes } from 'node:crypto';
import Fastify, { type FastifyInstance } from 'fastify';
import { afterEach, describe, expect, it } from 'vitest';
import { namedValueRoutes } from '../../hub/http/configs-and-secrets.js';
import { registerErrorHandling } from '../../hub/http/errors.js';
import { MasterKeyring } from '../../hub/secrets/master-keyring.js';
import { NamedValues, type UsedByLookup, type ValueKind } from '../../hub/secrets/named-values.js';
import { LowdbStore } from '../../hub/store/lowdb-store.js';
import { tempStores } from '../helpers/temp-stores.js';

/**
 * No spec field names a config or secret yet, so no service can use one through the hub: the
 * routes are tested here with a lookup that says which services do, as those fields will.
 */
const stores = tempStores('tether-values-in-use-');
let app: FastifyInstance | null = null;
afterEach(async () => {
  await app?.close();
  app = null;
});

async function routesWith<K extends ValueKind>(kind: K, usedBy: UsedByLookup): Promise<FastifyInstance> {
  const sealer = new MasterKeyring(randomBytes(32));
  const store = stores.keep(new LowdbStore({ dir: stores.dir, sealer }));
  await store.open();
  app = Fastify();
  registerErrorHandling(app);
  await app.register(namedValueRoutes<K>, { values: new NamedValues(kind, { store, sealer, usedBy }) });
  return app;
}

describe.each(['config', 'secret'] as const)('a %s that services use', (kind) => {
  it('is refused a delete with a 409 naming the services, and is kept', async () => {
    const server = await routesWith(kind, (k, name) => (k === kind && name === 'db' ? ['api', 'web'] : []));
    expect((await server.inject({ method: 'PUT', url: `/v1/${kind}s/db`, payload: { value: 'v' } })).statusCode).toBe(201);
    const view = (await server.inject({ method: 'GET', url: `/v1/${kind}s/db` })).json();
    expect(view.usedBy).toEqual(['api', 'web']);
    const del = await server.inject({ method: 'DELETE', url: `/v1/${kind}s/db` });
    expect(del.statusCode).toBe(409);
    expect(del.json().error).toMatchObject({ code: `${kind}_in_use` });
    expect(del.json().error.message).toMatch(/"api", "web"/);
    expect((await server.inject({ method: 'GET', url: `/v1/${kind}s/db` })).statusCode).toBe(200);
  });

  it('is deleted once no service uses it', async () => {
    const server = await routesWith(kind, () => []);
    await server.inject({ method: 'PUT', url: `/v1/${kind}s/db`, payload: { value: 'v' } });
    expect((await server.inject({ method: 'DELETE', url: `/v1/${kind}s/db` })).statusCode).toBe(200);
    expect((await server.inject({ method: 'GET', url: `/v1/${kind}s/db` })).statusCode).toBe(404);
  });
});

it('replaces a stored secret that no longer opens (damaged) instead of failing every PUT', async () => {
  const sealer = new MasterKeyring(randomBytes(32));
  const store = stores.keep(new LowdbStore({ dir: stores.dir, sealer }));
  await store.open();
  const values = new NamedValues('secret', { store, sealer, usedBy: () => [] });
  app = Fastify();
  registerErrorHandling(app);
  await app.register(namedValueRoutes<'secret'>, { values });
  expect((await app.inject({ method: 'PUT', url: '/v1/secrets/db', payload: { value: 'old' } })).statusCode).toBe(201);
  // Damage the stored ciphertext (same size as the new value, so only opening it can tell).
  const stored = store.getSecret('db')!;
  const ciphertext = Buffer.from(stored.sealed.ciphertext, 'base64');
  ciphertext[0]! ^= 0xff;
  await store.putSecret({ ...stored, sealed: { ...stored.sealed, ciphertext: ciphertext.toString('base64') } });
  const put = await app.inject({ method: 'PUT', url: '/v1/secrets/db', payload: { value: 'new' } });
  expect(put.statusCode).toBe(200);
  expect(put.json()).toMatchObject({ version: 2 });
});
