import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';

/** Faults of single file system calls on a shard's change log, as a failing disk gives them. */
const control = vi.hoisted(() => ({ failLogMoves: false, appendWholeThenFail: false }));
vi.mock('node:fs/promises', async (original) => {
  const real = (await original()) as typeof import('node:fs/promises');
  const eio = () => Object.assign(new Error('EIO: simulated'), { code: 'EIO' });
  return {
    ...real,
    truncate: async (file: string, bytes?: number) => {
      if (control.failLogMoves && String(file).endsWith('.log')) throw eio();
      return real.truncate(file, bytes);
    },
    rename: async (from: string, to: string) => {
      if (control.failLogMoves && String(from).endsWith('.log')) throw eio();
      return real.rename(from, to);
    },
    appendFile: async (file: string, data: string) => {
      await real.appendFile(file, data);
      // The line is on disk whole, but the call fails (its close, say): the write is reported failed.
      if (control.appendWholeThenFail) throw eio();
    },
  };
});

import { LowdbStore } from '../../hub/store/lowdb-store.js';
import type { NodeRecord } from '../../hub/store/store.js';

let dir: string;
const opened: LowdbStore[] = [];
beforeEach(async () => {
  dir = await mkdtemp(path.join(os.tmpdir(), 'tether-log-io-'));
  control.failLogMoves = false;
  control.appendWholeThenFail = false;
});
afterEach(async () => {
  control.failLogMoves = false;
  control.appendWholeThenFail = false;
  await Promise.allSettled(opened.splice(0).map((s) => s.close()));
  await rm(dir, { recursive: true, force: true });
});

async function openStore(): Promise<LowdbStore> {
  const store = new LowdbStore({ dir, nodeShards: 1, serviceShards: 1 });
  await store.open();
  opened.push(store);
  return store;
}
const node = (i: number, generation = 0): NodeRecord => ({
  id: `node-${String(i).padStart(4, '0')}`,
  name: `edge-${i}`,
  labels: {},
  credentialHash: 'a'.repeat(64),
  advertiseAddress: null,
  facts: null,
  generation,
  targetHash: '',
  joinedAt: '2026-01-01T00:00:00.000Z',
});
const gen = (s: LowdbStore, i: number) => s.getNode(node(i).id)?.generation;

describe('Store: change log file faults', () => {
  it('a compaction whose log cannot be emptied has still landed: reported so, and loaded so', async () => {
    const s = await openStore();
    await Promise.all(Array.from({ length: 100 }, (_, i) => s.putNode(node(i))));
    await s.putNode(node(1, 1)); // a log line
    control.failLogMoves = true;
    // Too big for the log: the shard is written whole, and its log can be neither moved nor emptied.
    const results = await Promise.allSettled(Array.from({ length: 90 }, (_, i) => s.putNode(node(i + 1, 2))));
    expect(results.filter((r) => r.status === 'rejected')).toEqual([]);
    expect(gen(s, 2)).toBe(2);
    // The disk, as a crash now would leave it.
    const other = new LowdbStore({ dir, nodeShards: 1, serviceShards: 1 });
    await other.open();
    expect({ n1: gen(other, 1), n2: gen(other, 2) }).toEqual({ n1: 2, n2: 2 });
    await other.close();
    // Still failing: the next small write replaces the log rather than appending to it.
    await s.putNode(node(3, 3));
    control.failLogMoves = false;
    await s.close();
    opened.splice(0);
    const again = await openStore();
    expect({ n1: gen(again, 1), n2: gen(again, 2), n3: gen(again, 3) }).toEqual({ n1: 2, n2: 2, n3: 3 });
  });

  it('an append reported failed is cut off at once, though its line reached the disk', async () => {
    const s = await openStore();
    await Promise.all(Array.from({ length: 100 }, (_, i) => s.putNode(node(i))));
    await s.putNode(node(1, 1)); // the log exists: the next write appends to it
    control.appendWholeThenFail = true;
    await expect(s.putNode(node(2, 5))).rejects.toThrow(/EIO/);
    expect(gen(s, 2)).toBe(0);
    // A crash now: the write reported failed must not load.
    const other = new LowdbStore({ dir, nodeShards: 1, serviceShards: 1 });
    await other.open();
    expect({ n1: gen(other, 1), n2: gen(other, 2) }).toEqual({ n1: 1, n2: 0 });
    await other.close();
  });
});
