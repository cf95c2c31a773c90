import { randomBytes } from 'node:crypto';
import { mkdtemp, readFile, rm, stat, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { keyIdOf } from '../../hub/secrets/master-keyring.js';
import { loadMasterKey, MasterKeyError, openWithMasterKey } from '../../hub/secrets/master-key-file.js';
import { SealedValueError } from '../../shared/sealed-value.js';
import { StoreKeyMismatchError } from '../../hub/store/store-key-mismatch.js';

let dir: string;
beforeEach(async () => {
  dir = await mkdtemp(path.join(os.tmpdir(), 'tether-master-key-'));
});
afterEach(async () => {
  await rm(dir, { recursive: true, force: true });
});

const keyFile = () => path.join(dir, 'master.key');
const exists = (file: string) => stat(file).then(
  () => true,
  () => false,
);

describe('loading the master key', () => {
  it('generates a key at first start and writes it 0600 once the store opened', async () => {
    const opened = await openWithMasterKey(dir, {}, async (sealer) => sealer.currentKeyId);
    expect(opened.source).toBe('generated');
    const st = await stat(keyFile());
    expect(st.mode & 0o777).toBe(0o600);
    const key = Buffer.from((await readFile(keyFile(), 'utf8')).trim(), 'base64');
    expect(key).toHaveLength(32);
    expect(opened.opened).toBe(keyIdOf(key));
    // The next start reads the same key.
    const again = await openWithMasterKey(dir, {}, async (sealer) => sealer.currentKeyId);
    expect(again.source).toBe('file');
    expect(again.opened).toBe(keyIdOf(key));
  });

  it('takes TETHER_MASTER_KEY (base64 of 32 bytes) and writes no key file', async () => {
    const key = randomBytes(32);
    const loaded = await loadMasterKey(dir, { TETHER_MASTER_KEY: key.toString('base64') });
    expect(loaded.source).toBe('env');
    expect(loaded.keyring.currentKeyId).toBe(keyIdOf(key));
    await openWithMasterKey(dir, { TETHER_MASTER_KEY: key.toString('base64') }, async () => undefined);
    expect(await exists(keyFile())).toBe(false);
  });

  it.each([
    ['', /TETHER_MASTER_KEY is set but empty/],
    ['not base64 at all!', /TETHER_MASTER_KEY must be the base64 of 32 bytes/],
    [randomBytes(16).toString('base64'), /TETHER_MASTER_KEY must be the base64 of 32 bytes \(it decodes to 16\)/],
    [randomBytes(33).toString('base64'), /it decodes to 33/],
  ])('refuses TETHER_MASTER_KEY=%j with a clear error', async (value, message) => {
    await expect(loadMasterKey(dir, { TETHER_MASTER_KEY: value })).rejects.toThrow(MasterKeyError);
    await expect(loadMasterKey(dir, { TETHER_MASTER_KEY: value })).rejects.toThrow(message);
  });

  it('refuses a master.key that is not a key, naming the file', async () => {
    await writeFile(keyFile(), 'short\n', { mode: 0o600 });
    await expect(loadMasterKey(dir, {})).rejects.toThrow(new RegExp(`${keyFile()} must hold the base64 of 32 bytes`));
  });

  it('never generates a key over values sealed with another: a missing file is an error, and nothing is written', async () => {
    const sealedWith = keyIdOf(randomBytes(32));
    const refuse = async () => {
      throw new StoreKeyMismatchError([sealedWith]);
    };
    const error = await openWithMasterKey(dir, {}, refuse).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(MasterKeyError);
    expect((error as Error).message).toMatch(/master\.key is missing but the store holds values encrypted with a master key/);
    expect((error as Error).message).not.toContain('\n');
    expect(await exists(keyFile())).toBe(false);
  });

  it('names a wrong key (file or variable) in one line', async () => {
    const sealedWith = keyIdOf(randomBytes(32));
    const refuse = async () => {
      throw new StoreKeyMismatchError([sealedWith]);
    };
    await openWithMasterKey(dir, {}, async () => undefined);
    await expect(openWithMasterKey(dir, {}, refuse)).rejects.toThrow(
      "the master key does not match the one the store's secrets were encrypted with; set TETHER_MASTER_KEY or restore master.key",
    );
    await expect(openWithMasterKey(dir, { TETHER_MASTER_KEY: randomBytes(32).toString('base64') }, refuse)).rejects.toThrow(/does not match/);
  });

  it('holds master.key.prev beside the key (a rotation cut short), so values under either open', async () => {
    const old = randomBytes(32);
    const current = randomBytes(32);
    await writeFile(keyFile(), `${current.toString('base64')}\n`, { mode: 0o600 });
    await writeFile(`${keyFile()}.prev`, `${old.toString('base64')}\n`, { mode: 0o600 });
    const loaded = await loadMasterKey(dir, {});
    expect(loaded.keyring.currentKeyId).toBe(keyIdOf(current));
    expect(loaded.keyring.knows(keyIdOf(old))).toBe(true);
  });

  it('holds TETHER_MASTER_KEY_PREV beside TETHER_MASTER_KEY (a rotation cut short), and refuses a bad one', async () => {
    const old = randomBytes(32);
    const current = randomBytes(32);
    const loaded = await loadMasterKey(dir, { TETHER_MASTER_KEY: current.toString('base64'), TETHER_MASTER_KEY_PREV: old.toString('base64') });
    expect(loaded.keyring.currentKeyId).toBe(keyIdOf(current));
    expect(loaded.keyring.knows(keyIdOf(old))).toBe(true);
    await expect(loadMasterKey(dir, { TETHER_MASTER_KEY: current.toString('base64'), TETHER_MASTER_KEY_PREV: 'nope' })).rejects.toThrow(/TETHER_MASTER_KEY_PREV must be the base64 of 32 bytes/);
  });

  it('stops on a sealed value that does not open with one line naming its record, not a stack trace', async () => {
    const refuse = async () => {
      throw new SealedValueError('registry-password:web: the encrypted value cannot be decrypted (damaged, or moved from another record)');
    };
    const error = await openWithMasterKey(dir, {}, refuse).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(MasterKeyError);
    expect((error as Error).message).toMatch(/^a value in the store cannot be decrypted with the master key: registry-password:web: /);
    expect(await exists(keyFile())).toBe(false);
  });
});

