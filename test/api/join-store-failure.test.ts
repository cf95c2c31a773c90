/**
 * A join whose store write fails half-way (the node's file or the token's): the device is told
 * 507, and neither a use of the token nor a node without a device is left behind.
 */
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import type { FastifyInstance } from 'fastify';
import { buildHub } from '../../hub/app.js';
import { LowdbStore } from '../../hub/store/lowdb-store.js';

const TOKEN = 'tat_join_store_failure_test_token';

let dir: string;
let app: FastifyInstance | null = null;
/** Writes of files whose path matches this fail with ENOSPC. */
const control = { failing: null as RegExp | null };

const call = (method: string, url: string, body?: object, token: string | null = TOKEN) =>
  app!.inject({ method: method as 'GET', url, headers: token ? { authorization: `Bearer ${token}` } : {}, ...(body ? { payload: body } : {}) });

beforeEach(async () => {
  dir = await mkdtemp(path.join(os.tmpdir(), 'tether-join-store-'));
  control.failing = null;
  const store = new LowdbStore({
    dir,
    beforeWrite: (file) => {
      if (control.failing?.test(file)) throw Object.assign(new Error('ENOSPC: simulated'), { code: 'ENOSPC' });
    },
  });
  await store.open();
  ({ app } = await buildHub({ store, adminToken: TOKEN }));
});
afterEach(async () => {
  await app?.close();
  app = null;
  await rm(dir, { recursive: true, force: true });
});

describe('a join the store cannot complete', () => {
  it.each([
    ['the node', /[/\\]nodes[/\\]/],
    ['the token', /join-tokens/],
  ])('when the write of %s fails: 507, no node, and the token keeps its use', async (_what, failing) => {
    const issued = (await call('POST', '/v1/join-tokens', { uses: 1 })).json() as { id: string; token: string };
    control.failing = failing;
    const res = await call('POST', '/v1/join', { joinToken: issued.token, name: 'dev-1' }, null);
    expect(res.statusCode).toBe(507);
    control.failing = null;
    expect((await call('GET', '/v1/nodes')).json().nodes).toEqual([]);
    expect((await call('GET', '/v1/join-tokens')).json().joinTokens).toEqual([expect.objectContaining({ id: issued.id, used: 0, usesLeft: 1 })]);
    // And the device joins once the disk works again.
    expect((await call('POST', '/v1/join', { joinToken: issued.token, name: 'dev-1' }, null)).statusCode).toBe(201);
  });
});
