import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { mkdtemp, readFile, readdir, rm, stat, unlink, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { Low } from 'lowdb';
import { CheckedFile, encodeStoreFile, previousCopyOf } from '../../hub/store/checked-file.js';
import { LowdbStore } from '../../hub/store/lowdb-store.js';
import { StoreDamagedError, StoreFileDamagedError } from '../../hub/store/store-file-damaged.js';
import { restoreFromPrevious } from '../../hub/store/store-recovery.js';
import type { ServiceRecord } from '../../hub/store/store.js';
import { validateServiceSpec } from '../../hub/spec/service-spec.js';

function service(name: string, revision: number, image = 'nginx:1'): ServiceRecord {
  const v = validateServiceSpec({ image });
  if (!v.ok) throw new Error('bad spec');
  return { name, spec: v.value, revision, createdAt: 'c', updatedAt: 'u', placements: [] };
}

let dir: string;
beforeEach(async () => {
  dir = await mkdtemp(path.join(os.tmpdir(), 'tether-checked-file-'));
});
afterEach(async () => {
  await rm(dir, { recursive: true, force: true });
});

const good = encodeStoreFile({ web: { name: 'web', revision: 3 } });
/** Every way a store file was found damaged, each with the reason the hub must give. */
const DAMAGE: Array<[string, Buffer, RegExp]> = [
  ['null', Buffer.from('null'), /holds null/],
  ['an array', Buffer.from('[]'), /holds an array/],
  ['a number', Buffer.from('42'), /holds a number/],
  ['a string', Buffer.from('"web"'), /holds a string/],
  ['nothing', Buffer.alloc(0), /empty/],
  ['a truncated file', Buffer.from(good.slice(0, good.length - 9)), /truncated/],
  ['a truncated legacy file', Buffer.from('{"web":{"name":"web","revis'), /truncated/],
  ['NUL bytes', Buffer.alloc(4096), /NUL bytes/],
  ['a NUL-filled tail', Buffer.concat([Buffer.from(good.slice(0, 40)), Buffer.alloc(512)]), /NUL bytes/],
  ['invalid UTF-8 in a value', Buffer.concat([Buffer.from('{"web":{"name":"web","image":"nginx'), Buffer.from([0xc3, 0x28]), Buffer.from('"}}')]), /not valid UTF-8/],
  ['a changed byte', Buffer.from(good.replace('"revision":3', '"revision":4')), /checksum mismatch/],
  ['an unknown format version', Buffer.from(good.replace('{"format":1,', '{"format":2,')), /unknown format version 2/],
  ['a record of another collection', Buffer.from('{"web":{"id":"web"}}'), /record "web" does not carry its key/],
  ['a record that is not an object', Buffer.from('{"web":[1]}'), /record "web" is not an object/],
];

describe('a checked store file', () => {
  const file = () => path.join(dir, 'services-00.json');
  const adapter = () => new CheckedFile<Record<string, unknown>>(file(), { keyField: 'name' });

  it.each(DAMAGE)('refuses %s, naming the file and what is wrong', async (_what, bytes, reason) => {
    await writeFile(file(), bytes);
    const error = await adapter().read().catch((e: unknown) => e);
    expect(error).toBeInstanceOf(StoreFileDamagedError);
    expect((error as StoreFileDamagedError).file).toBe(file());
    expect((error as StoreFileDamagedError).reason).toMatch(reason);
    expect((error as StoreFileDamagedError).advice()).toContain(file());
  });

  it('reads what it wrote, and no file as none', async () => {
    expect(await adapter().read()).toBeNull();
    await adapter().write({ web: { name: 'web', revision: 1 } });
    expect(await adapter().read()).toEqual({ web: { name: 'web', revision: 1 } });
    expect(await readFile(file(), 'utf8')).toMatch(/^\{"format":1,"sha256":"[0-9a-f]{64}","data":\{"web":/);
  });

  it('checks the bytes as written when the data holds characters of several bytes', async () => {
    const records = { web: { name: 'web', labels: { site: 'Zürich ✓ 東京 🚀' } } };
    await adapter().write(records);
    expect(await adapter().read()).toEqual(records);
    // One byte of a three-byte character changed (✓ is e2 9c 93): still valid UTF-8, not the data written.
    const bytes = await readFile(file());
    const at = bytes.indexOf(Buffer.from('✓'));
    bytes[at + 2] = 0x94;
    await writeFile(file(), bytes);
    const error = await adapter().read().catch((e: unknown) => e);
    expect((error as StoreFileDamagedError).reason).toMatch(/checksum mismatch/);
  });

  it('loads a file of the earlier format (a plain record map) and rewrites it checked at its next write', async () => {
    await writeFile(file(), JSON.stringify({ web: { name: 'web', revision: 2 } }));
    const db = new Low(adapter(), {});
    await db.read();
    expect(db.data).toEqual({ web: { name: 'web', revision: 2 } });
    await db.write();
    expect(await readFile(file(), 'utf8')).toMatch(/^\{"format":1,/);
    // The legacy file the write replaced is the previous copy.
    expect(JSON.parse(await readFile(previousCopyOf(file()), 'utf8'))).toEqual({ web: { name: 'web', revision: 2 } });
  });

  it('keeps the file a write replaces as <file>.prev; the first write has none', async () => {
    const db = new Low(adapter(), {} as Record<string, Record<string, unknown>>);
    await db.read();
    db.data.web = { name: 'web', revision: 1 };
    await db.write();
    await expect(stat(previousCopyOf(file()))).rejects.toMatchObject({ code: 'ENOENT' });
    db.data.web = { name: 'web', revision: 2 };
    await db.write();
    expect(await new CheckedFile(previousCopyOf(file()), { keyField: 'name' }).read()).toEqual({ web: { name: 'web', revision: 1 } });
    expect(await adapter().read()).toEqual({ web: { name: 'web', revision: 2 } });
  });

  it('says whether the previous copy of a damaged file is good, and how old', async () => {
    await writeFile(previousCopyOf(file()), good);
    await writeFile(file(), 'null');
    const error = (await adapter().read().catch((e: unknown) => e)) as StoreFileDamagedError;
    expect(error.previous).toMatchObject({ file: previousCopyOf(file()), state: 'good' });
    expect(error.advice()).toMatch(/is damaged \(holds null, not records\); its previous copy .*services-00\.json\.prev is good \(written \d+ s ago\): start with --recover/);
    await writeFile(previousCopyOf(file()), '[]');
    const both = (await adapter().read().catch((e: unknown) => e)) as StoreFileDamagedError;
    expect(both.restorable).toBe(false);
    expect(both.advice()).toMatch(/has no good previous copy \(.*\.prev is damaged too \(holds an array/);
  });

  it('takes a file of an unknown format for a downgrade: no --recover, run the version that wrote it', async () => {
    await writeFile(previousCopyOf(file()), good);
    await writeFile(file(), good.replace('{"format":1,', '{"format":2,'));
    const error = (await adapter().read().catch((e: unknown) => e)) as StoreFileDamagedError;
    expect(error.restorable).toBe(false);
    expect(error.advice()).toBe(`store file ${file()} was written by a newer version of Tether (unknown format version 2; this version reads 1): run that version again`);
  });

  it('refuses a file that is gone while its previous copy is there', async () => {
    await writeFile(previousCopyOf(file()), good);
    const error = (await adapter().read().catch((e: unknown) => e)) as StoreFileDamagedError;
    expect(error).toBeInstanceOf(StoreFileDamagedError);
    expect(error.reason).toMatch(/missing/);
    expect(error.restorable).toBe(true);
  });
});

describe('a store with a damaged file', () => {
  const open = async () => {
    const store = new LowdbStore({ dir, nodeShards: 2, serviceShards: 2 });
    await store.open();
    return store;
  };

  /** A store holding `web` and written twice, so that its shard has a previous copy; returns that shard. */
  async function seeded(): Promise<string> {
    const store = await open();
    await store.putService(service('web', 1));
    await store.putService(service('web', 2, 'nginx:2'));
    await store.close();
    const files = (await readdir(path.join(dir, 'services'))).filter((f) => /^services-\d+\.json$/.test(f));
    for (const f of files) {
      const text = await readFile(path.join(dir, 'services', f), 'utf8');
      if (text.includes('"web"')) return path.join(dir, 'services', f);
    }
    throw new Error('no shard holds web');
  }

  it.each(DAMAGE)('does not open with %s in a shard: it names the file, and nothing is read as empty', async (_what, bytes, reason) => {
    const shard = await seeded();
    await writeFile(shard, bytes);
    const error = await open().catch((e: unknown) => e);
    expect(error).toBeInstanceOf(StoreDamagedError);
    const files = (error as StoreDamagedError).files;
    expect(files.map((f) => f.file)).toEqual([shard]);
    expect(files[0]!.reason).toMatch(reason);
    // A newer format is not damage to undo with an older copy.
    expect(files[0]!.restorable).toBe(!files[0]!.reason.startsWith('unknown format'));
  });

  it('is whole again once the damaged file is restored from its previous copy', async () => {
    const shard = await seeded();
    await writeFile(shard, Buffer.alloc(512));
    const error = (await open().catch((e: unknown) => e)) as StoreDamagedError;
    const restored = await restoreFromPrevious(error.files);
    expect(restored).toEqual([expect.objectContaining({ file: shard, from: `${shard}.prev`, keptAs: `${shard}.damaged` })]);
    const store = await open();
    // The previous copy holds the state before the last write: revision 1.
    expect(store.getService('web')).toMatchObject({ revision: 1 });
    expect((await readFile(`${shard}.damaged`)).equals(Buffer.alloc(512))).toBe(true);
  });

  it('names every damaged file at once, and refuses to restore one with no good previous copy', async () => {
    const shard = await seeded();
    const tokens = path.join(dir, 'join-tokens-00.json');
    await writeFile(tokens, '[]');
    await writeFile(shard, 'null');
    const error = (await open().catch((e: unknown) => e)) as StoreDamagedError;
    expect(error.files.map((f) => f.file).sort()).toEqual([tokens, shard].sort());
    expect(error.files.find((f) => f.file === tokens)!.restorable).toBe(false);
    await expect(restoreFromPrevious(error.files)).rejects.toThrow(/no good previous copy of .*join-tokens-00\.json/);
    expect(await readFile(shard, 'utf8')).toBe('null');
  });

  it('does not take a deleted shard for an empty one', async () => {
    const shard = await seeded();
    await unlink(shard);
    const error = (await open().catch((e: unknown) => e)) as StoreDamagedError;
    expect(error).toBeInstanceOf(StoreDamagedError);
    expect(error.files[0]!.reason).toMatch(/missing/);
  });
});
