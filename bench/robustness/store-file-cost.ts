#!/usr/bin/env node
/**
 * What the checked store format costs: one shard of node records written again and again, as the
 * plain record map of earlier versions (lowdb's DataFile: one stringify, a temp file renamed over
 * the file) and in format 1 (CheckedFile: one stringify, one sha256, the replaced file kept as
 * `.prev` by a hard link, then the same temp-and-rename), alternating so that both see the same
 * disk; then the time to read and check the file at start. Local files only, in a temp dir it
 * removes.
 *
 *   node dist/bench/robustness/store-file-cost.js [--records 2000] [--writes 200]
 *
 * Prints one JSON line: the file size, the median and p95 milliseconds per write of each, their
 * ratio, and the milliseconds to read and check the file once.
 */
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { DataFile } from 'lowdb/node';
import { CheckedFile, decodeStoreFile } from '../../hub/store/checked-file.js';

const { values } = parseArgs({
  options: {
    records: { type: 'string', default: '2000' },
    writes: { type: 'string', default: '200' },
  },
});
const RECORDS = Math.min(50_000, Math.max(1, Number(values.records)));
const WRITES = Math.min(2_000, Math.max(10, Number(values.writes)));

/** About what a node record holds (facts included). */
function nodeRecord(i: number, generation: number) {
  return {
    id: `node-${i}`,
    name: `device-${i}`,
    labels: { site: `site-${i % 40}`, role: 'edge' },
    credentialHash: 'f'.repeat(64),
    advertiseAddress: null,
    facts: { hostname: `device-${i}`, os: 'linux', arch: 'arm64', cpus: 4, memoryBytes: 4_000_000_000, diskFreeBytes: 20_000_000_000, engineVersion: '27.3.1' },
    generation,
    targetHash: 'a'.repeat(32),
    joinedAt: '2026-11-30T10:00:00.000Z',
  };
}

const quantile = (xs: number[], q: number): number => {
  const sorted = [...xs].sort((a, b) => a - b);
  return Number(sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))]!.toFixed(3));
};

async function main(): Promise<void> {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'tether-store-file-cost-'));
  try {
    const data: Record<string, ReturnType<typeof nodeRecord>> = {};
    for (let i = 0; i < RECORDS; i++) data[`node-${i}`] = nodeRecord(i, 1);
    let plainBytes = 0;
    // As the store wrote before format 1, byte counter included.
    const plain = new DataFile<typeof data>(path.join(dir, 'plain.json'), {
      parse: JSON.parse,
      stringify: (d) => {
        const text = JSON.stringify(d);
        plainBytes += Buffer.byteLength(text);
        return text;
      },
    });
    const checkedFile = path.join(dir, 'checked.json');
    const checked = new CheckedFile<ReturnType<typeof nodeRecord>>(checkedFile, { keyField: 'id' });
    const plainMs: number[] = [];
    const checkedMs: number[] = [];
    for (let w = 0; w < WRITES; w++) {
      // A change per write, as a target bump makes.
      data[`node-${w % RECORDS}`] = nodeRecord(w % RECORDS, w + 2);
      let t = performance.now();
      await plain.write(data);
      plainMs.push(performance.now() - t);
      t = performance.now();
      await checked.write(data);
      checkedMs.push(performance.now() - t);
    }
    const bytes = await readFile(checkedFile);
    const readStart = performance.now();
    const decoded = decodeStoreFile(await readFile(checkedFile), 'id');
    const readCheckMs = performance.now() - readStart;
    if (!decoded.ok) throw new Error(`the file written does not read back: ${decoded.reason}`);
    const plainMedian = quantile(plainMs, 0.5);
    const checkedMedian = quantile(checkedMs, 0.5);
    process.stdout.write(
      `${JSON.stringify({
        records: RECORDS,
        writes: WRITES,
        fileBytes: bytes.length,
        plainFileBytes: Math.round(plainBytes / WRITES),
        plainWriteMs: { p50: plainMedian, p95: quantile(plainMs, 0.95) },
        checkedWriteMs: { p50: checkedMedian, p95: quantile(checkedMs, 0.95) },
        checkedOverPlain: Number((checkedMedian / plainMedian).toFixed(2)),
        readAndCheckMs: Number(readCheckMs.toFixed(3)),
      })}\n`,
    );
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

main().catch((error: unknown) => {
  process.stderr.write(`store-file-cost: ${(error as Error).stack ?? String(error)}\n`);
  process.exit(1);
});
