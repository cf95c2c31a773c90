import { randomBytes } from 'node:crypto';
import { mkdtemp, readdir, readFile, rm, stat, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { rotateMasterKey } from '../../hub/secrets/key-rotation.js';
import { MasterKeyError, openWithMasterKey } from '../../hub/secrets/master-key-file.js';
import { keyIdOf, type MasterKeyring } from '../../hub/secrets/master-keyring.js';
import { NamedValues, usedByNone } from '../../hub/secrets/named-values.js';
import { validateServiceSpec } from '../../hub/spec/service-spec.js';
import { LowdbStore } from '../../hub/store/lowdb-store.js';

const SECRET = 'secret-value-5a1f0c';
const PASSWORD = 'registry-pass-9e2b44';

let dir: string;
beforeEach(async () => {
  dir = await mkdtemp(path.join(os.tmpdir(), 'tether-rotation-'));
});
afterEach(async () => {
  await rm(dir, { recursive: true, force: true });
});

const storeDir = () => path.join(dir, 'store');
const openStore = async (sealer: MasterKeyring) => {
  const store = new LowdbStore({ dir: storeDir(), sealer });
  await store.open();
  return store;
};
const keyFile = () => path.join(dir, 'master.key');
const readKey = async (file = keyFile()) => Buffer.from((await readFile(file, 'utf8')).trim(), 'base64');
const exists = (file: string) => stat(file).then(
  () => true,
  () => false,
);

/** Every sealed value's ciphertext and key id as the store's files hold them (JSON anywhere in them). */
async function sealedOnDisk(): Promise<Array<{ keyId: string; ciphertext: string }>> {
  const found: Array<{ keyId: string; ciphertext: string }> = [];
  for (const entry of await readdir(dir, { withFileTypes: true, recursive: true })) {
    if (!entry.isFile()) continue;
    const text = await readFile(path.join(entry.parentPath, entry.name), 'utf8');
    for (const m of text.matchAll(/"keyId":"([0-9a-f]{8})","nonce":"[^"]*","ciphertext":"([^"]*)"/g)) found.push({ keyId: m[1]!, ciphertext: m[2]! });
  }
  return found;
}

/** A hub's first start: a secret (changed once, so older versions were written too) and a service with registry credentials. */
async function seed(env: Record<string, string> = {}): Promise<void> {
  const { opened: store, keyring: sealer } = await openWithMasterKey(dir, env, openStore);
  const secrets = new NamedValues('secret', { store, sealer, usedBy: usedByNone });
  await secrets.put('db', Buffer.from('first value'));
  await secrets.put('db', Buffer.from(SECRET));
  const spec = validateServiceSpec({ image: 'nginx:1', registryAuth: { username: 'u', password: PASSWORD } });
  if (!spec.ok) throw new Error('bad spec');
  await store.putService({ name: 'web', spec: spec.value, revision: 1, createdAt: 'x', updatedAt: 'x', placements: [] });
  await store.close();
}

/** Opens the store as a start would, and reads back the secret and the password. */
async function readBack(env: Record<string, string> = {}): Promise<{ secret: string; previous: string | undefined; password: string | undefined }> {
  const { opened: store, keyring: sealer } = await openWithMasterKey(dir, env, openStore);
  try {
    const secrets = new NamedValues('secret', { store, sealer, usedBy: usedByNone });
    return {
      secret: secrets.open(secrets.get('db')!).toString(),
      // The version before it, kept for replicas an update has not reached: re-sealed too.
      previous: secrets.valueOf('db', 1)?.toString(),
      password: store.getService('web')?.spec.registryAuth?.password,
    };
  } finally {
    await store.close();
  }
}

const quiet = () => undefined;

describe('rotate-master-key', () => {
  it('re-seals every secret and registry password with a new key, and leaves no old ciphertext on disk', async () => {
    await seed();
    const oldKey = await readKey();
    const before = await sealedOnDisk();
    expect(before.length).toBeGreaterThan(0);
    expect(before.every((s) => s.keyId === keyIdOf(oldKey))).toBe(true);

    const result = await rotateMasterKey({ dataDir: dir, env: {}, openStore, print: quiet });
    const newKey = await readKey();
    expect(newKey.equals(oldKey)).toBe(false);
    expect(result).toMatchObject({ fromKeyId: keyIdOf(oldKey), toKeyId: keyIdOf(newKey), secrets: 1, services: 1 });
    expect((await stat(keyFile())).mode & 0o777).toBe(0o600);
    expect(await exists(`${keyFile()}.prev`)).toBe(false);

    const after = await sealedOnDisk();
    expect(after.length).toBeGreaterThan(0);
    expect(after.filter((s) => s.keyId !== keyIdOf(newKey))).toEqual([]);
    for (const old of before) expect(after.map((s) => s.ciphertext)).not.toContain(old.ciphertext);

    expect(await readBack()).toEqual({ secret: SECRET, previous: 'first value', password: PASSWORD });
  });

  it('finishes a rotation cut short after the new key was written, losing nothing', async () => {
    await seed();
    const oldKey = await readKey();
    // A crash after master.key.prev and the new master.key were written, before any record was.
    const newKey = randomBytes(32);
    await writeFile(`${keyFile()}.prev`, `${oldKey.toString('base64')}\n`, { mode: 0o600 });
    await writeFile(keyFile(), `${newKey.toString('base64')}\n`, { mode: 0o600 });
    // A hub started meanwhile reads every value.
    expect(await readBack()).toEqual({ secret: SECRET, previous: 'first value', password: PASSWORD });

    const result = await rotateMasterKey({ dataDir: dir, env: {}, openStore, print: quiet });
    expect(result).toMatchObject({ finished: true, toKeyId: keyIdOf(newKey) });
    expect((await readKey()).equals(newKey)).toBe(true);
    expect(await exists(`${keyFile()}.prev`)).toBe(false);
    expect((await sealedOnDisk()).every((s) => s.keyId === keyIdOf(newKey))).toBe(true);
    expect(await readBack()).toEqual({ secret: SECRET, previous: 'first value', password: PASSWORD });
  });

  it('with TETHER_MASTER_KEY, prints the new key once and writes no key file', async () => {
    const envKey = randomBytes(32).toString('base64');
    await seed({ TETHER_MASTER_KEY: envKey });
    const printed: string[] = [];
    const result = await rotateMasterKey({ dataDir: dir, env: { TETHER_MASTER_KEY: envKey }, openStore, print: (line) => printed.push(line) });
    const shown = printed.join('\n').match(/TETHER_MASTER_KEY=([A-Za-z0-9+/=]{44})/);
    expect(shown, printed.join('\n')).not.toBeNull();
    const newKey = shown![1]!;
    expect(printed.join('\n').split(newKey)).toHaveLength(2);
    expect(result.toKeyId).toBe(keyIdOf(Buffer.from(newKey, 'base64')));
    expect(await exists(keyFile())).toBe(false);
    expect(await readBack({ TETHER_MASTER_KEY: newKey })).toEqual({ secret: SECRET, previous: 'first value', password: PASSWORD });
    await expect(readBack({ TETHER_MASTER_KEY: envKey })).rejects.toThrow(MasterKeyError);
  });

  it('refuses to run without a key to rotate from', async () => {
    await expect(rotateMasterKey({ dataDir: dir, env: {}, openStore, print: quiet })).rejects.toThrow(/no master key/);
    expect(await exists(keyFile())).toBe(false);
  });

  it('stops with one line, before it changes anything, on a secret that does not open', async () => {
    const { opened: store, keyring } = await openWithMasterKey(dir, {}, openStore);
    // Under the right key, but sealed for another record: it must not open as this one.
    await store.putSecret({ name: 'db', version: 1, size: 1, digest: 'x'.repeat(12), createdAt: 'x', updatedAt: 'x', sealed: keyring.seal(Buffer.from('v'), 'secret:other') });
    await store.close();
    const oldKey = await readKey();
    const error = await rotateMasterKey({ dataDir: dir, env: {}, openStore, print: quiet }).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(MasterKeyError);
    expect((error as Error).message).toMatch(/secret:db: the encrypted value cannot be decrypted/);
    expect((await readKey()).equals(oldKey)).toBe(true);
    expect(await exists(`${keyFile()}.prev`)).toBe(false);
  });
});

