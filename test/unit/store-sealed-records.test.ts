import { randomBytes } from 'node:crypto';
import { readdir, readFile } from 'node:fs/promises';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { MasterKeyring } from '../../hub/secrets/master-keyring.js';
import { validateServiceSpec, type NormalizedSpec } from '../../hub/spec/service-spec.js';
import { LowdbStore } from '../../hub/store/lowdb-store.js';
import { StoreKeyMismatchError } from '../../hub/store/store-key-mismatch.js';
import type { ConfigRecord, SecretRecord, ServiceRecord, StoreChange } from '../../hub/store/store.js';
import { tempStores } from '../helpers/temp-stores.js';

const stores = tempStores('tether-store-sealed-');
const PASSWORD = 'registry-pass-7f3a91c2';

function spec(input: Record<string, unknown> = {}): NormalizedSpec {
  const v = validateServiceSpec({ image: 'nginx:1', ...input });
  if (!v.ok) throw new Error(JSON.stringify(v.errors));
  return v.value;
}

function service(name: string, extra: Partial<ServiceRecord> = {}): ServiceRecord {
  return {
    name,
    spec: spec({ registryAuth: { username: 'u', password: PASSWORD } }),
    revision: 1,
    createdAt: '2024-01-01T00:00:00.000Z',
    updatedAt: '2024-01-01T00:00:00.000Z',
    placements: [{ replicaId: `${name}-0`, nodeId: null, pendingReason: 'no node' }],
    ...extra,
  };
}

async function open(sealer?: MasterKeyring, beforeWrite?: () => void): Promise<LowdbStore> {
  const store = stores.keep(new LowdbStore({ dir: stores.dir, ...(sealer ? { sealer } : {}), ...(beforeWrite ? { beforeWrite } : {}) }));
  await store.open();
  return store;
}

/** Every file under `dir`, as bytes. */
async function allFiles(dir: string): Promise<Array<{ file: string; bytes: Buffer }>> {
  const out: Array<{ file: string; bytes: Buffer }> = [];
  for (const entry of await readdir(dir, { withFileTypes: true, recursive: true })) {
    if (!entry.isFile()) continue;
    const file = path.join(entry.parentPath, entry.name);
    out.push({ file, bytes: await readFile(file) });
  }
  return out;
}

async function filesHolding(dir: string, value: string): Promise<string[]> {
  const needles = [Buffer.from(value), Buffer.from(Buffer.from(value).toString('base64'))];
  return (await allFiles(dir)).filter(({ bytes }) => needles.some((n) => bytes.includes(n))).map(({ file }) => file);
}

/** Every distinct ciphertext the files hold. */
async function ciphertextsOnDisk(dir: string): Promise<string[]> {
  const found = new Set<string>();
  for (const { bytes } of await allFiles(dir)) for (const m of bytes.toString().matchAll(/"ciphertext":"([^"]*)"/g)) found.add(m[1]!);
  return [...found].sort();
}

const config = (name: string, value: string, version = 1): ConfigRecord => ({
  name,
  version,
  size: Buffer.byteLength(value),
  digest: 'a'.repeat(64),
  createdAt: '2024-01-01T00:00:00.000Z',
  updatedAt: '2024-01-01T00:00:00.000Z',
  value: Buffer.from(value).toString('base64'),
});

describe('configs and secrets in the store', () => {
  it('keeps config and secret records across a restart, and deletes them', async () => {
    const keyring = new MasterKeyring(randomBytes(32));
    const store = await open(keyring);
    await store.putConfig(config('site', 'hello'));
    const secret: SecretRecord = { ...config('db', ''), value: undefined, sealed: keyring.seal(Buffer.from('pw'), 'secret:db') } as unknown as SecretRecord;
    delete (secret as unknown as Record<string, unknown>).value;
    await store.putSecret(secret);
    await stores.closeAll();
    const again = await open(keyring);
    expect(again.getConfig('site')?.value).toBe(Buffer.from('hello').toString('base64'));
    expect([...again.listConfigs()].map((c) => c.name)).toEqual(['site']);
    expect(keyring.open(again.getSecret('db')!.sealed, 'secret:db').toString()).toBe('pw');
    await again.deleteConfig('site');
    await again.deleteSecret('db');
    await stores.closeAll();
    const third = await open(keyring);
    expect(third.getConfig('site')).toBeUndefined();
    expect([...third.listSecrets()]).toEqual([]);
  });

  it('leaves memory as it was when the write of a config is refused', async () => {
    let fail = false;
    const store = await open(new MasterKeyring(randomBytes(32)), () => {
      if (fail) throw Object.assign(new Error('EIO: simulated'), { code: 'EIO' });
    });
    await store.putConfig(config('site', 'one'));
    fail = true;
    await expect(store.putConfig(config('site', 'two', 2))).rejects.toThrow(/EIO/);
    expect(store.getConfig('site')?.version).toBe(1);
  });

  it('refuses to open a store whose secrets were sealed with another key, or with none given', async () => {
    const keyring = new MasterKeyring(randomBytes(32));
    const store = await open(keyring);
    await store.putSecret({ name: 'db', version: 1, size: 2, digest: 'b'.repeat(12), createdAt: 'x', updatedAt: 'x', sealed: keyring.seal(Buffer.from('pw'), 'secret:db') });
    await stores.closeAll();
    await expect(open(new MasterKeyring(randomBytes(32)))).rejects.toThrow(StoreKeyMismatchError);
    await expect(open()).rejects.toThrow(StoreKeyMismatchError);
  });
});

describe('registry passwords in the store', () => {
  it('are never written in the clear, and read back whole by the hub', async () => {
    const keyring = new MasterKeyring(randomBytes(32));
    const store = await open(keyring);
    const web = service('web');
    await store.putService(web);
    // What the hub reads is what it put: the same object, password and all.
    expect(store.getService('web')).toBe(web);
    expect([...store.listServices()][0]).toBe(web);
    // History entries carry credentials too (a rollback sends them to agents).
    const next = { ...web, revision: 2, spec: spec({ image: 'nginx:2', registryAuth: { username: 'u', password: PASSWORD } }), history: [{ revision: 1, acceptedAt: 'x', spec: web.spec }] };
    await store.putService(next);
    // close() writes whatever is pending (the store stays usable).
    await store.close();
    const sealedBefore = await ciphertextsOnDisk(stores.dir);
    // Placements change often: the sealed spec is kept, not sealed again with a new nonce each time.
    await store.putService({ ...next, placements: [{ replicaId: 'web-0', nodeId: 'n-1', pendingReason: null }] });
    await store.close();
    expect(await ciphertextsOnDisk(stores.dir)).toEqual(sealedBefore);
    expect(await filesHolding(stores.dir, PASSWORD)).toEqual([]);

    await stores.closeAll();
    const again = await open(keyring);
    const loaded = again.getService('web')!;
    expect(loaded.spec.registryAuth?.password).toBe(PASSWORD);
    expect(loaded.history?.[0]?.spec.registryAuth?.password).toBe(PASSWORD);
    expect(loaded.placements[0]?.nodeId).toBe('n-1');
  });

  it('tells subscribers of the records as the hub holds them, passwords in the clear', async () => {
    const store = await open(new MasterKeyring(randomBytes(32)));
    const seen: StoreChange[] = [];
    store.subscribe((change) => seen.push(change));
    const web = service('web');
    await store.putService(web);
    expect(seen[0]?.after).toBe(web);
  });

  it('refuses to open with another key rather than serve a wrong password', async () => {
    const store = await open(new MasterKeyring(randomBytes(32)));
    await store.putService(service('web'));
    await stores.closeAll();
    await expect(open(new MasterKeyring(randomBytes(32)))).rejects.toThrow(StoreKeyMismatchError);
  });

  it('seals a password an older hub wrote in the clear at the first start with a key, and leaves it nowhere on disk', async () => {
    // Written by a hub from before passwords were sealed: no key, the password as given.
    const old = await open();
    await old.putService(service('web'));
    await old.putService({ ...service('web'), revision: 2 });
    await stores.closeAll();
    expect((await filesHolding(stores.dir, PASSWORD)).length).toBeGreaterThan(0);

    const keyring = new MasterKeyring(randomBytes(32));
    // Opening alone seals nothing: the key may not be on disk yet, and a crash then must lose nothing.
    await open(keyring);
    await stores.closeAll();
    expect((await filesHolding(stores.dir, PASSWORD)).length).toBeGreaterThan(0);
    const store = await open(keyring);
    await store.sealClearPasswords();
    expect(store.getService('web')?.spec.registryAuth?.password).toBe(PASSWORD);
    await stores.closeAll();
    expect(await filesHolding(stores.dir, PASSWORD)).toEqual([]);
    expect((await open(keyring)).getService('web')?.spec.registryAuth?.password).toBe(PASSWORD);
  });
});

