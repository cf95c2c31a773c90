import { describe, expect, it } from 'vitest';
import { tempStores } from '../helpers/temp-stores.js';
import { bigWrite, fleetOf, gen, node, nodeLogFile, nodeShardFile } from '../helpers/one-shard-nodes.js';
import { readFile, unlink, writeFile } from 'node:fs/promises';
import { createHash } from 'node:crypto';
import { LowdbStore } from '../../hub/store/lowdb-store.js';
import { StoreDamagedError } from '../../hub/store/store-file-damaged.js';
import { restoreFromPrevious } from '../../hub/store/store-recovery.js';
import { encodeLogLine } from '../../hub/store/change-log.js';

const stores = tempStores('tether-log-crash-');
const storeAt = () => new LowdbStore({ dir: stores.dir, nodeShards: 1, serviceShards: 1 });
async function openStore(): Promise<LowdbStore> {
  const s = storeAt();
  await s.open();
  stores.keep(s);
  return s;
}
const closeAll = () => stores.closeAll();
async function openError(): Promise<StoreDamagedError> {
  const e = await storeAt().open().then(() => null, (x: unknown) => x);
  expect(e).toBeInstanceOf(StoreDamagedError);
  return e as StoreDamagedError;
}
const shardFile = () => nodeShardFile(stores.dir);
const logFile = () => nodeLogFile(stores.dir);

describe('Store: crashes around a compaction', () => {
  it('--recover after a crash between the shard rename and the log set-aside keeps the current log, written on .prev', async () => {
    const s = await openStore();
    await fleetOf(s, 100);
    await fleetOf(s, 100, 1); // whole W1: shard S1 (every node at 1); empty log, so no <log>.prev
    await s.putNode(node(1, 5)); // acknowledged: log L1 on S1
    const l1 = await readFile(logFile());
    await bigWrite(s, 10, 2); // whole W2: .prev = S1, L1 -> <log>.prev
    await closeAll();
    // The crash: S2 renamed into place but its data never reached the disk (steno does not fsync),
    // and L1 not yet set aside.
    await writeFile(logFile(), l1);
    await unlink(`${logFile()}.prev`);
    await writeFile(shardFile(), '');
    const error = await openError();
    await restoreFromPrevious(error.files);
    const r = await openStore();
    // S1 + L1 is "the state just before that compaction"; node 1 at 5 was acknowledged.
    expect(gen(r, 1)).toBe(5);
  });
});

describe('Store: only the formats this version writes', () => {
  it('a log without its header is damage, named at start, never laid over the shard', async () => {
    const s = await openStore();
    await fleetOf(s, 100);
    await s.putNode(node(1, 1));
    await closeAll();
    const text = await readFile(logFile(), 'utf8');
    await writeFile(logFile(), text.slice(text.indexOf('\n') + 1)); // the lines alone
    const error = await openError();
    expect(error.files.map((f) => [f.file, f.reason])).toEqual([[logFile(), 'it does not start with its header']]);
    // --recover cuts it at its start: no base to check its lines against.
    const restored = await restoreFromPrevious(error.files);
    expect(restored.map((r) => r.cut)).toEqual([{ validBytes: 0, keptLines: 0, droppedLines: 1 }]);
    const r = await openStore();
    expect(gen(r, 1)).toBe(0);
  });

  it('a log of whole records with no header is damage, not lost under the shard\'s records', async () => {
    const s = await openStore();
    await fleetOf(s, 100);
    await closeAll();
    await writeFile(logFile(), encodeLogLine({ [node(1).id]: node(1, 5) }));
    const error = await openError();
    expect(error.files.map((f) => f.file)).toEqual([logFile()]);
  });

  it('a shard file holding a part record is damage', async () => {
    const s = await openStore();
    await fleetOf(s, 100);
    await closeAll();
    const raw = JSON.parse(await readFile(shardFile(), 'utf8')) as { data: Record<string, unknown> };
    const data = { ...raw.data, [`${node(1).id}/target`]: { id: `${node(1).id}/target`, seq: 0, item: { generation: 9, targetHash: '' } } };
    const text = JSON.stringify(data);
    await writeFile(shardFile(), `{"format":1,"sha256":"${createHash('sha256').update(text).digest('hex')}","data":${text}}`);
    const error = await openError();
    expect(error.files.map((f) => [f.file, f.reason])).toEqual([[shardFile(), `it holds a part record "${node(1).id}/target", which belongs in a change log`]]);
  });
});

describe('Store: a write that carries nothing', () => {
  it('writes no file: a refused put leaves its shard due, but nothing in it to write', async () => {
    let gate: Promise<void> | null = null;
    let open: () => void = () => undefined;
    const files: string[] = [];
    const s = new LowdbStore({
      dir: stores.dir,
      nodeShards: 1,
      serviceShards: 1,
      beforeWrite: async (file) => {
        files.push(file);
        if (gate === null) return;
        await gate;
        throw Object.assign(new Error('ENOSPC: simulated'), { code: 'ENOSPC' });
      },
    });
    await s.open();
    stores.keep(s);
    await fleetOf(s, 100);
    files.length = 0;
    gate = new Promise<void>((resolve) => (open = resolve));
    const first = s.putNode(node(1, 1)).catch((e: unknown) => e);
    while (files.length === 0) await new Promise((resolve) => setImmediate(resolve));
    // Built on the value in flight: refused with it, and its record goes back to the disk's.
    const later = s.putNode(node(1, 2)).catch((e: unknown) => e);
    files.length = 0;
    open();
    gate = null;
    expect(await first).toMatchObject({ message: expect.stringMatching(/ENOSPC/) });
    expect(await later).toMatchObject({ message: expect.stringMatching(/ENOSPC/) });
    await new Promise((resolve) => setTimeout(resolve, 50));
    expect(files).toEqual([]);
    expect(gen(s, 1)).toBe(0);
  });
});
