import { mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterEach, describe, expect, it, vi } from 'vitest';

/** When set, the next temp file's write fails as a full disk does, after the file was opened. */
const fault = vi.hoisted(() => ({ writeFails: false, synced: [] as string[] }));

vi.mock('node:fs/promises', async (importOriginal) => {
  const fs = await importOriginal<typeof import('node:fs/promises')>();
  return {
    ...fs,
    open: async (...args: Parameters<typeof fs.open>) => {
      const handle = await fs.open(...args);
      const sync = handle.sync.bind(handle);
      handle.sync = async () => {
        fault.synced.push(String(args[0]));
        return sync();
      };
      if (!fault.writeFails) return handle;
      return Object.assign(Object.create(Object.getPrototypeOf(handle) as object) as typeof handle, handle, {
        writeFile: async () => {
          throw Object.assign(new Error('ENOSPC: no space left on device, write'), { code: 'ENOSPC' });
        },
        close: () => handle.close(),
      });
    },
  };
});

const { writeFileAtomic } = await import('../../shared/atomic-file.js');

const dirs: string[] = [];
afterEach(async () => {
  fault.writeFails = false;
  fault.synced = [];
  await Promise.all(dirs.splice(0).map((d) => rm(d, { recursive: true, force: true })));
});

async function tempDir(): Promise<string> {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'tether-atomic-'));
  dirs.push(dir);
  return dir;
}

describe('writeFileAtomic', () => {
  it('replaces the file and leaves nothing else', async () => {
    const dir = await tempDir();
    const file = path.join(dir, 'state.json');
    await writeFile(file, 'old');
    await writeFileAtomic(file, 'new');
    expect(await readFile(file, 'utf8')).toBe('new');
    expect(await readdir(dir)).toEqual(['state.json']);
    // The temp file's bytes, then the directory holding the rename, reach the disk.
    expect(fault.synced).toEqual([`${file}.${process.pid}.tmp`, dir]);
  });

  it('a write that fails (disk full) leaves the old file and no temp file', async () => {
    const dir = await tempDir();
    const file = path.join(dir, 'state.json');
    await writeFile(file, 'old');
    fault.writeFails = true;
    await expect(writeFileAtomic(file, 'new')).rejects.toThrow(/ENOSPC/);
    expect(await readFile(file, 'utf8')).toBe('old');
    expect(await readdir(dir)).toEqual(['state.json']);
  });

  it('a rename that fails leaves no temp file', async () => {
    const dir = await tempDir();
    // A directory in the file's place: the rename over it fails.
    const file = path.join(dir, 'state.json');
    await (await import('node:fs/promises')).mkdir(file);
    await expect(writeFileAtomic(file, 'new')).rejects.toThrow();
    expect(await readdir(dir)).toEqual(['state.json']);
  });
});
