import { beforeEach, describe, expect, it } from 'vitest';
import { tempStores } from '../helpers/temp-stores.js';
import { bigWrite, bigWriteRecords, fleetOf, gen, node, nodeLogFile, nodeShardFile } from '../helpers/one-shard-nodes.js';
import { access, readFile, unlink, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { LowdbStore } from '../../hub/store/lowdb-store.js';
import { StoreDamagedError } from '../../hub/store/store-file-damaged.js';
import { restoredText, restoreFromPrevious } from '../../hub/store/store-recovery.js';
import type { ServiceRecord } from '../../hub/store/store.js';
import type { Placement } from '../../hub/scheduler/types.js';
import { validateServiceSpec } from '../../hub/spec/service-spec.js';

/**
 * The change log is tied to the shard file it was written on: a crash between the two steps of a
 * compaction (the shard renamed, the log not yet emptied), a failed emptying, a restore of the
 * shard's previous copy, a damaged line and a log without its shard must each leave a state that
 * existed, never one half-applied.
 */
const stores = tempStores('tether-log-crash-');
const control = { failLog: false };

beforeEach(async () => {
  control.failLog = false;
});

/** One shard per collection, so that every record shares the file a compaction rewrites. */
function storeAt(): LowdbStore {
  return new LowdbStore({
    dir: stores.dir,
    nodeShards: 1,
    serviceShards: 1,
    beforeWrite: (file) => {
      if (control.failLog && file.endsWith('.log')) throw Object.assign(new Error('simulated'), { code: 'EIO' });
    },
  });
}
async function openStore(): Promise<LowdbStore> {
  const store = storeAt();
  await store.open();
  stores.keep(store);
  return store;
}
const closeAll = () => stores.closeAll();
async function openError(): Promise<StoreDamagedError> {
  const error = await storeAt()
    .open()
    .then(
      () => null,
      (e: unknown) => e,
    );
  expect(error).toBeInstanceOf(StoreDamagedError);
  return error as StoreDamagedError;
}
const exists = (file: string) => access(file).then(
  () => true,
  () => false,
);

/** The log's text with the line that changes `id` altered: its checksum no longer holds. */
const damageLineOf = (text: string, id: string) =>
  text
    .split('\n')
    .map((line) => (line.includes(`"${id}/`) ? line.replace('"generation":1', '"generation":9') : line))
    .join('\n');
const shardFile = () => nodeShardFile(stores.dir);
const logFile = () => nodeLogFile(stores.dir);

describe('Store: the change log is tied to its shard', () => {
  it('a log left behind by a crash during a compaction is not laid over the new shard', async () => {
    const s = await openStore();
    await fleetOf(s, 100);
    await s.putNode(node(1, 1));
    const staleLog = await readFile(logFile());
    expect(staleLog.length).toBeGreaterThan(0);
    await bigWrite(s, 1, 2);
    await closeAll();
    // The crash: the shard renamed into place, the log never emptied.
    await writeFile(logFile(), staleLog);
    const r = await openStore();
    expect({ n1: gen(r, 1), n2: gen(r, 2) }).toEqual({ n1: 2, n2: 2 });
    // The stale log is replaced at the next append, not appended to.
    await r.putNode(node(5, 9));
    await closeAll();
    const again = await openStore();
    expect({ n1: gen(again, 1), n5: gen(again, 5) }).toEqual({ n1: 2, n5: 9 });
  });

  it('a log left behind by a crash is no damage, even with a bad line: it is not part of the state', async () => {
    const s = await openStore();
    await fleetOf(s, 100);
    await s.putNode(node(1, 1));
    await s.putNode(node(2, 1));
    const staleLog = await readFile(logFile(), 'utf8');
    await bigWrite(s, 1, 2);
    await closeAll();
    await writeFile(logFile(), damageLineOf(staleLog, node(2).id));
    const r = await openStore();
    expect({ n1: gen(r, 1), n2: gen(r, 2) }).toEqual({ n1: 2, n2: 2 });
  });

  it('a placement a compaction removed does not come back from a log left behind', async () => {
    const placement = (i: number, nodeId = `node-${i % 50}`): Placement => ({ replicaId: `web.r${i}`, nodeId, pendingReason: null });
    const service = (placements: Placement[], revision = 1): ServiceRecord => {
      const spec = validateServiceSpec({ image: 'nginx:1', replicas: placements.length });
      if (!spec.ok) throw new Error('bad spec');
      return { name: 'web', spec: spec.value, revision, createdAt: 'c', updatedAt: 'u', placements };
    };
    const s = await openStore();
    const all = Array.from({ length: 200 }, (_, i) => placement(i));
    await s.putService(service(all));
    await s.putService(service(all.map((p, i) => (i === 150 ? placement(150, 'node-moved') : p))));
    const log = path.join(stores.dir, 'services', 'services-00.log');
    const staleLog = await readFile(log);
    expect(staleLog.length).toBeGreaterThan(0);
    // A scale down to 100: the removed parts make it a whole write.
    await s.putService(service(all.slice(0, 100).map((_, i) => placement(i, 'node-b')), 2));
    await closeAll();
    await writeFile(log, staleLog);
    const r = await openStore();
    const got = r.getService('web')!;
    expect({ revision: got.revision, placements: got.placements.length, r150: got.placements.some((p) => p.replicaId === 'web.r150') }).toEqual({
      revision: 2,
      placements: 100,
      r150: false,
    });
  });

  it('a compaction whose log cannot be set aside still succeeds, and later writes land', async () => {
    const s = await openStore();
    await fleetOf(s, 100);
    await s.putNode(node(1, 1));
    control.failLog = true;
    const results = await Promise.allSettled(bigWriteRecords(1, 2).map((n) => s.putNode(n)));
    expect(results.filter((r) => r.status === 'rejected')).toEqual([]);
    expect(gen(s, 2)).toBe(2);
    // The disk, as a crash now would leave it: the new shard, the old log beside it.
    const other = storeAt();
    await other.open();
    expect({ n1: gen(other, 1), n2: gen(other, 2) }).toEqual({ n1: 2, n2: 2 });
    control.failLog = false;
    await s.putNode(node(3, 3));
    await closeAll();
    const again = await openStore();
    expect({ n1: gen(again, 1), n2: gen(again, 2), n3: gen(again, 3) }).toEqual({ n1: 2, n2: 2, n3: 3 });
  });
});

describe('Store: --recover with a change log', () => {
  it('restores the shard and the log of the same compaction, and sets the current log aside', async () => {
    const s = await openStore();
    await fleetOf(s, 100);
    await fleetOf(s, 100, 1); // whole: the shard holds every node at 1
    await s.putNode(node(1, 5)); // a log line
    await bigWrite(s, 10, 2); // whole: .prev = every node at 1, the log kept with it holds node 1 at 5
    await s.putNode(node(3, 7)); // log lines since that compaction
    await s.putNode(node(4, 7));
    await closeAll();
    await writeFile(shardFile(), 'garbage');
    const error = await openError();
    expect(error.files.map((f) => f.file)).toEqual([shardFile()]);
    const restored = await restoreFromPrevious(error.files);
    const r = await openStore();
    // The state just before the compaction that .prev ends: no mix of older base and newer lines.
    expect({ n1: gen(r, 1), n3: gen(r, 3), n4: gen(r, 4), n20: gen(r, 20) }).toEqual({ n1: 5, n3: 1, n4: 1, n20: 1 });
    const text = restored.map((line) => restoredText(line)).join('\n');
    expect(text).toContain(`with the change log kept with it (${logFile()}.prev)`);
    expect(text).toContain(`set aside as ${logFile()}.unapplied`);
    expect(await exists(`${logFile()}.unapplied`)).toBe(true);
  });

  it('cuts a damaged log at its first bad line, keeping the whole file', async () => {
    const s = await openStore();
    await fleetOf(s, 100);
    await s.putNode(node(1, 1));
    await s.putNode(node(2, 1));
    await s.putNode(node(3, 1));
    await closeAll();
    const whole = await readFile(logFile(), 'utf8');
    await writeFile(logFile(), damageLineOf(whole, node(2).id));
    const error = await openError();
    const [log] = error.files;
    expect(log!.file).toBe(logFile());
    expect(log!.restorable).toBe(true);
    expect(log!.advice()).toMatch(/--recover/);
    const restored = await restoreFromPrevious(error.files);
    expect(restored.map((r) => restoredText(r)).join('\n')).toMatch(/dropped 2 of 3 lines/);
    expect(await readFile(`${logFile()}.damaged`, 'utf8')).toBe(damageLineOf(whole, node(2).id));
    const r = await openStore();
    expect({ n1: gen(r, 1), n2: gen(r, 2), n3: gen(r, 3) }).toEqual({ n1: 1, n2: 0, n3: 0 });
  });

  it('one start names a damaged shard and its damaged log', async () => {
    const s = await openStore();
    await fleetOf(s, 100);
    await s.putNode(node(1, 1));
    await closeAll();
    const whole = await readFile(logFile(), 'utf8');
    await writeFile(logFile(), damageLineOf(whole, node(1).id));
    await writeFile(shardFile(), 'garbage');
    const error = await openError();
    expect(error.files.map((f) => f.file).sort()).toEqual([shardFile(), logFile()].sort());
  });

  it('a log whose shard file is missing is damage, not an empty shard', async () => {
    const s = await openStore();
    await fleetOf(s, 100); // written whole once: no previous copy
    await s.putNode(node(1, 1));
    await closeAll();
    await unlink(shardFile());
    const error = await openError();
    expect(error.files.map((f) => [f.file, f.reason])).toEqual([[logFile(), `its shard file ${shardFile()} is missing`]]);
  });
});
