import { randomBytes } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { keyIdOf, MasterKeyring } from '../../hub/secrets/master-keyring.js';
import { NamedValues } from '../../hub/secrets/named-values.js';
import { openSealed, sealValue, SealedValueError, type SealedValue } from '../../shared/sealed-value.js';
import type { SecretRecord, Store } from '../../hub/store/store.js';

const key = randomBytes(32);
const plain = Buffer.from('hunter2: the database password');

/** A copy of `sealed` with one byte of a base64 field flipped. */
function flipped(sealed: SealedValue, field: 'ciphertext' | 'nonce' | 'tag'): SealedValue {
  const bytes = Buffer.from(sealed[field], 'base64');
  bytes[0] = bytes[0]! ^ 0x01;
  return { ...sealed, [field]: bytes.toString('base64') };
}

describe('sealed values (AES-256-GCM)', () => {
  it('opens what it sealed, and never stores the value itself', () => {
    const sealed = sealValue(key, plain, 'secret:db');
    expect(openSealed(key, sealed, 'secret:db').equals(plain)).toBe(true);
    expect(JSON.stringify(sealed)).not.toContain('hunter2');
    expect(JSON.stringify(sealed)).not.toContain(plain.toString('base64'));
    expect(sealed.keyId).toBe(keyIdOf(key));
  });

  it('takes a fresh nonce for every seal, so one value sealed twice looks different', () => {
    const a = sealValue(key, plain, 'secret:db');
    const b = sealValue(key, plain, 'secret:db');
    expect(Buffer.from(a.nonce, 'base64')).toHaveLength(12);
    expect(a.nonce).not.toBe(b.nonce);
    expect(a.ciphertext).not.toBe(b.ciphertext);
  });

  it.each(['ciphertext', 'nonce', 'tag'] as const)('refuses a value whose %s has a flipped byte (an error, not garbage)', (field) => {
    const sealed = sealValue(key, plain, 'secret:db');
    expect(() => openSealed(key, flipped(sealed, field), 'secret:db')).toThrow(SealedValueError);
    expect(() => openSealed(key, flipped(sealed, field), 'secret:db')).toThrow(/cannot be decrypted/);
  });

  it('refuses a value moved to another record (associated data)', () => {
    const sealed = sealValue(key, plain, 'secret:db');
    expect(() => openSealed(key, sealed, 'secret:other')).toThrow(SealedValueError);
    expect(() => openSealed(key, sealed, 'config:db')).toThrow(SealedValueError);
  });

  it('refuses a value sealed with another key, by its key id, before trying to decrypt', () => {
    const sealed = sealValue(key, plain, 'secret:db');
    expect(() => openSealed(randomBytes(32), sealed, 'secret:db')).toThrow(/encrypted with master key [0-9a-f]{8}/);
  });

  it('refuses a malformed record rather than reading it', () => {
    const sealed = sealValue(key, plain, 'secret:db');
    expect(() => openSealed(key, { ...sealed, nonce: 'AAAA' }, 'secret:db')).toThrow(SealedValueError);
    expect(() => openSealed(key, { ...sealed, tag: '' }, 'secret:db')).toThrow(SealedValueError);
  });
});

describe('the master keyring', () => {
  it('seals with its current key and opens with whichever key a value names', () => {
    const old = randomBytes(32);
    const current = randomBytes(32);
    const byOld = sealValue(old, plain, 'secret:db');
    const ring = new MasterKeyring(current, [old]);
    expect(ring.open(byOld, 'secret:db').equals(plain)).toBe(true);
    const fresh = ring.seal(plain, 'secret:db');
    expect(fresh.keyId).toBe(keyIdOf(current));
    expect(new MasterKeyring(current).open(fresh, 'secret:db').equals(plain)).toBe(true);
  });

  it('knows a key id only when it holds that key', () => {
    const ring = new MasterKeyring(key);
    expect(ring.knows(keyIdOf(key))).toBe(true);
    expect(ring.knows(keyIdOf(randomBytes(32)))).toBe(false);
  });

  it('refuses a key that is not 32 bytes', () => {
    expect(() => new MasterKeyring(randomBytes(16))).toThrow(/32 bytes/);
  });
});

describe('a secret\'s previous version', () => {
  it('is kept sealed for its own version: it opens as that version only, never as the current one', async () => {
    const records = new Map<string, SecretRecord>();
    const store = {
      getSecret: (name: string) => records.get(name),
      listSecrets: () => records.values(),
      putSecret: async (r: SecretRecord) => void records.set(r.name, r),
    } as unknown as Store;
    const secrets = new NamedValues('secret', { store, sealer: new MasterKeyring(randomBytes(32)), usedBy: () => [] });
    await secrets.put('db', Buffer.from('one'));
    await secrets.put('db', Buffer.from('two'));
    expect(secrets.valueOf('db', 2)?.toString()).toBe('two');
    expect(secrets.valueOf('db', 1)?.toString()).toBe('one');
    expect(secrets.holdsVersion('db', 1)).toBe(true);
    await secrets.put('db', Buffer.from('three'));
    expect(secrets.holdsVersion('db', 1)).toBe(false);
    expect(secrets.valueOf('db', 1)).toBeUndefined();
    // Swapped into the current slot, the previous ciphertext does not open (an error, not the wrong value).
    const record = records.get('db')!;
    records.set('db', { ...record, sealed: record.previous!.sealed });
    expect(() => secrets.open(records.get('db')!)).toThrow();
    expect(secrets.valueOf('db', 3)).toBeUndefined();
  });
});
