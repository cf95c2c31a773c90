import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import type { FastifyInstance } from 'fastify';
import { afterEach, beforeEach } from 'vitest';
import { buildHub, type BuildHubOptions } from '../../hub/app.js';
import type { Hub } from '../../hub/hub.js';
import { LowdbStore } from '../../hub/store/lowdb-store.js';

/**
 * A hub built in process for each API test (buildHub, never listening) on a store in a fresh
 * temp dir, and requests to it with the admin `token`. Registers its own beforeEach/afterEach.
 */
export function apiHubPerTest(prefix: string, token: string) {
  let dir = '';
  let app: FastifyInstance | null = null;
  let hub: Hub | null = null;
  const start = async (): Promise<void> => {
    const store = new LowdbStore({ dir });
    await store.open();
    ({ app, hub } = await buildHub({ store, adminToken: token }));
  };
  beforeEach(async () => {
    dir = await mkdtemp(path.join(os.tmpdir(), prefix));
    await start();
  });
  afterEach(async () => {
    await app?.close();
    app = null;
    await rm(dir, { recursive: true, force: true });
  });
  return {
    get hub(): Hub {
      return hub!;
    },
    get app(): FastifyInstance {
      return app!;
    },
    /** Closes the hub and builds it again on the same store. */
    async restart(): Promise<void> {
      await app?.close();
      await start();
    },
    call(method: string, url: string, body?: unknown) {
      return app!.inject({ method: method as 'GET', url, headers: { authorization: `Bearer ${token}` }, ...(body !== undefined ? { payload: body as object } : {}) });
    },
  };
}

/**
 * A hub built in process on a store in a fresh temp dir and listening on a loopback port of its
 * own, for tests that speak raw HTTP or WebSocket to it. `close` stops it and removes the dir.
 */
export async function listeningHub(prefix: string, opts: Omit<BuildHubOptions, 'store'>) {
  const dir = await mkdtemp(path.join(os.tmpdir(), prefix));
  const store = new LowdbStore({ dir });
  await store.open();
  const { app, hub } = await buildHub({ store, ...opts });
  await app.listen({ host: '127.0.0.1', port: 0 });
  const bound = app.server.address();
  if (typeof bound !== 'object' || !bound) throw new Error('not listening');
  return {
    app,
    hub,
    address: { host: '127.0.0.1', port: bound.port },
    async close(): Promise<void> {
      await app.close();
      await rm(dir, { recursive: true, force: true });
    },
  };
}
