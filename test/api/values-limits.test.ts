import { randomBytes } from 'node:crypto';
import Fastify, { type FastifyInstance } from 'fastify';
import { afterEach, describe, expect, it } from 'vitest';
import { namedValueRoutes } from '../../hub/http/configs-and-secrets.js';
import { registerErrorHandling } from '../../hub/http/errors.js';
import { MasterKeyring } from '../../hub/secrets/master-keyring.js';
import { NamedValues, VALUE_LIMITS, usedByNone, type ValueKind } from '../../hub/secrets/named-values.js';
import { LowdbStore } from '../../hub/store/lowdb-store.js';
import { tempStores } from '../helpers/temp-stores.js';

/** The hub holds every value in memory: how many, and how many bytes in all, are bounded per kind. */
const stores = tempStores('tether-values-limits-');
let app: FastifyInstance | null = null;
afterEach(async () => {
  await app?.close();
  app = null;
});

async function routesWith<K extends ValueKind>(kind: K, limits: { maxCount: number; maxTotalBytes: number }): Promise<FastifyInstance> {
  const sealer = new MasterKeyring(randomBytes(32));
  const store = stores.keep(new LowdbStore({ dir: stores.dir, sealer }));
  await store.open();
  app = Fastify();
  registerErrorHandling(app);
  await app.register(namedValueRoutes<K>, { values: new NamedValues(kind, { store, sealer, usedBy: usedByNone, limits }) });
  return app;
}

describe.each(['config', 'secret'] as const)('%s limits', (kind) => {
  it('has defaults that hold a fleet\'s worth and bound the hub\'s memory', () => {
    expect(VALUE_LIMITS.maxCount).toBe(1000);
    expect(VALUE_LIMITS.maxTotalBytes).toBe(64 * 1024 * 1024);
  });

  it('refuses one more than the count allows with a 409, and takes a change of one that exists', async () => {
    const server = await routesWith(kind, { maxCount: 2, maxTotalBytes: 1024 });
    for (const name of ['a', 'b']) expect((await server.inject({ method: 'PUT', url: `/v1/${kind}s/${name}`, payload: { value: 'v' } })).statusCode).toBe(201);
    const third = await server.inject({ method: 'PUT', url: `/v1/${kind}s/c`, payload: { value: 'v' } });
    expect(third.statusCode).toBe(409);
    expect(third.json().error).toMatchObject({ code: `too_many_${kind}s` });
    expect(third.json().error.message).toMatch(/at most 2/);
    expect((await server.inject({ method: 'PUT', url: `/v1/${kind}s/a`, payload: { value: 'changed' } })).statusCode).toBe(200);
    expect((await server.inject({ method: 'GET', url: `/v1/${kind}s` })).json()[`${kind}s`]).toHaveLength(2);
  });

  it('refuses a value that would take the total past its bytes with a 409, counting a replaced value as the kept previous one', async () => {
    const server = await routesWith(kind, { maxCount: 10, maxTotalBytes: 100 });
    expect((await server.inject({ method: 'PUT', url: `/v1/${kind}s/a`, payload: { value: 'x'.repeat(60) } })).statusCode).toBe(201);
    const over = await server.inject({ method: 'PUT', url: `/v1/${kind}s/b`, payload: { value: 'x'.repeat(41) } });
    expect(over.statusCode).toBe(409);
    expect(over.json().error).toMatchObject({ code: `${kind}s_full` });
    expect(over.json().error.message).toMatch(/100 bytes/);
    // a's 60 bytes stay as its previous version (replicas an update has not reached may need them):
    // 60 + 41 does not fit, 60 + 40 does; the next change lets the 60 go.
    expect((await server.inject({ method: 'PUT', url: `/v1/${kind}s/a`, payload: { value: 'y'.repeat(41) } })).statusCode).toBe(409);
    expect((await server.inject({ method: 'PUT', url: `/v1/${kind}s/a`, payload: { value: 'y'.repeat(40) } })).statusCode).toBe(200);
    expect((await server.inject({ method: 'PUT', url: `/v1/${kind}s/a`, payload: { value: 'z'.repeat(60) } })).statusCode).toBe(200);
    expect((await server.inject({ method: 'GET', url: `/v1/${kind}s/b` })).statusCode).toBe(404);
  });
});
