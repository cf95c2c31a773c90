import { describe, it, expect, beforeEach, afterEach } from 'vitest';
import { mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { LowdbStore, type LowdbStoreOptions } from '../../hub/store/lowdb-store.js';
import { loadShard, ShardedCollection } from '../../hub/store/sharded-collection.js';
import type { RecordLayout } from '../../hub/store/record-layout.js';
import { nodeLayout, serviceLayout } from '../../hub/store/layouts.js';
import type { JoinTokenRecord, NodeRecord, ServiceRecord } from '../../hub/store/store.js';
import { validateServiceSpec, type NormalizedSpec } from '../../hub/spec/service-spec.js';

// ---------------------------------------------------------------------------------------------
// Fixtures and helpers

function spec(input: Record<string, unknown> = {}): NormalizedSpec {
  const v = validateServiceSpec({ image: 'nginx:1', ...input });
  if (!v.ok) throw new Error(JSON.stringify(v.errors));
  return v.value;
}

function node(id: string, extra: Partial<NodeRecord> = {}): NodeRecord {
  return {
    id,
    name: `name-${id}`,
    labels: { zone: 'eu-1' },
    credentialHash: `hash-${id}`,
    advertiseAddress: null,
    facts: null,
    generation: 0,
    targetHash: '',
    joinedAt: '2024-01-01T00:00:00.000Z',
    ...extra,
  };
}

function service(name: string, extra: Partial<ServiceRecord> = {}): ServiceRecord {
  return {
    name,
    spec: spec({ replicas: 2 }),
    revision: 1,
    createdAt: '2024-01-01T00:00:00.000Z',
    updatedAt: '2024-01-01T00:00:00.000Z',
    placements: [
      { replicaId: `${name}-0`, nodeId: 'n-1', pendingReason: null },
      { replicaId: `${name}-1`, nodeId: null, pendingReason: 'no node matches' },
    ],
    ...extra,
  };
}

function token(tokenHash: string): JoinTokenRecord {
  return { tokenHash, createdAt: '2024-01-01T00:00:00.000Z', expiresAt: '2024-01-02T00:00:00.000Z' };
}

let dir: string;
const opened: LowdbStore[] = [];

beforeEach(async () => {
  dir = await mkdtemp(path.join(os.tmpdir(), 'tether-store-test-'));
});

afterEach(async () => {
  // A store whose directory was broken on purpose may refuse to flush: that is not this hook's business.
  await Promise.allSettled(opened.splice(0).map((s) => s.close()));
  await rm(dir, { recursive: true, force: true });
});

async function openStore(opts: Partial<LowdbStoreOptions> = {}): Promise<LowdbStore> {
  const store = new LowdbStore({ dir, nodeShards: 4, serviceShards: 4, ...opts });
  await store.open();
  opened.push(store);
  return store;
}

/** The shard files of one collection, loaded from disk as a start loads them: file name -> its state. */
async function shards(subdir: string, name: string): Promise<Map<string, { stored: Record<string, unknown>; records: Record<string, unknown> }>> {
  const base = path.join(dir, subdir);
  const out = new Map<string, { stored: Record<string, unknown>; records: Record<string, unknown> }>();
  for (const file of (await readdir(base)).sort()) {
    if (!new RegExp(`^${name}-\\d+\\.json$`).test(file)) continue;
    // Nodes and services hold whole records in the file and parts in the log (record-layout.ts).
    const state = await loadShard<unknown>(path.join(base, file), { layout: layoutOf(name) ?? undefined });
    if (!state.ok) throw state.error;
    out.set(file, state);
  }
  return out;
}

/** The records of each shard file as stored (its change log laid over): file name -> records. */
async function shardFiles(subdir: string, name: string): Promise<Map<string, Record<string, unknown>>> {
  return new Map([...(await shards(subdir, name))].map(([file, state]) => [file, state.stored]));
}

const layoutOf = (name: string) => (name === 'nodes' ? nodeLayout : name === 'services' ? serviceLayout : null) as RecordLayout<unknown> | null;

/** Every record of a collection as found on disk, merged over its shard files. */
async function onDisk(subdir: string, name: string): Promise<Record<string, unknown>> {
  const merged: Record<string, unknown> = {};
  for (const state of (await shards(subdir, name)).values()) Object.assign(merged, state.records);
  return merged;
}

const nextTurn = () => new Promise<void>((resolve) => setImmediate(resolve));

function withTimeout<T>(p: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what} neither resolved nor rejected within ${ms} ms`)), ms);
  });
  return Promise.race([p, timeout]).finally(() => clearTimeout(timer));
}

// ---------------------------------------------------------------------------------------------

describe('LowdbStore: put / get / list / delete', () => {
  it('keeps nodes', async () => {
    const store = await openStore();
    expect(store.getNode('n-1')).toBeUndefined();
    expect([...store.listNodes()]).toEqual([]);

    await store.putNode(node('n-1'));
    await store.putNode(node('n-2', { labels: { zone: 'us-1' } }));
    expect(store.getNode('n-1')).toEqual(node('n-1'));
    expect([...store.listNodes()].map((n) => n.id).sort()).toEqual(['n-1', 'n-2']);

    await store.putNode(node('n-1', { generation: 5, targetHash: 'abc' }));
    expect(store.getNode('n-1')).toMatchObject({ generation: 5, targetHash: 'abc' });
    expect([...store.listNodes()]).toHaveLength(2);

    await store.deleteNode('n-1');
    expect(store.getNode('n-1')).toBeUndefined();
    expect([...store.listNodes()].map((n) => n.id)).toEqual(['n-2']);
  });

  it('keeps services', async () => {
    const store = await openStore();
    await store.putService(service('web'));
    await store.putService(service('db', { revision: 3 }));
    expect(store.getService('web')).toEqual(service('web'));
    expect(store.getService('db')?.revision).toBe(3);
    expect([...store.listServices()].map((s) => s.name).sort()).toEqual(['db', 'web']);

    await store.deleteService('web');
    expect(store.getService('web')).toBeUndefined();
    expect([...store.listServices()].map((s) => s.name)).toEqual(['db']);
  });

  it('keeps join tokens', async () => {
    const store = await openStore();
    await store.putJoinToken(token('t-1'));
    expect(store.getJoinToken('t-1')).toEqual(token('t-1'));
    expect(store.getJoinToken('t-2')).toBeUndefined();
    await store.deleteJoinToken('t-1');
    expect(store.getJoinToken('t-1')).toBeUndefined();
  });

  it('shows a change in memory at once, before its write resolves', async () => {
    const store = await openStore();
    const p = store.putNode(node('n-1'));
    expect(store.getNode('n-1')).toEqual(node('n-1'));
    await p;
  });

  it('resolves the deletion of a record it does not hold', async () => {
    const store = await openStore();
    await expect(store.deleteNode('nope')).resolves.toBeUndefined();
    await expect(store.deleteService('nope')).resolves.toBeUndefined();
    await expect(store.deleteJoinToken('nope')).resolves.toBeUndefined();
  });

  it('keeps the collections apart', async () => {
    const store = await openStore();
    await Promise.all([store.putNode(node('same')), store.putService(service('same')), store.putJoinToken(token('same'))]);
    await store.deleteNode('same');
    expect(store.getService('same')).toEqual(service('same'));
    expect(store.getJoinToken('same')).toEqual(token('same'));
  });
});

describe('LowdbStore: durability', () => {
  it('has a service on disk once putService resolves', async () => {
    const store = await openStore();
    await store.putService(service('web'));
    expect((await onDisk('services', 'services'))['web']).toEqual(service('web'));
  });

  it('has a node and a join token on disk once their puts resolve', async () => {
    const store = await openStore();
    await store.putNode(node('n-1'));
    await store.putJoinToken(token('t-1'));
    expect((await onDisk('nodes', 'nodes'))['n-1']).toEqual(node('n-1'));
    expect((await onDisk('.', 'join-tokens'))['t-1']).toEqual(token('t-1'));
  });

  it('a new store opened on the same directory sees every record written', async () => {
    const store = await openStore();
    await Promise.all([
      store.putNode(node('n-1')),
      store.putNode(node('n-2')),
      store.putService(service('web')),
      store.putJoinToken(token('t-1')),
    ]);
    const reopened = await openStore();
    expect(reopened.getNode('n-1')).toEqual(node('n-1'));
    expect(reopened.getNode('n-2')).toEqual(node('n-2'));
    expect(reopened.getService('web')).toEqual(service('web'));
    expect(reopened.getJoinToken('t-1')).toEqual(token('t-1'));
    expect([...reopened.listNodes()]).toHaveLength(2);
  });

  it('a deleted record is gone from disk and after reopening', async () => {
    const store = await openStore();
    await store.putService(service('web'));
    await store.putService(service('db'));
    await store.putJoinToken(token('t-1'));
    await store.deleteService('web');
    await store.deleteJoinToken('t-1');
    expect(Object.keys(await onDisk('services', 'services'))).toEqual(['db']);

    const reopened = await openStore();
    expect(reopened.getService('web')).toBeUndefined();
    expect(reopened.getService('db')).toEqual(service('db'));
    expect(reopened.getJoinToken('t-1')).toBeUndefined();
  });

  it('close() writes pending changes that nobody awaited', async () => {
    const store = await openStore();
    void store.putNode(node('n-1'));
    void store.putService(service('web'));
    void store.putJoinToken(token('t-1'));
    await store.close();
    expect((await onDisk('nodes', 'nodes'))['n-1']).toEqual(node('n-1'));
    expect((await onDisk('services', 'services'))['web']).toEqual(service('web'));
    expect((await onDisk('.', 'join-tokens'))['t-1']).toEqual(token('t-1'));
  });

  it('close() waits for a write already in flight and one queued behind it', async () => {
    const store = await openStore({ nodeShards: 1 });
    void store.putNode(node('n-1', { generation: 1 }));
    await nextTurn(); // the first write has started
    void store.putNode(node('n-1', { generation: 2 }));
    await store.close();
    expect((await onDisk('nodes', 'nodes'))['n-1']).toMatchObject({ generation: 2 });
  });

  it('writes valid, compact JSON', async () => {
    const store = await openStore();
    await Promise.all([store.putService(service('web')), store.putNode(node('n-1')), store.putJoinToken(token('t-1'))]);
    const files = [
      ...[...(await shardFiles('services', 'services')).keys()].map((f) => path.join(dir, 'services', f)),
      ...[...(await shardFiles('nodes', 'nodes')).keys()].map((f) => path.join(dir, 'nodes', f)),
      path.join(dir, 'join-tokens-00.json'),
    ];
    expect(files.length).toBeGreaterThanOrEqual(3);
    for (const file of files) {
      const text = await readFile(file, 'utf8');
      expect(() => JSON.parse(text)).not.toThrow();
      expect(text).toBe(JSON.stringify(JSON.parse(text)));
      expect(text).not.toMatch(/\n/);
    }
  });

  it('counts writes and bytes written', async () => {
    const store = await openStore();
    expect(store.stats()).toEqual({ writes: 0, bytesWritten: 0 });
    await store.putService(service('web'));
    const [file] = [...(await shardFiles('services', 'services')).entries()].filter(([, r]) => 'web' in r).map(([f]) => f);
    // The whole file, its format header and checksum included.
    expect(store.stats()).toEqual({ writes: 1, bytesWritten: (await readFile(path.join(dir, 'services', file!))).length });
  });
});

describe('LowdbStore: coalescing and sharding', () => {
  it('writes 1,000 node puts made in one tick with at most one write per shard', async () => {
    const store = await openStore({ nodeShards: 4 });
    const puts: Promise<void>[] = [];
    for (let i = 0; i < 1000; i++) puts.push(store.putNode(node(`n-${i}`)));
    await Promise.all(puts);
    expect(store.stats().writes).toBeGreaterThanOrEqual(1);
    expect(store.stats().writes).toBeLessThanOrEqual(4);

    expect(Object.keys(await onDisk('nodes', 'nodes'))).toHaveLength(1000);
    const reopened = await openStore({ nodeShards: 4 });
    expect([...reopened.listNodes()]).toHaveLength(1000);
    expect(reopened.getNode('n-999')).toEqual(node('n-999'));
  });

  it('gathers lazy puts spread over time into one write per shard, and resolves them once written', async () => {
    const store = await openStore({ nodeShards: 4 });
    const puts: Promise<void>[] = [];
    // Spread over many turns of the event loop, where eager puts would each cost a write.
    for (let i = 0; i < 200; i++) {
      puts.push(store.putNode(node(`n-${i}`), { lazy: true }));
      if (i % 10 === 0) await nextTurn();
    }
    expect(store.getNode('n-199')).toEqual(node('n-199'));
    expect(store.stats().writes).toBe(0);
    await Promise.all(puts);
    expect(store.stats().writes).toBeLessThanOrEqual(4);
    expect(Object.keys(await onDisk('nodes', 'nodes'))).toHaveLength(200);
  });

  it('writes a lazy put with an eager one to the same shard, and close() writes lazy ones', async () => {
    const store = await openStore({ nodeShards: 1 });
    let lazyDone = false;
    const lazy = store.putNode(node('n-lazy'), { lazy: true }).then(() => (lazyDone = true));
    await store.putNode(node('n-eager'));
    await lazy;
    expect(lazyDone).toBe(true);
    expect(store.stats().writes).toBe(1);

    void store.putNode(node('n-late'), { lazy: true });
    await store.close();
    expect((await onDisk('nodes', 'nodes'))['n-late']).toEqual(node('n-late'));
  });

  it('spreads records over several shard files, each record in exactly one and no file holding everything', async () => {
    const store = await openStore({ serviceShards: 8 });
    const names = Array.from({ length: 64 }, (_, i) => `svc-${i}`);
    await Promise.all(names.map((n) => store.putService(service(n))));

    const files = await shardFiles('services', 'services');
    expect(files.size).toBe(8);
    const counts = [...files.values()].map((records) => Object.keys(records).length);
    expect(counts.filter((c) => c > 0).length).toBeGreaterThan(1);
    expect(Math.max(...counts)).toBeLessThan(names.length);

    for (const n of names) {
      const holders = [...files.values()].filter((records) => n in records);
      expect(holders, n).toHaveLength(1);
    }
  });

  it('puts a record in the same shard every time, across stores', async () => {
    const store = await openStore({ serviceShards: 8 });
    await store.putService(service('web'));
    const holderOf = async () => [...(await shardFiles('services', 'services')).entries()].filter(([, r]) => 'web' in r).map(([f]) => f);
    const first = await holderOf();
    expect(first).toHaveLength(1);

    const reopened = await openStore({ serviceShards: 8 });
    await reopened.putService(service('web', { revision: 2 }));
    expect(await holderOf()).toEqual(first);
    expect((await onDisk('services', 'services'))['web']).toMatchObject({ revision: 2 });
  });

  it('keeps the second of two puts made in the same tick', async () => {
    const store = await openStore();
    const p1 = store.putService(service('web', { revision: 1 }));
    const p2 = store.putService(service('web', { revision: 2 }));
    await Promise.all([p1, p2]);
    const reopened = await openStore();
    expect(reopened.getService('web')?.revision).toBe(2);
  });

  it('does not lose a put made while a write of the same shard is in flight', async () => {
    const store = await openStore({ serviceShards: 1 });
    const p1 = store.putService(service('web', { revision: 1 }));
    await nextTurn(); // the coalesced write of revision 1 has started
    expect(store.stats().writes).toBe(1);
    const p2 = store.putService(service('web', { revision: 2 }));
    const p3 = store.putService(service('db'));
    await Promise.all([p1, p2, p3]);
    expect(store.stats().writes).toBe(2);

    expect((await onDisk('services', 'services'))['web']).toMatchObject({ revision: 2 });
    const reopened = await openStore({ serviceShards: 1 });
    expect(reopened.getService('web')?.revision).toBe(2);
    expect(reopened.getService('db')).toEqual(service('db'));
  });

  it('resolves a put made during an in-flight write only once that put is on disk', async () => {
    const store = await openStore({ serviceShards: 1 });
    void store.putService(service('web', { revision: 1 }));
    await nextTurn();
    await store.putService(service('web', { revision: 2 }));
    expect((await onDisk('services', 'services'))['web']).toMatchObject({ revision: 2 });
  });
});

describe('LowdbStore / ShardedCollection: write errors', () => {
  it('rejects a write whose shard directory was replaced by a regular file, instead of hanging', async () => {
    const store = await openStore();
    await store.putService(service('before'));
    // Root ignores permission bits, so break the directory another way: a file where it was.
    await rm(path.join(dir, 'services'), { recursive: true, force: true });
    await writeFile(path.join(dir, 'services'), 'not a directory');

    await expect(withTimeout(store.putService(service('web')), 5000, 'putService')).rejects.toThrow(/ENOTDIR|ENOENT|not a directory/i);
    // The other collections still work.
    await store.putNode(node('n-1'));
    expect((await onDisk('nodes', 'nodes'))['n-1']).toEqual(node('n-1'));
  });

  it('rejects every put coalesced into the failed write', async () => {
    const store = await openStore({ serviceShards: 1 });
    await store.putService(service('before'));
    await rm(path.join(dir, 'services'), { recursive: true, force: true });
    await writeFile(path.join(dir, 'services'), 'not a directory');
    const results = await withTimeout(
      Promise.allSettled([store.putService(service('a')), store.putService(service('b')), store.deleteService('before')]),
      5000,
      'coalesced puts',
    );
    expect(results.map((r) => r.status)).toEqual(['rejected', 'rejected', 'rejected']);
  });

  it('refuses to open a collection whose directory is a regular file', async () => {
    const file = path.join(dir, 'occupied');
    await writeFile(file, 'x');
    const collection = new ShardedCollection<{ v: number }>(file, 'things', 2);
    await expect(withTimeout(collection.open(), 5000, 'open')).rejects.toThrow();
  });
});

describe('ShardedCollection', () => {
  it('keeps records across instances, with get / size / values', async () => {
    const a = new ShardedCollection<{ v: number }>(path.join(dir, 'things'), 'things', 3);
    await a.open();
    await Promise.all([a.put('x', { v: 1 }), a.put('y', { v: 2 }), a.put('z', { v: 3 })]);
    await a.delete('y');
    expect(a.size).toBe(2);

    const b = new ShardedCollection<{ v: number }>(path.join(dir, 'things'), 'things', 3);
    await b.open();
    expect(b.size).toBe(2);
    expect(b.get('x')).toEqual({ v: 1 });
    expect(b.get('y')).toBeUndefined();
    expect([...b.values()].map((r) => r.v).sort()).toEqual([1, 3]);
    expect((await readdir(path.join(dir, 'things'))).filter((f) => f.endsWith('.json')).sort()).toEqual(
      expect.arrayContaining([expect.stringMatching(/^things-0\d\.json$/)]),
    );
  });

  it('flush() resolves once every change is on disk, and at once when nothing is pending', async () => {
    const c = new ShardedCollection<{ v: number }>(path.join(dir, 'things'), 'things', 2);
    await c.open();
    await c.flush();
    expect(c.writes).toBe(0);
    void c.put('k', { v: 1 });
    await c.flush();
    const files = (await readdir(path.join(dir, 'things'))).filter((f) => /^things-\d+\.json$/.test(f));
    const all = Object.assign({}, ...(await Promise.all(files.map(async (f) => JSON.parse(await readFile(path.join(dir, 'things', f), 'utf8')).data))));
    expect(all).toEqual({ k: { v: 1 } });
  });
});
