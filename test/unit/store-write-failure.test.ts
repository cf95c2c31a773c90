import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { LowdbStore } from '../../hub/store/lowdb-store.js';
import type { NodeRecord, ServiceRecord } from '../../hub/store/store.js';
import { StoreWriteError } from '../../hub/store/store-write-error.js';
import { validateServiceSpec } from '../../shared/spec.js';

/** A store whose file writes fail with `failWith` while it is set, as a full or broken disk would. */
function failingStore(dir: string) {
  const control = { failWith: null as string | null };
  const store = new LowdbStore({
    dir,
    nodeShards: 2,
    serviceShards: 2,
    beforeWrite: () => {
      if (control.failWith) throw Object.assign(new Error(`${control.failWith}: simulated`), { code: control.failWith });
    },
  });
  return { store, control };
}

function service(name: string, revision: number, image = 'nginx:1'): ServiceRecord {
  const v = validateServiceSpec({ image });
  if (!v.ok) throw new Error('bad spec');
  return { name, spec: v.value, revision, createdAt: 'c', updatedAt: 'u', placements: [] };
}

function node(id: string, extra: Partial<NodeRecord> = {}): NodeRecord {
  return { id, name: id, labels: {}, credentialHash: 'h', advertiseAddress: null, facts: null, generation: 1, targetHash: 'a', joinedAt: 'j', ...extra };
}

let dir: string;
beforeEach(async () => {
  dir = await mkdtemp(path.join(os.tmpdir(), 'tether-store-fail-'));
});
afterEach(async () => {
  await rm(dir, { recursive: true, force: true });
});

async function reopened(): Promise<LowdbStore> {
  const again = new LowdbStore({ dir, nodeShards: 2, serviceShards: 2 });
  await again.open();
  return again;
}

describe('store: a write that fails', () => {
  it('rejects a put with a StoreWriteError naming the errno and file, and memory keeps what the disk has', async () => {
    const { store, control } = failingStore(dir);
    await store.open();
    await store.putService(service('web', 1));
    control.failWith = 'ENOSPC';
    const error = await store.putService(service('web', 2, 'nginx:2')).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(StoreWriteError);
    expect((error as StoreWriteError).code).toBe('ENOSPC');
    expect((error as StoreWriteError).file).toMatch(/services-0\d\.json$/);
    expect(store.getService('web')?.revision).toBe(1);
    const created = await store.putService(service('api', 1)).catch((e: unknown) => e);
    expect(created).toBeInstanceOf(StoreWriteError);
    expect(store.getService('api')).toBeUndefined();
    expect([...store.listServices()].map((s) => s.name)).toEqual(['web']);

    control.failWith = null;
    await store.close();
    const again = await reopened();
    expect(again.getService('web')?.revision).toBe(1);
    expect(again.getService('api')).toBeUndefined();
  });

  it('keeps a record whose delete failed, in memory and after a restart', async () => {
    const { store, control } = failingStore(dir);
    await store.open();
    await store.putService(service('web', 1));
    control.failWith = 'EIO';
    await expect(store.deleteService('web')).rejects.toBeInstanceOf(StoreWriteError);
    expect(store.getService('web')?.revision).toBe(1);
    control.failWith = null;
    await store.close();
    expect((await reopened()).getService('web')?.revision).toBe(1);
  });

  it('restores the value before two changes to one record that shared the failed write', async () => {
    const { store, control } = failingStore(dir);
    await store.open();
    await store.putNode(node('n1', { generation: 1 }));
    control.failWith = 'ENOSPC';
    const a = store.putNode(node('n1', { generation: 2 })).catch((e: unknown) => e);
    const b = store.putNode(node('n1', { generation: 3 })).catch((e: unknown) => e);
    expect(await a).toBeInstanceOf(StoreWriteError);
    expect(await b).toBeInstanceOf(StoreWriteError);
    expect(store.getNode('n1')?.generation).toBe(1);
  });

  it('keeps lazy changes in memory and writes them once the disk works again', async () => {
    const { store, control } = failingStore(dir);
    await store.open();
    await store.putNode(node('n1'));
    control.failWith = 'ENOSPC';
    await expect(store.putNode(node('n1', { labels: { seen: 'yes' } }), { lazy: true })).rejects.toBeInstanceOf(StoreWriteError);
    expect(store.getNode('n1')?.labels).toEqual({ seen: 'yes' });
    control.failWith = null;
    await store.close();
    expect((await reopened()).getNode('n1')?.labels).toEqual({ seen: 'yes' });
  });

  it('reports the store failing while the last write failed, and ok again after one lands', async () => {
    const { store, control } = failingStore(dir);
    await store.open();
    expect(store.health()).toMatchObject({ ok: true, error: null, writeFailures: 0 });
    control.failWith = 'ENOSPC';
    await store.putService(service('web', 1)).catch(() => undefined);
    await store.putService(service('api', 1)).catch(() => undefined);
    const failing = store.health();
    expect(failing.ok).toBe(false);
    expect(failing.error).toMatch(/ENOSPC/);
    expect(failing.since).not.toBeNull();
    expect(failing.writeFailures).toBeGreaterThanOrEqual(2);
    control.failWith = null;
    await store.putService(service('web', 1));
    expect(store.health()).toMatchObject({ ok: true, error: null });
  });

  it('refuses to open where it cannot write', async () => {
    const { store, control } = failingStore(dir);
    control.failWith = 'ENOSPC';
    const error = await store.open().catch((e: unknown) => e);
    expect(error).toBeInstanceOf(StoreWriteError);
    expect((error as StoreWriteError).code).toBe('ENOSPC');
  });
});
