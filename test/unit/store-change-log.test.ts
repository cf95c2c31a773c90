import { beforeEach, describe, expect, it } from 'vitest';
import { tempStores } from '../helpers/temp-stores.js';
import { fleetOf, node, nodeLogFile, nodeShardFile } from '../helpers/one-shard-nodes.js';
import { appendFile, readFile, stat, writeFile } from 'node:fs/promises';
import { LowdbStore } from '../../hub/store/lowdb-store.js';
import { encodeLogLine, lineBytesAtLeast, type LogChanges } from '../../hub/store/change-log.js';
import { StoreDamagedError } from '../../hub/store/store-file-damaged.js';

const stores = tempStores('tether-change-log-');
const control = { failLog: false };

beforeEach(async () => {
  control.failLog = false;
});

/** One node shard, so that every node shares the file a change would rewrite whole. */
async function openStore(): Promise<LowdbStore> {
  const store = new LowdbStore({
    dir: stores.dir,
    nodeShards: 1,
    serviceShards: 1,
    beforeWrite: (file) => {
      if (control.failLog && file.endsWith('.log')) throw Object.assign(new Error('simulated'), { code: 'ENOSPC' });
    },
  });
  await store.open();
  stores.keep(store);
  return store;
}

const shardFile = () => nodeShardFile(stores.dir);
const logFile = () => nodeLogFile(stores.dir);
const size = async (file: string) => (await stat(file).catch(() => null))?.size ?? 0;


describe('Store: a change log per shard', () => {
  it('writes bytes in proportion to the change, not to the shard', async () => {
    const store = await openStore();
    await fleetOf(store, 200);
    const shardBytes = await size(shardFile());
    const renamed = { ...node(7), name: 'renamed-7' };
    const recordBytes = JSON.stringify(renamed).length;
    const before = store.stats().bytesWritten;
    await store.putNode(renamed);
    const written = store.stats().bytesWritten - before;
    expect(shardBytes).toBeGreaterThan(50 * recordBytes);
    expect(written).toBeGreaterThanOrEqual(recordBytes);
    expect(written).toBeLessThan(2 * recordBytes);
  });

  it('appends a batch of changed records up to half the shard (a second of hellos), rather than rewriting it', async () => {
    const store = await openStore();
    await fleetOf(store, 100);
    const shardBytes = await size(shardFile());
    // 25 of the shard's 100 nodes report their facts: a batch between a quarter and half the shard.
    const facts = { hostname: 'h', os: 'linux', osRelease: '6.1', arch: 'x64', cpus: 4, memoryBytes: 8e9, diskBytes: 6e10, diskFreeBytes: 3e10, agentVersion: '0.1.0', runtime: 'docker 27.0' };
    const batch = Array.from({ length: 25 }, (_, i) => ({ ...node(i), facts }));
    const batchBytes = batch.reduce((n, r) => n + JSON.stringify(r).length, 0);
    expect(batchBytes).toBeGreaterThan(shardBytes / 4);
    expect(batchBytes).toBeLessThan(shardBytes / 2);
    const before = store.stats().bytesWritten;
    await Promise.all(batch.map((r) => store.putNode(r)));
    const written = store.stats().bytesWritten - before;
    // One line in the log: about the batch, not the shard with it.
    expect(await size(logFile())).toBeGreaterThan(0);
    expect(written).toBeLessThan(1.2 * batchBytes);
    const again = await openStore();
    expect(again.getNode(node(7).id)?.facts).toEqual(facts);
  });

  it('loads what the log holds over the shard, deletes included, and keeps the log within twice the shard size', async () => {
    const store = await openStore();
    await fleetOf(store, 100);
    let largestShare = 0;
    let compactions = 0;
    let logBytes = 0;
    for (let round = 1; round <= 400; round++) {
      await store.putNode(node(round % 10, round));
      const now = await size(logFile());
      if (now < logBytes) compactions++;
      logBytes = now;
      largestShare = Math.max(largestShare, now / (await size(shardFile())));
    }
    // The log grows past its shard's size (fewer whole writes) but never past twice it.
    expect(largestShare).toBeGreaterThan(1);
    expect(largestShare).toBeLessThanOrEqual(2);
    expect(compactions).toBeGreaterThan(0);
    await store.deleteNode(node(50).id);
    expect(await size(logFile())).toBeGreaterThan(0);
    const expected = [...store.listNodes()].sort((a, b) => a.id.localeCompare(b.id));
    await store.close();

    const again = await openStore();
    expect([...again.listNodes()].sort((a, b) => a.id.localeCompare(b.id))).toEqual(expected);
    expect(again.getNode(node(50).id)).toBeUndefined();
    expect(again.getNode(node(9).id)?.generation).toBe(399);
  });

  it('reports a damaged log as a damaged store file, naming it', async () => {
    const store = await openStore();
    await fleetOf(store, 100);
    await store.putNode(node(1, 1));
    await store.putNode(node(2, 1));
    await store.close();
    const text = await readFile(logFile(), 'utf8');
    // One character of the first line's record changed: its checksum no longer holds.
    await writeFile(logFile(), text.replace('"generation":1', '"generation":9'));

    const damaged = new LowdbStore({ dir: stores.dir, nodeShards: 1, serviceShards: 1 });
    const error = await damaged.open().then(
      () => null,
      (e: unknown) => e,
    );
    expect(error).toBeInstanceOf(StoreDamagedError);
    expect((error as StoreDamagedError).files.map((f) => [f.file, f.reason])).toEqual([[logFile(), 'line 1: checksum mismatch']]);
  });

  it('reports a log line whose part record is malformed as a damaged shard, naming the part', async () => {
    const store = await openStore();
    await fleetOf(store, 10);
    await store.putNode(node(1, 1));
    await store.close();
    // A whole, checksummed line (no damage a checksum would see) holding a part with no order key.
    const id = node(1).id;
    await appendFile(logFile(), encodeLogLine({ [`${id}/target`]: { id: `${id}/target`, seq: 'first', item: { generation: 2, targetHash: '' } } }));

    const damaged = new LowdbStore({ dir: stores.dir, nodeShards: 1, serviceShards: 1 });
    const error = await damaged.open().then(
      () => null,
      (e: unknown) => e,
    );
    expect(error).toBeInstanceOf(StoreDamagedError);
    expect((error as StoreDamagedError).files.map((f) => [f.file, f.reason])).toEqual([[shardFile(), `part record "${id}/target" is malformed`]]);
  });

  it('lands a write that undoes the log even when its shard rewrite fails: memory and a restart agree', async () => {
    const labels = (tag: string) => Object.fromEntries(Array.from({ length: 40 }, (_, i) => [`label-${i}`, `${tag}-${i}`]));
    const a = { ...node(1), labels: labels('a') };
    const b = { ...node(2), labels: labels('b') };
    const failShard = { on: false };
    const store = new LowdbStore({
      dir: stores.dir,
      nodeShards: 1,
      serviceShards: 1,
      beforeWrite: (file) => {
        if (failShard.on && file.endsWith('.json')) throw Object.assign(new Error('simulated'), { code: 'ENOSPC' });
      },
    });
    await store.open();
    stores.keep(store);
    await Promise.all([store.putNode(a), store.putNode(b)]);
    await store.putNode({ ...b, labels: {} });
    // Back to what the shard file holds: written whole with the same bytes, its log set aside
    // first; then the rewrite of the shard file fails.
    failShard.on = true;
    await store.putNode(b);
    failShard.on = false;
    expect(store.getNode(b.id)?.labels).toEqual(b.labels);
    await store.close();
    stores.letGo(store);
    const again = await openStore();
    expect(again.getNode(b.id)?.labels).toEqual(b.labels);
    expect(again.getNode(a.id)?.labels).toEqual(a.labels);
  });

  it('leaves out an append cut short, and the next write cuts it off', async () => {
    const store = await openStore();
    await fleetOf(store, 100);
    await store.putNode(node(1, 1));
    await store.close();
    await appendFile(logFile(), 'L1 0123');

    const again = await openStore();
    expect(again.getNode(node(1).id)?.generation).toBe(1);
    await again.putNode(node(2, 2));
    await again.close();
    const third = await openStore();
    expect(third.getNode(node(2).id)?.generation).toBe(2);
    expect(third.getNode(node(1).id)?.generation).toBe(1);
  });

  it('a failed append leaves memory and the disk as they were, and the next write lands', async () => {
    const store = await openStore();
    await fleetOf(store, 100);
    control.failLog = true;
    await expect(store.putNode(node(3, 5))).rejects.toThrow(/nodes-00\.log/);
    expect(store.getNode(node(3).id)?.generation).toBe(0);
    control.failLog = false;
    await store.putNode(node(4, 6));
    await store.close();
    const again = await openStore();
    expect(again.getNode(node(3).id)?.generation).toBe(0);
    expect(again.getNode(node(4).id)?.generation).toBe(6);
  });
});

describe('lineBytesAtLeast: a lower bound of a log line, to skip encoding one that cannot fit', () => {
  it('never exceeds the line, for entries of every kind, and comes within a small factor of it', () => {
    const cases: Array<LogChanges<unknown>> = [
      {},
      { a: null },
      { a: {} },
      { 'web/r1': { name: 'web/r1', seq: 1.5, item: { replicaId: 'r1', nodeId: null } }, 'web/r2': null, web: { name: 'web' } },
      { 'é"\\': { 'ü': '\u2028 \ud83d\ude00' } },
      Object.fromEntries(Array.from({ length: 1000 }, (_, i) => [`svc/r${i}`, i % 3 === 0 ? null : { name: `svc/r${i}`, seq: i, item: { id: i } }])),
    ];
    for (const changes of cases) {
      const bytes = Buffer.byteLength(encodeLogLine(changes));
      expect(lineBytesAtLeast(changes)).toBeLessThanOrEqual(bytes);
      expect(lineBytesAtLeast(changes)).toBeGreaterThan(bytes / 4);
    }
  });

  it('is exact for an empty line and for null entries', () => {
    for (const changes of [{}, { a: null }, { a: null, bcd: null }] as Array<LogChanges<unknown>>) {
      expect(lineBytesAtLeast(changes)).toBe(Buffer.byteLength(encodeLogLine(changes)));
    }
  });
});
