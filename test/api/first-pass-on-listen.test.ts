import { afterEach, describe, expect, it } from 'vitest';
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import type { FastifyInstance } from 'fastify';
import { buildHub } from '../../hub/app.js';
import { LowdbStore } from '../../hub/store/lowdb-store.js';

const TOKEN = 'tat_first_pass_on_listen_token';
const cleanups: Array<() => Promise<void>> = [];

afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

async function hubOnStore(firstPassOnListen: boolean): Promise<{ app: FastifyInstance; passes: () => number }> {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'tether-first-pass-'));
  cleanups.push(() => rm(dir, { recursive: true, force: true }));
  const store = new LowdbStore({ dir });
  await store.open();
  const { app, hub } = await buildHub({ store, adminToken: TOKEN, firstPassOnListen });
  cleanups.push(() => app.close());
  return { app, passes: () => hub.loop.passes };
}

const settle = () => new Promise((r) => setTimeout(r, 300));

describe('the first reconcile pass of a hub started by its program', () => {
  it('waits until the server listens, then runs', async () => {
    const { app, passes } = await hubOnStore(true);
    await settle();
    // Before the listen, nothing of the loop ran: /healthz and the agents' handshakes come first.
    expect(passes()).toBe(0);
    await app.listen({ port: 0, host: '127.0.0.1' });
    await expect.poll(passes, { timeout: 5_000 }).toBeGreaterThan(0);
  });

  it('runs at once for a hub that is only injected into (tests)', async () => {
    const { passes } = await hubOnStore(false);
    await expect.poll(passes, { timeout: 5_000 }).toBeGreaterThan(0);
  });
});
