import { beforeEach, describe, expect, it, vi } from 'vitest';
import { tempStores } from '../helpers/temp-stores.js';
import { mkdir, readdir, readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { LowdbStore } from '../../hub/store/lowdb-store.js';
import { readChangeLog } from '../../hub/store/change-log.js';
import { serviceLayout } from '../../hub/store/layouts.js';
import { placeItems, sharedParts, type StoredParts } from '../../hub/store/record-layout.js';
import type { NodeRecord, ServiceRecord } from '../../hub/store/store.js';
import type { Placement } from '../../hub/scheduler/types.js';
import { validateServiceSpec } from '../../hub/spec/service-spec.js';

const stores = tempStores('tether-record-parts-');
const control = { failServices: false };

beforeEach(async () => {
  control.failServices = false;
});

async function openStore(): Promise<LowdbStore> {
  const store = new LowdbStore({
    dir: stores.dir,
    nodeShards: 2,
    serviceShards: 2,
    beforeWrite: (file) => {
      if (control.failServices && path.basename(file).startsWith('services-')) throw Object.assign(new Error('simulated'), { code: 'ENOSPC' });
    },
  });
  await store.open();
  stores.keep(store);
  return store;
}

async function reopen(store: LowdbStore): Promise<LowdbStore> {
  await store.close();
  stores.letGo(store);
  return openStore();
}

const placement = (i: number, nodeId: string | null = `node-${i % 50}`): Placement => ({ replicaId: `web.r${i}`, nodeId, pendingReason: nodeId === null ? 'no node fits' : null });

function service(placements: Placement[], revision = 1): ServiceRecord {
  const v = validateServiceSpec({ image: 'nginx:1', replicas: placements.length });
  if (!v.ok) throw new Error('bad spec');
  return { name: 'web', spec: v.value, revision, createdAt: 'c', updatedAt: 'u', placements };
}

function node(id: string, generation = 1, targetHash = 'h1'): NodeRecord {
  return {
    id,
    name: id,
    labels: { zone: 'a' },
    credentialHash: 'c'.repeat(64),
    advertiseAddress: null,
    facts: { os: 'linux', arch: 'amd64', cpus: 4, memoryBytes: 8e9, engineVersion: '27.0', labels: { big: 'x'.repeat(2000) } } as unknown as NodeRecord['facts'],
    generation,
    targetHash,
    joinedAt: 'j',
  };
}

/** Every record as stored (shard files with their logs laid over), keyed as on disk. */
async function storedKeys(subdir: string): Promise<string[]> {
  const base = path.join(stores.dir, subdir);
  const keys = new Set<string>();
  for (const file of (await readdir(base)).sort()) {
    if (!/^(services|nodes)-\d+\.json$/.test(file)) continue;
    // The checked format holds the records in `data`; a file of the old format 0 is the record map.
    const parsed = JSON.parse(await readFile(path.join(base, file), 'utf8')) as { format?: number; data: Record<string, unknown> };
    const records = parsed.format === 1 ? parsed.data : (parsed as unknown as Record<string, unknown>);
    const log = await readChangeLog<unknown>(path.join(base, file.replace(/\.json$/, '.log')), null);
    if (!log.ok) throw new Error(log.reason);
    for (const entry of log.entries) {
      for (const [k, v] of Object.entries(entry)) {
        if (v === null) delete records[k];
        else records[k] = v;
      }
    }
    for (const k of Object.keys(records)) keys.add(k);
  }
  return [...keys].sort();
}

/** The shard of a key among two, as the store places it (FNV-1a). */
function shardOf(key: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < key.length; i++) {
    h ^= key.charCodeAt(i);
    h = Math.imul(h, 0x01000193);
  }
  return (h >>> 0) % 2;
}

const many = (count: number) => Array.from({ length: count }, (_, i) => placement(i));

describe('Store: placements and node targets as records of their own', () => {
  it('writes a change of one placement of a 10,000-replica service in proportion to it', async () => {
    const store = await openStore();
    const placements = many(10_000);
    await store.putService(service(placements));
    const moved = placements.map((p, i) => (i === 4321 ? { ...p, nodeId: 'node-elsewhere' } : p));
    const before = store.stats().bytesWritten;
    await store.putService(service(moved));
    expect(store.stats().bytesWritten - before).toBeLessThan(2048);
    expect(store.getService('web')!.placements[4321]!.nodeId).toBe('node-elsewhere');
    const again = await reopen(store);
    expect(again.getService('web')).toEqual(service(moved));
  });

  it('writes a record that gains more items than its log could hold whole at once, without making a part of each', async () => {
    const store = await openStore();
    await store.putService(service([]));
    const itemIds = vi.spyOn(serviceLayout, 'itemId');
    try {
      // The first placement of a large service: 10,000 part records could never fit the log of
      // a shard that small, so none is made.
      await store.putService(service(many(10_000)));
      expect(itemIds).not.toHaveBeenCalled();
    } finally {
      itemIds.mockRestore();
    }
    expect(await readdir(stores.dir + '/services').then((files) => files.filter((f) => f.endsWith('.log')))).toEqual([]);
    const again = await reopen(store);
    expect(again.getService('web')).toEqual(service(many(10_000)));
    // And a small change after it still goes to the log, in proportion to it.
    const before = again.stats().bytesWritten;
    await again.putService(service(many(10_000).map((p, i) => (i === 7 ? { ...p, nodeId: 'node-elsewhere' } : p))));
    expect(again.stats().bytesWritten - before).toBeLessThan(2048);
  });

  it('forgets the parts of a record deleted in a write that goes whole, so the name can be created again', async () => {
    // One service shard, so that the delete and the big write are one write.
    const open = async () => {
      const opened = stores.keep(new LowdbStore({ dir: stores.dir, serviceShards: 1 }));
      await opened.open();
      return opened;
    };
    const store = await open();
    const named = (name: string, count: number): ServiceRecord => ({ ...service(many(count).map((p) => ({ ...p, replicaId: `${name}.${p.replicaId}` }))), name });
    await store.putService(named('big', 5));
    await store.putService(named('web', 20));
    // A change of one placement: web's placements are parts of a log line now.
    const moved = named('web', 20);
    moved.placements[3] = { ...moved.placements[3]!, nodeId: 'node-elsewhere' };
    await store.putService(moved);
    // One write deletes web and gives big more placements than the log could take: written whole.
    await Promise.all([store.deleteService('web'), store.putService(named('big', 10_000))]);
    // web again, with the same replica ids, is a write like any other.
    await store.putService(named('web', 20));
    expect(store.getService('web')).toEqual(named('web', 20));
    await store.close();
    stores.letGo(store);
    const again = await open();
    expect(again.getService('web')).toEqual(named('web', 20));
    expect(again.getService('big')!.placements).toHaveLength(10_000);
  });

  it('after a restart, writes a change of one placement of a service the log never touched in proportion to it', async () => {
    const store = await openStore();
    const placements = many(10_000);
    await store.putService(service(placements));
    // Reopened, the service comes whole from its shard file: its placements sit at their places.
    const again = await reopen(store);
    const moved = placements.map((p, i) => (i === 777 ? { ...p, nodeId: 'node-elsewhere' } : p));
    const before = again.stats().bytesWritten;
    await again.putService(service(moved));
    expect(again.stats().bytesWritten - before).toBeLessThan(2048);
    const third = await reopen(again);
    expect(third.getService('web')).toEqual(service(moved));
  });

  it('appends a failover moving a third of a large service, rather than rewriting its shard', async () => {
    const store = await openStore();
    const placements = many(20_000);
    await store.putService(service(placements));
    const wholeBytes = store.stats().bytesWritten;
    const moved = placements.map((p, i) => (i % 3 === 0 ? { ...p, nodeId: 'node-elsewhere' } : p));
    const before = store.stats().bytesWritten;
    await store.putService(service(moved));
    // The line carries the moved third; a rewrite would be the whole shard again.
    expect(store.stats().bytesWritten - before).toBeLessThan(wholeBytes * 0.75);
    const again = await reopen(store);
    expect(again.getService('web')).toEqual(service(moved));
  });

  it('appends a failover as the scheduler writes it: a replacement where each lost one was, the lost ones at the end', async () => {
    const store = await openStore();
    const placements = many(20_000);
    await store.putService(service(placements));
    const wholeBytes = store.stats().bytesWritten;
    // keep.ts puts each replacement where its lost replica was and the lost ones (handing over)
    // after the rest: every tenth moves, and only those and their replacements are written.
    const lost = placements.filter((_, i) => i % 10 === 0);
    const replacing = placements.map((p, i) => (i % 10 === 0 ? { replicaId: `web.n${i}`, nodeId: 'node-elsewhere', pendingReason: null, movedFrom: p.nodeId } : p));
    const failover = [...replacing, ...lost.map((p, i) => ({ ...p, replacedBy: `web.n${i * 10}` }))];
    const before = store.stats().bytesWritten;
    await store.putService(service(failover));
    const lineBytes = store.stats().bytesWritten - before;
    // 4,000 parts of about 150 bytes each (a part carries its key and order key): under half the
    // whole service; renumbering everything after the first replacement wrote 1.2 times it.
    expect(lineBytes).toBeLessThan(wholeBytes * 0.6);
    // The hand-over ends: the lost ones go, and only their removals are written.
    const handedOver = replacing.map((p) => ({ ...p }));
    const beforeHandover = store.stats().bytesWritten;
    await store.putService(service(handedOver));
    expect(store.stats().bytesWritten - beforeHandover).toBeLessThan(wholeBytes * 0.15);
    const again = await reopen(store);
    expect(again.getService('web')).toEqual(service(handedOver));
  });

  it('writes an item moved to the front, or a run inserted anywhere, without renumbering the rest', async () => {
    let store = await openStore();
    const placements = many(10_000);
    await store.putService(service(placements));
    const wholeBytes = store.stats().bytesWritten;
    // One moved to the front: one part.
    const moved = [placements[5000]!, ...placements.filter((_, i) => i !== 5000)];
    let before = store.stats().bytesWritten;
    await store.putService(service(moved, 2));
    expect(store.stats().bytesWritten - before).toBeLessThan(1024);
    // Fifty nested insertions at one place, each between the last one and its neighbour: the order
    // keys between two neighbours run out only after many halvings, and each write stays small.
    let current = moved;
    for (let k = 0; k < 50; k++) {
      const at = 1 + k;
      current = [...current.slice(0, at), placement(20_000 + k, 'node-new'), ...current.slice(at)];
      before = store.stats().bytesWritten;
      await store.putService(service(current, 3 + k));
      expect(store.stats().bytesWritten - before).toBeLessThan(wholeBytes * 0.5);
    }
    store = await reopen(store);
    expect(store.getService('web')).toEqual(service(current, 52));
  });

  it('writes a node target change in about a hundred bytes, not the node with its facts', async () => {
    const store = await openStore();
    await store.putNode(node('n-1'));
    const before = store.stats().bytesWritten;
    await store.putNode(node('n-1', 2, 'h2'));
    expect(store.stats().bytesWritten - before).toBeLessThan(300);
    const again = await reopen(store);
    expect(again.getNode('n-1')).toEqual(node('n-1', 2, 'h2'));
  });

  it('holds one part list for all nodes, across writes and a restart: an object per node would cost each some 150 bytes', async () => {
    let store = await openStore();
    for (let i = 0; i < 20; i++) await store.putNode(node(`n-${i}`));
    // A target published to each: parts in the log (a shard written whole holds its records whole).
    for (let i = 0; i < 20; i++) await store.putNode(node(`n-${i}`, 2, 'h2'));
    // The collection's own record of where each record's parts sit (private: what this test is about).
    const heldParts = (s: LowdbStore) => [...(s as unknown as { nodes: { parts: Map<string, StoredParts> } }).nodes.parts.values()];
    expect(heldParts(store).length).toBeGreaterThan(10);
    expect(new Set(heldParts(store)).size).toBe(1);
    store = await reopen(store);
    expect(heldParts(store).length).toBeGreaterThan(10);
    expect(new Set(heldParts(store)).size).toBe(1);
    for (let i = 0; i < 20; i++) expect(store.getNode(`n-${i}`)).toMatchObject({ generation: 2, targetHash: 'h2' });
  });

  it('keeps the placements order through close and open, removals, appends and moves included', async () => {
    let store = await openStore();
    await store.putService(service(many(300)));
    // Some removed in the middle, new ones appended: the scheduler's usual change.
    const kept = many(300).filter((_, i) => i % 7 !== 3);
    const next = [...kept, placement(1000), placement(1001, null)];
    await store.putService(service(next, 2));
    store = await reopen(store);
    expect(store.getService('web')!.placements).toEqual(next);
    // An order the store did not give out (one moved to the front) comes back as it was put.
    const moved = [next[200]!, ...next.filter((_, i) => i !== 200)];
    await store.putService(service(moved, 3));
    store = await reopen(store);
    expect(store.getService('web')).toEqual(service(moved, 3));
    // Written whole (a fresh shard file) and read again: the same order.
    await store.putService(service([...moved].reverse(), 4));
    store = await reopen(store);
    expect(store.getService('web')).toEqual(service([...moved].reverse(), 4));
  });

  it('keeps placements of one id (a hand-edited store) through writes that keep them and a restart', async () => {
    let store = await openStore();
    const twin = { ...placement(1), nodeId: 'node-twin' };
    const first = [...many(5), twin];
    await store.putService(service(first));
    // The same objects kept, one of the twins moved to the front, a new one appended.
    const second = [twin, ...first.slice(0, 5), placement(9)];
    await store.putService(service(second, 2));
    store = await reopen(store);
    expect(store.getService('web')).toEqual(service(second, 2));
  });

  it('undoes every placement of a refused write of a service: none is half applied', async () => {
    let store = await openStore();
    const placements = many(2000);
    await store.putService(service(placements));
    control.failServices = true;
    const changed = placements.map((p, i) => (i % 10 === 0 ? { ...p, nodeId: 'node-new' } : p)).slice(0, 1900);
    await expect(store.putService(service([...changed, placement(5000)], 2))).rejects.toThrow();
    expect(store.getService('web')).toEqual(service(placements));
    control.failServices = false;
    store = await reopen(store);
    expect(store.getService('web')).toEqual(service(placements));
    // A later write of one change writes that change alone, against what the disk holds.
    const one = placements.map((p, i) => (i === 7 ? { ...p, nodeId: 'node-7b' } : p));
    await store.putService(service(one, 2));
    store = await reopen(store);
    expect(store.getService('web')).toEqual(service(one, 2));
  });

  it('leaves no placement record behind when a service is deleted', async () => {
    let store = await openStore();
    await store.putService(service(many(500)));
    await store.putService(service(many(400), 2));
    await store.deleteService('web');
    expect((await storedKeys('services')).filter((k) => k.startsWith('web'))).toEqual([]);
    store = await reopen(store);
    expect(store.getService('web')).toBeUndefined();
    expect([...store.listServices()]).toEqual([]);
  });

  it('refuses a node id that would read back as a part of another record, and keeps nothing of it', async () => {
    const store = await openStore();
    await expect(store.putNode(node('n-1/target'))).rejects.toThrow(/must not hold/);
    expect(store.getNode('n-1/target')).toBeUndefined();
  });

  it('loads a data dir of the old layout as it is, and keeps what later writes change', async () => {
    const old = service(many(40));
    const oldNode = node('n-1', 7, 'h7');
    await mkdir(path.join(stores.dir, 'services'), { recursive: true });
    await mkdir(path.join(stores.dir, 'nodes'), { recursive: true });
    // Format 0 (the plain record map of earlier versions), each record whole, in every shard file.
    for (const i of [0, 1]) {
      await writeFile(path.join(stores.dir, 'services', `services-0${i}.json`), JSON.stringify(i === shardOf('web') ? { web: old } : {}));
      await writeFile(path.join(stores.dir, 'nodes', `nodes-0${i}.json`), JSON.stringify(i === shardOf('n-1') ? { 'n-1': oldNode } : {}));
    }
    let store = await openStore();
    expect(store.getService('web')).toEqual(old);
    expect(store.getNode('n-1')).toEqual(oldNode);
    const next = [...many(39), placement(77)];
    await store.putService(service(next, 2));
    await store.putNode(node('n-1', 8, 'h8'));
    // The shard file keeps each record whole, as the old layout did; a log line only what changed.
    expect((await storedKeys('services')).filter((k) => k !== 'web' && k !== 'web/web.r77')).toEqual([]);
    expect((await storedKeys('nodes')).filter((k) => k !== 'n-1' && k !== 'n-1/target')).toEqual([]);
    store = await reopen(store);
    expect(store.getService('web')).toEqual(service(next, 2));
    expect(store.getNode('n-1')).toEqual(node('n-1', 8, 'h8'));
  });
});

describe('sharedParts', () => {
  it('gives one frozen object for every one-item list of the same id and key, and leaves others as they are', () => {
    const a = sharedParts({ ids: ['target'], seqs: [0] });
    expect(sharedParts({ ids: ['target'], seqs: [0] })).toBe(a);
    expect(Object.isFrozen(a) && Object.isFrozen(a.ids) && Object.isFrozen(a.seqs)).toBe(true);
    expect(sharedParts({ ids: ['target'], seqs: [1] })).not.toBe(a);
    const two = { ids: ['a', 'b'], seqs: [0, 1] };
    expect(sharedParts(two)).toBe(two);
    const fraction = { ids: ['a'], seqs: [0.5] };
    expect(sharedParts(fraction)).toBe(fraction);
  });
});

describe('placeItems: order keys for the items of a record', () => {
  const layout = serviceLayout;
  // The same object for an id every time, as a pass keeps what stays: placeItems then takes an
  // item's id from its place before without a lookup.
  const objects = new Map<string, Placement>();
  const item = (id: string): Placement => objects.get(id) ?? (objects.set(id, { replicaId: id, nodeId: 'n', pendingReason: null }), objects.get(id)!);
  const record = (ids: string[]) => service(ids.map(item));

  it('keeps keys strictly increasing through random moves, insertions and removals, and keeps most keys', () => {
    // A fixed-seed generator: the same sequence every run.
    let state = 12345;
    const random = (n: number) => {
      state = (Math.imul(state, 1103515245) + 12345) >>> 0;
      return state % n;
    };
    let ids = Array.from({ length: 200 }, (_, i) => `r${i}`);
    let value = record(ids);
    let parts = placeItems(layout, value, undefined);
    let next = 200;
    for (let round = 0; round < 300; round++) {
      const op = random(4);
      const at = random(ids.length + 1);
      if (op === 0) ids.splice(at, 0, `r${next++}`);
      else if (op === 1 && ids.length > 1) ids.splice(at % ids.length, 1);
      else if (op === 2) ids.splice(at, 0, ...ids.splice(random(ids.length), 1));
      else ids = [...ids.slice(0, at), `r${next++}`, `r${next++}`, ...ids.slice(at)];
      const nextValue = record(ids);
      // Every other round without the value before: both ways must agree.
      const placed = placeItems(layout, nextValue, parts, round % 2 === 0 ? value : undefined);
      expect(placed).toEqual(placeItems(layout, nextValue, parts));
      value = nextValue;
      expect(placed.ids).toEqual(ids);
      for (let i = 1; i < placed.seqs.length; i++) expect(placed.seqs[i]!).toBeGreaterThan(placed.seqs[i - 1]!);
      // One change touches at most the items it moved or added (two, for the pair).
      const before = new Map(parts.ids.map((id, i) => [id, parts.seqs[i]]));
      const renumbered = placed.ids.filter((id, i) => before.get(id) !== placed.seqs[i]).length;
      expect(renumbered).toBeLessThanOrEqual(2);
      parts = placed;
    }
  });

  it('gives items of one id parts of their own, whether or not they were the objects at their places before', () => {
    const a = item('x');
    const twin: Placement = { replicaId: 'x', nodeId: 'other', pendingReason: null };
    const literal = item('x~1');
    const first = service([a, twin, literal]);
    const placed = placeItems(layout, first, undefined);
    expect(new Set(placed.ids).size).toBe(3);
    // A new one of that id in front, one moved, one kept at its place: ids stay distinct either
    // way, and the object kept at its place keeps its id.
    const newcomer: Placement = { replicaId: 'x', nodeId: 'third', pendingReason: null };
    const second = service([newcomer, twin, a, literal]);
    const again = placeItems(layout, second, placed, first);
    expect(new Set(again.ids).size).toBe(4);
    expect(new Set(placeItems(layout, second, placed).ids).size).toBe(4);
    expect(again.ids[1]).toBe(placed.ids[1]);
    for (let i = 1; i < again.seqs.length; i++) expect(again.seqs[i]!).toBeGreaterThan(again.seqs[i - 1]!);
  });

  it('gives every item its place when the keys between two neighbours run out', () => {
    let ids = ['a', 'z'];
    let parts = placeItems(layout, record(ids), undefined);
    // Each insertion halves the gap between "a" and the last one inserted, until none is left.
    let renumberedAll = false;
    for (let k = 0; k < 2000 && !renumberedAll; k++) {
      ids = [ids[0]!, `i${k}`, ...ids.slice(1)];
      parts = placeItems(layout, record(ids), parts);
      const seqs = parts.seqs;
      // One check per insertion (an expect per key made this test take seconds).
      expect(seqs.every((seq, i) => i === 0 || seq > seqs[i - 1]!), `insertion ${k}`).toBe(true);
      renumberedAll = seqs.every((seq, i) => seq === i);
    }
    expect(renumberedAll).toBe(true);
  });
});
