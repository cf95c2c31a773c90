import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { LowdbStore } from '../../hub/store/lowdb-store.js';
import type { NodeRecord, ServiceRecord } from '../../hub/store/store.js';
import { StoreWriteError } from '../../hub/store/store-write-error.js';
import { ShardedCollection } from '../../hub/store/sharded-collection.js';
import { validateServiceSpec } from '../../hub/spec/service-spec.js';

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

  it('refuses to open where it cannot write, told so by a hook that answers later', async () => {
    const store = new LowdbStore({
      dir,
      nodeShards: 2,
      serviceShards: 2,
      beforeWrite: async () => {
        await new Promise((r) => setTimeout(r, 5));
        throw Object.assign(new Error('EIO: simulated'), { code: 'EIO' });
      },
    });
    const error = await store.open().catch((e: unknown) => e);
    expect(error).toBeInstanceOf(StoreWriteError);
    expect((error as StoreWriteError).code).toBe('EIO');
  });
});

/**
 * A one-shard collection whose writes wait at a gate the test opens, then fail or not: other
 * writers act while a write is in flight, as the scheduling pass and lazy node updates do. After
 * passAll(), held writes and later ones go through.
 */
async function gatedCollection() {
  const gates: Array<{ release: (failWith: string | null) => void }> = [];
  let holding = true;
  const collection = new ShardedCollection<NodeRecord>(dir, 'nodes', 1, {
    beforeWrite: () =>
      holding
        ? new Promise<void>((resolve, reject) => {
            gates.push({
              release: (failWith) => (failWith ? reject(Object.assign(new Error(`${failWith}: simulated`), { code: failWith })) : resolve()),
            });
          })
        : undefined,
  });
  await collection.open();
  /** Waits until the next write reaches its gate, and returns that gate. */
  const nextGate = async () => {
    await vi.waitFor(() => expect(gates.length).toBeGreaterThan(0));
    return gates.shift()!;
  };
  const passAll = () => {
    holding = false;
    for (const gate of gates.splice(0)) gate.release(null);
  };
  const reopen = async () => {
    await collection.flush();
    const again = new ShardedCollection<NodeRecord>(dir, 'nodes', 1);
    await again.open();
    return again;
  };
  return { collection, nextGate, passAll, reopen };
}

describe('store: a write that fails while other writers build on the unsaved value', () => {
  it('refuses a later put built on the refused value, so the refused change never persists', async () => {
    const { collection, nextGate, passAll, reopen } = await gatedCollection();
    const first = collection.put('n1', node('n1', { generation: 1 }));
    (await nextGate()).release(null);
    await first;

    const bump = collection.put('n1', node('n1', { generation: 2 })).catch((e: unknown) => e);
    const inFlight = await nextGate();
    // A writer reads the unsaved value and builds on it while the write is in flight.
    const built = collection.put('n1', { ...collection.get('n1')!, targetHash: 'b' }).catch((e: unknown) => e);
    inFlight.release('ENOSPC');
    expect(await bump).toBeInstanceOf(StoreWriteError);
    // The second put carried generation 2, which the disk refused: it is refused too.
    expect(await built).toBeInstanceOf(StoreWriteError);
    expect(collection.get('n1')).toMatchObject({ generation: 1, targetHash: 'a' });

    // Whatever write comes next (here one for another record of the shard) lands the disk's value.
    passAll();
    await collection.put('n2', node('n2'));
    expect((await reopen()).get('n1')).toMatchObject({ generation: 1, targetHash: 'a' });
  });

  it('restores the saved value, not an unsaved one, when a later write of the record fails', async () => {
    const { collection, nextGate, passAll, reopen } = await gatedCollection();
    const first = collection.put('n1', node('n1', { generation: 1 }));
    (await nextGate()).release(null);
    await first;

    const a = collection.put('n1', node('n1', { generation: 2 })).catch((e: unknown) => e);
    const writeA = await nextGate();
    const b = collection.put('n1', node('n1', { generation: 3 })).catch((e: unknown) => e);
    writeA.release('ENOSPC');
    expect(await a).toBeInstanceOf(StoreWriteError);
    expect(await b).toBeInstanceOf(StoreWriteError);
    // Neither 2 (refused) nor 3 (queued behind it, built on it) is what the disk holds.
    expect(collection.get('n1')?.generation).toBe(1);
    passAll();
    expect((await reopen()).get('n1')?.generation).toBe(1);
  });

  it('keeps a lazy change made during the failed write, on the saved value, and writes it later', async () => {
    const { collection, nextGate, passAll, reopen } = await gatedCollection();
    const first = collection.put('n1', node('n1', { generation: 1 }));
    (await nextGate()).release(null);
    await first;

    const bump = collection.put('n1', { ...collection.get('n1')!, generation: 2 }).catch((e: unknown) => e);
    const inFlight = await nextGate();
    // Facts arrive meanwhile: a lazy put built from memory, which holds the unsaved generation.
    const facts = collection.put('n1', { ...collection.get('n1')!, advertiseAddress: '10.0.0.9' }, true);
    inFlight.release('ENOSPC');
    expect(await bump).toBeInstanceOf(StoreWriteError);
    // The lazy change stays; the refused one goes.
    expect(collection.get('n1')).toMatchObject({ generation: 1, advertiseAddress: '10.0.0.9' });
    // The lazy change is retried until a write lands.
    passAll();
    await facts;
    expect((await reopen()).get('n1')).toMatchObject({ generation: 1, advertiseAddress: '10.0.0.9' });
  });

  it('keeps a record on disk in memory after a failed delete and a failed put of it', async () => {
    const { collection, nextGate, passAll, reopen } = await gatedCollection();
    const first = collection.put('n1', node('n1', { generation: 1 }));
    (await nextGate()).release(null);
    await first;

    const removal = collection.delete('n1').catch((e: unknown) => e);
    const writeDelete = await nextGate();
    const recreate = collection.put('n1', node('n1', { generation: 5 })).catch((e: unknown) => e);
    writeDelete.release('EIO');
    expect(await removal).toBeInstanceOf(StoreWriteError);
    expect(await recreate).toBeInstanceOf(StoreWriteError);
    expect(collection.get('n1')?.generation).toBe(1);
    passAll();
    expect((await reopen()).get('n1')?.generation).toBe(1);
  });

  it('keeps a put made during a write that succeeds, and refuses only what a failed write carried', async () => {
    const { collection, nextGate, passAll, reopen } = await gatedCollection();
    const a = collection.put('n1', node('n1', { generation: 1 }));
    const writeA = await nextGate();
    const b = collection.put('n1', node('n1', { generation: 2 })).catch((e: unknown) => e);
    writeA.release(null);
    await a;
    (await nextGate()).release('ENOSPC');
    expect(await b).toBeInstanceOf(StoreWriteError);
    // The disk holds generation 1, written by the first write: that is what memory goes back to.
    expect(collection.get('n1')?.generation).toBe(1);
    passAll();
    expect((await reopen()).get('n1')?.generation).toBe(1);
  });
});

describe('store: retries while writes fail', () => {
  it('retries a failing shard with lazy changes by one chain that backs off, not one per failed write', async () => {
    let failing = false;
    let attempts = 0;
    const collection = new ShardedCollection<NodeRecord>(dir, 'nodes', 1, {
      beforeWrite: () => {
        if (!failing) return;
        attempts++;
        throw Object.assign(new Error('ENOSPC: simulated'), { code: 'ENOSPC' });
      },
    });
    await collection.open();
    await collection.put('a', node('a'));
    failing = true;
    // A lazy change is retried until it lands; every refused durable write fails the shard again.
    const lazy = collection.put('a', node('a', { generation: 2 }), true);
    lazy.catch(() => undefined);
    for (let i = 0; i < 20; i++) {
      await collection.put(`b${i}`, node(`b${i}`)).catch(() => undefined);
      await new Promise((r) => setTimeout(r, 100));
    }
    const before = attempts;
    await new Promise((r) => setTimeout(r, 3000));
    // One chain, backing off from a second: at most a few attempts in 3 s (20 chains made ~60).
    expect(attempts - before).toBeLessThanOrEqual(3);

    failing = false;
    await collection.flush();
    const again = new ShardedCollection<NodeRecord>(dir, 'nodes', 1);
    await again.open();
    expect(again.get('a')?.generation).toBe(2);
  }, 20_000);
});

it('writes a lazy put made while a retry write is in flight once that write lands', async () => {
  let mode: 'ok' | 'fail' | 'hold' = 'ok';
  let release: (() => void) | null = null;
  const collection = new ShardedCollection<NodeRecord>(dir, 'nodes', 1, {
    beforeWrite: () => {
      if (mode === 'fail') throw Object.assign(new Error('ENOSPC: simulated'), { code: 'ENOSPC' });
      if (mode === 'hold') return new Promise<void>((resolve) => (release = resolve));
    },
  });
  await collection.open();
  await collection.put('a', node('a'));
  mode = 'fail';
  // Lazy: its write fails, and one retry is armed.
  collection.put('a', node('a', { generation: 2 }), true).catch(() => undefined);
  await new Promise((r) => setTimeout(r, 1300));
  mode = 'hold';
  await vi.waitFor(() => expect(release).not.toBeNull(), { timeout: 5_000, interval: 50 });
  mode = 'ok';
  // A lazy put while the retry's write is in flight; its own flush comes and goes meanwhile.
  const later = collection.put('b', node('b'), true);
  await new Promise((r) => setTimeout(r, 1500));
  release!();
  await later;
  const again = new ShardedCollection<NodeRecord>(dir, 'nodes', 1);
  await again.open();
  expect(again.get('a')?.generation).toBe(2);
  expect(again.get('b')).toBeDefined();
}, 20_000);
