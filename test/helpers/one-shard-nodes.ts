/**
 * Nodes for the store's change-log tests, which open stores of one node shard so that every node
 * shares the file a change would rewrite whole: the records, and the writes those tests repeat.
 */
import path from 'node:path';
import type { LowdbStore } from '../../hub/store/lowdb-store.js';
import type { NodeRecord } from '../../hub/store/store.js';

/** The one node shard of a store opened on `dir` with `nodeShards: 1`, and its change log. */
export const nodeShardFile = (dir: string): string => path.join(dir, 'nodes', 'nodes-00.json');
export const nodeLogFile = (dir: string): string => path.join(dir, 'nodes', 'nodes-00.log');

export const node = (i: number, generation = 0): NodeRecord => ({
  id: `node-${String(i).padStart(4, '0')}`,
  name: `edge-${i}`,
  labels: { zone: `z${i % 3}` },
  credentialHash: 'a'.repeat(64),
  advertiseAddress: null,
  facts: null,
  generation,
  targetHash: '',
  joinedAt: '2026-01-01T00:00:00.000Z',
});

/** The generation the store holds for node i. */
export const gen = (s: LowdbStore, i: number): number | undefined => s.getNode(node(i).id)?.generation;

/** Nodes 0 to count - 1 at that generation, each its own put (a burst that one write carries). */
export const fleetOf = (s: LowdbStore, count: number, generation = 0): Promise<void[]> => Promise.all(Array.from({ length: count }, (_, i) => s.putNode(node(i, generation))));

/**
 * One write of 90 records, each with labels new to it (a few hundred bytes each, more than half
 * the shard in all): too big for the log, so the shard is written whole (a compaction).
 */
export const bigWrite = (s: LowdbStore, from: number, generation: number): Promise<void[]> => Promise.all(bigWriteRecords(from, generation).map((n) => s.putNode(n)));

/** The records of bigWrite. */
export const bigWriteRecords = (from: number, generation: number): NodeRecord[] =>
  Array.from({ length: 90 }, (_, i) => ({ ...node(i + from, generation), labels: { zone: `z${(i + from) % 3}`, batch: `written at generation ${generation}`.padEnd(400, '.') } }));
