import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { tempStores } from '../helpers/temp-stores.js';
import { bigWrite, fleetOf, gen, node, nodeLogFile, nodeShardFile } from '../helpers/one-shard-nodes.js';
import { readFile, writeFile } from 'node:fs/promises';

// A crash inside --recover, at the rename that puts a restored file in place: that rename fails,
// and whatever the steps before it left on disk is what the next start reads.
const control = vi.hoisted(() => ({ failRenameTo: null as string | null }));
vi.mock('node:fs/promises', async (original) => {
  const real = (await original()) as typeof import('node:fs/promises');
  return {
    ...real,
    rename: async (from: string, to: string) => {
      if (control.failRenameTo !== null && String(to) === control.failRenameTo) throw Object.assign(new Error('EIO: simulated crash'), { code: 'EIO' });
      return real.rename(from, to);
    },
  };
});

import { LowdbStore } from '../../hub/store/lowdb-store.js';
import { StoreDamagedError } from '../../hub/store/store-file-damaged.js';
import { restoreFromPrevious } from '../../hub/store/store-recovery.js';

const stores = tempStores('tether-recover-crash-');
beforeEach(async () => {
  control.failRenameTo = null;
});
afterEach(async () => {
  control.failRenameTo = null;
});
const storeAt = () => new LowdbStore({ dir: stores.dir, nodeShards: 1, serviceShards: 1 });
async function openStore(): Promise<LowdbStore> {
  const s = storeAt();
  await s.open();
  stores.keep(s);
  return s;
}
const closeAll = () => stores.closeAll();
async function openError(): Promise<StoreDamagedError> {
  const e = await storeAt().open().then(
    () => null,
    (x: unknown) => x,
  );
  expect(e).toBeInstanceOf(StoreDamagedError);
  return e as StoreDamagedError;
}
const shardFile = () => nodeShardFile(stores.dir);
const logFile = () => nodeLogFile(stores.dir);

describe('Store: a crash inside --recover', () => {
  it('never leaves a restored shard without the log that goes with it; a second --recover finishes and keeps the first one\'s log', async () => {
    const s = await openStore();
    await fleetOf(s, 100);
    await fleetOf(s, 100, 1); // whole: S1
    await s.putNode(node(1, 5)); // L1, on S1
    await bigWrite(s, 10, 2); // whole: .prev = S1, <log>.prev = L1
    await s.putNode(node(3, 7)); // L2, on S2
    await closeAll();
    const l2 = await readFile(logFile(), 'utf8');
    await writeFile(shardFile(), 'garbage');
    const error = await openError();
    control.failRenameTo = logFile();
    await expect(restoreFromPrevious(error.files)).rejects.toThrow(/simulated crash/);
    control.failRenameTo = null;
    // Still damaged, never S1 alone loaded as if its log were empty.
    const again = await openError();
    await restoreFromPrevious(again.files);
    const r = await openStore();
    expect({ n1: gen(r, 1), n3: gen(r, 3), n20: gen(r, 20) }).toEqual({ n1: 5, n3: 1, n20: 1 });
    // The log written since (L2) is kept, by the first attempt or the second.
    const kept = await Promise.all([`${logFile()}.unapplied`, `${logFile()}.unapplied.1`].map((f) => readFile(f, 'utf8').catch(() => '')));
    expect(kept).toContain(l2);
  });

  it('a second --recover keeps the log the first one set aside', async () => {
    const s = await openStore();
    await fleetOf(s, 100);
    await fleetOf(s, 100, 1);
    await bigWrite(s, 10, 2); // .prev = S1, no log kept with it
    await s.putNode(node(3, 7)); // La on S2
    await closeAll();
    const la = await readFile(logFile(), 'utf8');
    await writeFile(shardFile(), 'garbage');
    await restoreFromPrevious((await openError()).files);
    const a = await openStore();
    await bigWrite(a, 10, 3); // .prev = S1 restored
    await a.putNode(node(4, 8)); // Lb
    await closeAll();
    const lb = await readFile(logFile(), 'utf8');
    await writeFile(shardFile(), 'garbage');
    await restoreFromPrevious((await openError()).files);
    expect(await readFile(`${logFile()}.unapplied`, 'utf8')).toBe(la);
    expect(await readFile(`${logFile()}.unapplied.1`, 'utf8')).toBe(lb);
  });

  it('never leaves a log missing while cutting it', async () => {
    const s = await openStore();
    await fleetOf(s, 100);
    await s.putNode(node(1, 1));
    await s.putNode(node(2, 1));
    await closeAll();
    const lines = (await readFile(logFile(), 'utf8')).split('\n');
    lines[2] = lines[2]!.replace('"generation":1', '"generation":9'); // the second line (after the header) bad
    await writeFile(logFile(), lines.join('\n'));
    const error = await openError();
    control.failRenameTo = logFile();
    await expect(restoreFromPrevious(error.files)).rejects.toThrow(/simulated crash/);
    control.failRenameTo = null;
    const again = await openError();
    await restoreFromPrevious(again.files);
    const r = await openStore();
    expect({ n1: gen(r, 1), n2: gen(r, 2) }).toEqual({ n1: 1, n2: 0 });
  });
});
