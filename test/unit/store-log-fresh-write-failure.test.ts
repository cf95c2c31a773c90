import { afterEach, beforeEach, expect, it, vi } from 'vitest';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';

const control = vi.hoisted(() => ({ writeWholeThenFail: false, failLogRename: false }));
vi.mock('node:fs/promises', async (original) => {
  const real = (await original()) as typeof import('node:fs/promises');
  return {
    ...real,
    rename: async (from: string, to: string) => {
      if (control.failLogRename && String(from).endsWith('.log')) throw Object.assign(new Error('EIO: simulated'), { code: 'EIO' });
      return real.rename(from, to);
    },
    writeFile: async (file: Parameters<typeof real.writeFile>[0], data: Parameters<typeof real.writeFile>[1], opts?: Parameters<typeof real.writeFile>[2]) => {
      await real.writeFile(file, data, opts);
      // The bytes are on disk whole, but the call fails (its close, say), as the append test has it.
      if (control.writeWholeThenFail && String(file).endsWith('.log')) throw Object.assign(new Error('EIO: simulated'), { code: 'EIO' });
    },
  };
});

import { LowdbStore } from '../../hub/store/lowdb-store.js';
import { StoreDamagedError } from '../../hub/store/store-file-damaged.js';
import { restoreFromPrevious } from '../../hub/store/store-recovery.js';
import type { NodeRecord } from '../../hub/store/store.js';

let dir: string;
beforeEach(async () => {
  dir = await mkdtemp(path.join(os.tmpdir(), 'tether-log-fresh-'));
  control.writeWholeThenFail = false;
  control.failLogRename = false;
});
afterEach(async () => {
  control.writeWholeThenFail = false;
  control.failLogRename = false;
  await rm(dir, { recursive: true, force: true });
});
const node = (i: number, generation = 0): NodeRecord => ({
  id: `node-${String(i).padStart(4, '0')}`, name: `edge-${i}`, labels: {}, credentialHash: 'a'.repeat(64),
  advertiseAddress: null, facts: null, generation, targetHash: '', joinedAt: '2026-01-01T00:00:00.000Z',
});

it('the first line of a fresh log, reported failed, does not load after a restart', async () => {
  const s = new LowdbStore({ dir, nodeShards: 1, serviceShards: 1 });
  await s.open();
  await Promise.all(Array.from({ length: 100 }, (_, i) => s.putNode(node(i)))); // whole; no log yet
  control.writeWholeThenFail = true;
  await expect(s.putNode(node(2, 5))).rejects.toThrow(/EIO/); // fresh log: writeFile(header + line)
  expect(s.getNode(node(2).id)?.generation).toBe(0);
  control.writeWholeThenFail = false;
  // A crash now (no later write replaced the log):
  const other = new LowdbStore({ dir, nodeShards: 1, serviceShards: 1 });
  await other.open();
  expect(other.getNode(node(2).id)?.generation).toBe(0);
  await other.close();
});

it('a log whose set-aside failed is kept as <log>.prev by the next append, for --recover to restore with .prev', async () => {
  const s = new LowdbStore({ dir, nodeShards: 1, serviceShards: 1 });
  await s.open();
  await Promise.all(Array.from({ length: 100 }, (_, i) => s.putNode(node(i)))); // whole: S0
  await Promise.all(Array.from({ length: 100 }, (_, i) => s.putNode(node(i, 1)))); // whole: S1
  await s.putNode(node(1, 5)); // acknowledged: a line on S1
  control.failLogRename = true;
  // Whole: S2, its log not set aside (labels new to each record: more than the log takes).
  await Promise.all(Array.from({ length: 90 }, (_, i) => s.putNode({ ...node(i + 10, 2), labels: { batch: 'written at generation 2'.padEnd(400, '.') } })));
  control.failLogRename = false;
  await s.putNode(node(3, 7)); // a fresh log on S2
  await s.close();
  await writeFile(path.join(dir, 'nodes', 'nodes-00.json'), 'garbage');
  const error = await new LowdbStore({ dir, nodeShards: 1, serviceShards: 1 }).open().then(
    () => null,
    (e: unknown) => e,
  );
  expect(error).toBeInstanceOf(StoreDamagedError);
  await restoreFromPrevious((error as StoreDamagedError).files);
  const r = new LowdbStore({ dir, nodeShards: 1, serviceShards: 1 });
  await r.open();
  // S1 with its log: the state just before S2 was written.
  expect({ n1: r.getNode(node(1).id)?.generation, n3: r.getNode(node(3).id)?.generation }).toEqual({ n1: 5, n3: 1 });
  await r.close();
});

it('a whole write of the same bytes as the shard on disk, whose log cannot be set aside, loads as memory holds it', async () => {
  const bigLabels = (tag: string) => Object.fromEntries(Array.from({ length: 40 }, (_, i) => [`label-${i}`, `${tag}-value-${i}`]));
  const a: NodeRecord = { ...node(1), labels: bigLabels('a') };
  const b: NodeRecord = { ...node(2), labels: bigLabels('b') };
  const s = new LowdbStore({ dir, nodeShards: 1, serviceShards: 1 });
  await s.open();
  await Promise.all([s.putNode(a), s.putNode(b)]); // whole: S1 = {a, b}
  await s.putNode({ ...b, labels: {} }); // small: a line on S1
  control.failLogRename = true;
  // b as it was: whole (over a quarter of the shard), the same bytes as S1, so the same checksum.
  const outcome = await s.putNode(b).then(
    () => 'written',
    () => 'refused',
  );
  control.failLogRename = false;
  const inMemory = Object.keys(s.getNode(b.id)!.labels).length;
  await s.close();
  const r = new LowdbStore({ dir, nodeShards: 1, serviceShards: 1 });
  await r.open();
  expect(Object.keys(r.getNode(b.id)!.labels).length).toBe(inMemory);
  expect(inMemory).toBe(outcome === 'written' ? 40 : 0);
  await r.close();
});
