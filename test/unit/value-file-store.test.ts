import { mkdtemp, readdir, readFile, rm, stat, statfs, writeFile } from 'node:fs/promises';
import { execFileSync } from 'node:child_process';
import os from 'node:os';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { TMPFS_MAGIC } from '../../agent/values/tmpfs-dir.js';
import { ValueFileStore } from '../../agent/values/value-file-store.js';

let dir: string;
const mounted: string[] = [];

beforeEach(async () => {
  dir = await mkdtemp(path.join(os.tmpdir(), 'tether-value-files-'));
});
afterEach(async () => {
  for (const m of mounted.splice(0)) execFileSync('umount', [m]);
  await rm(dir, { recursive: true, force: true });
});

const file = (over: Partial<{ name: string; version: number; mode: number; uid: number; gid: number }> = {}) => ({
  name: 'db',
  version: 3,
  mode: 0o440,
  uid: 1234,
  gid: 2345,
  ...over,
});

describe('the secrets store', () => {
  it('mounts a tmpfs on a dir that is not one, and writes each file there with its mode and owner', async () => {
    const secretsDir = path.join(dir, 'secrets');
    const store = new ValueFileStore({ source: 'secret', dir: secretsDir, tmpfsSizeBytes: 1024 * 1024 });
    // Not at start: a node that runs no secret gets no mount.
    await store.prepare();
    expect(await readdir(dir)).toEqual([]);

    const written = await store.write(file(), Buffer.from('hunter2'));
    mounted.push(secretsDir);
    expect(store.unusable).toBeNull();
    expect((await statfs(secretsDir)).type).toBe(TMPFS_MAGIC);
    expect((await stat(secretsDir)).mode & 0o777).toBe(0o700);
    expect(path.dirname(written)).toBe(secretsDir);
    expect(await readFile(written, 'utf8')).toBe('hunter2');
    const st = await stat(written);
    expect(st.mode & 0o777).toBe(0o440);
    expect([st.uid, st.gid]).toEqual([1234, 2345]);
    // Nothing but the file itself: the temp file it was written as is gone (renamed into place).
    expect(await readdir(secretsDir)).toEqual([path.basename(written)]);
  });

  it('keeps a dir that is a tmpfs already as it is', async () => {
    execFileSync('mount', ['-t', 'tmpfs', '-o', 'size=1m,mode=0700', 'tmpfs', dir]);
    mounted.push(dir);
    await writeFile(path.join(dir, 'marker'), 'x');
    const store = new ValueFileStore({ source: 'secret', dir, tmpfsSizeBytes: 1024 * 1024, mountTmpfs: async () => { throw new Error('must not mount again'); } });
    await store.prepare();
    await store.write(file(), Buffer.from('hunter2'));
    expect(store.unusable).toBeNull();
    expect(await readdir(dir)).toContain('marker');
  });

  it('refuses to write a secret on a dir that is no tmpfs when it cannot mount one, naming the dir and why', async () => {
    const secretsDir = path.join(dir, 'secrets');
    const store = new ValueFileStore({
      source: 'secret',
      dir: secretsDir,
      tmpfsSizeBytes: 1024 * 1024,
      mountTmpfs: async () => {
        throw new Error('mount: only root can do that');
      },
    });
    await store.prepare();
    await expect(store.write(file(), Buffer.from('hunter2'))).rejects.toThrow(/is not a tmpfs.*only root can do that.*never written to the device's disk/);
    expect(store.unusable).toContain(secretsDir);
    expect(store.unusable).toContain('only root can do that');
    expect(await readdir(secretsDir).catch(() => [])).toEqual([]);
  });

  it('keeps one file per value, version, mode and owner: the same one twice is one file', async () => {
    const store = new ValueFileStore({ source: 'config', dir });
    await store.prepare();
    const a = await store.write(file(), Buffer.from('v3'));
    const again = await store.write(file(), Buffer.from('v3'));
    const v4 = await store.write(file({ version: 4 }), Buffer.from('v4'));
    const otherMode = await store.write(file({ mode: 0o400 }), Buffer.from('v3'));
    expect(again).toBe(a);
    expect(new Set([a, v4, otherMode]).size).toBe(3);
    expect((await store.held()).sort()).toEqual([a, v4, otherMode].sort());
    expect(store.pathOf(file({ version: 4 }))).toBe(v4);
  });

  it('removes a file, and at prepare the temp files a crash left behind', async () => {
    const store = new ValueFileStore({ source: 'config', dir });
    await store.prepare();
    const a = await store.write(file(), Buffer.from('v3'));
    await writeFile(path.join(dir, `.${path.basename(a)}.999.tmp`), 'half');
    await store.prepare();
    expect(await readdir(dir)).toEqual([path.basename(a)]);
    await store.remove(a);
    expect(await store.held()).toEqual([]);
  });
});

it('mounts one tmpfs, not one per write, when secrets are written at once', async () => {
  const secretsDir = path.join(dir, 'secrets');
  const store = new ValueFileStore({ source: 'secret', dir: secretsDir, tmpfsSizeBytes: 1024 * 1024 });
  const files = await Promise.all([1, 2, 3, 4].map((version) => store.write(file({ version }), Buffer.from(`v${version}`))));
  const mounts = (await readFile('/proc/self/mounts', 'utf8')).split('\n').filter((l) => l.split(' ')[1] === secretsDir);
  for (const _ of mounts) mounted.push(secretsDir);
  expect(mounts).toHaveLength(1);
  // Every file is on the one tmpfs there: none hidden under a second mount.
  expect((await store.held()).sort()).toEqual([...files].sort());
});
