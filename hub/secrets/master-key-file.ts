import { randomBytes } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { ensurePrivateDir } from '../../shared/private-files.js';
import { writeFileAtomic } from '../../shared/atomic-file.js';
import { StoreKeyMismatchError } from '../store/store-key-mismatch.js';
import { MasterKeyring } from './master-keyring.js';
import { MASTER_KEY_BYTES, SealedValueError } from '../../shared/sealed-value.js';

/** The variable that gives the master key instead of the data dir's file (base64 of 32 bytes). */
export const MASTER_KEY_ENV = 'TETHER_MASTER_KEY';
/** The key before it, while a rotation with keys in the environment is unfinished (see key-rotation.ts). */
export const PREVIOUS_MASTER_KEY_ENV = 'TETHER_MASTER_KEY_PREV';
export const MASTER_KEY_FILE = 'master.key';
/** The key before the current one, kept while a rotation re-seals the records (see key-rotation.ts). */
export const PREVIOUS_MASTER_KEY_FILE = 'master.key.prev';

/** A master key that cannot be had: the start stops on its one-line message. */
export class MasterKeyError extends Error {
  readonly code = 'master_key';
}

export interface LoadedMasterKey {
  keyring: MasterKeyring;
  /** `generated`: no key existed; it is written only once the store proved to hold nothing sealed. */
  source: 'env' | 'file' | 'generated';
  /** The current key's bytes (written when generated, replaced by a rotation). */
  key: Buffer;
  /** The key of master.key.prev, when a rotation was cut short. */
  previous: Buffer | null;
  file: string;
}

const BASE64 = /^[A-Za-z0-9+/]*={0,2}$/;

/** The bytes of base64 `text` when they are a master key; otherwise why not. */
function decodeKey(text: string): Buffer | string {
  const trimmed = text.trim();
  if (trimmed.length % 4 !== 0 || !BASE64.test(trimmed)) return 'it is not base64';
  const key = Buffer.from(trimmed, 'base64');
  return key.length === MASTER_KEY_BYTES ? key : `it decodes to ${key.length}`;
}

function envKey(name: string, text: string): Buffer {
  const key = decodeKey(text);
  if (typeof key === 'string') throw new MasterKeyError(`${name} must be the base64 of ${MASTER_KEY_BYTES} bytes (${key}); \`openssl rand -base64 32\` makes one`);
  return key;
}

async function readKeyFile(file: string): Promise<Buffer | null> {
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return null;
    throw new MasterKeyError(`cannot read ${file}: ${(error as Error).message}`);
  }
  const key = decodeKey(text);
  if (typeof key === 'string') throw new MasterKeyError(`${file} must hold the base64 of ${MASTER_KEY_BYTES} bytes (${key}); restore it from a backup or set ${MASTER_KEY_ENV}`);
  return key;
}

/**
 * The master key from `env` (TETHER_MASTER_KEY, with TETHER_MASTER_KEY_PREV) or
 * `<dataDir>/master.key` (with master.key.prev): the second key is there while a rotation is
 * unfinished, so that values sealed under either open. Otherwise a new key, not written yet: a
 * start must first learn that the store holds nothing sealed under another (see openWithMasterKey).
 */
export async function loadMasterKey(dataDir: string, env: Record<string, string | undefined>): Promise<LoadedMasterKey> {
  const file = path.join(dataDir, MASTER_KEY_FILE);
  const fromEnv = env[MASTER_KEY_ENV];
  if (fromEnv !== undefined) {
    if (fromEnv.trim() === '') throw new MasterKeyError(`${MASTER_KEY_ENV} is set but empty: unset it to use ${file}, or give the base64 of ${MASTER_KEY_BYTES} bytes`);
    const key = envKey(MASTER_KEY_ENV, fromEnv);
    const fromPrevious = env[PREVIOUS_MASTER_KEY_ENV];
    const previous = fromPrevious === undefined || fromPrevious.trim() === '' ? null : envKey(PREVIOUS_MASTER_KEY_ENV, fromPrevious);
    return { keyring: new MasterKeyring(key, previous ? [previous] : []), source: 'env', key, previous, file };
  }
  const key = await readKeyFile(file);
  if (key === null) {
    const fresh = randomBytes(MASTER_KEY_BYTES);
    return { keyring: new MasterKeyring(fresh), source: 'generated', key: fresh, previous: null, file };
  }
  const previous = await readKeyFile(path.join(dataDir, PREVIOUS_MASTER_KEY_FILE));
  return { keyring: new MasterKeyring(key, previous ? [previous] : []), source: 'file', key, previous, file };
}

/**
 * Writes a key file so that a crash leaves the old file or the new one whole, never a torn key:
 * a temp file (0600), fsynced, renamed over it.
 */
export async function writeKeyFile(file: string, key: Buffer): Promise<void> {
  await ensurePrivateDir(path.dirname(file));
  await writeFileAtomic(file, `${key.toString('base64')}\n`, 0o600);
}

/** The one line a start stops on when the store's sealed values are not under the hub's key. */
export function keyMismatchLine(loaded: LoadedMasterKey, error: StoreKeyMismatchError): string {
  if (loaded.source === 'generated') {
    return `${loaded.file} is missing but the store holds values encrypted with a master key (${error.unknownKeyIds.join(', ')}): restore master.key or set ${MASTER_KEY_ENV}; a new key would leave them unreadable`;
  }
  return `the master key does not match the one the store's secrets were encrypted with; set ${MASTER_KEY_ENV} or restore master.key (the store's values are under key ${error.unknownKeyIds.join(', ')}, this hub holds ${loaded.keyring.currentKeyId})`;
}

/**
 * Loads the master key and opens the store with it (`openStore`, which checks every sealed value
 * against the keyring). A key the store's values were not sealed with is a MasterKeyError with
 * one clear line; a generated key is written only after the store opened, so that a missing key
 * file is never replaced by a new key over values sealed with the old one.
 */
export async function openWithMasterKey<S>(
  dataDir: string,
  env: Record<string, string | undefined>,
  openStore: (sealer: MasterKeyring) => Promise<S>,
): Promise<{ opened: S; keyring: MasterKeyring; source: LoadedMasterKey['source']; file: string }> {
  const loaded = await loadMasterKey(dataDir, env);
  let opened: S;
  try {
    opened = await openStore(loaded.keyring);
  } catch (error) {
    if (error instanceof StoreKeyMismatchError) throw new MasterKeyError(keyMismatchLine(loaded, error));
    // Under the right key yet not opening: damaged in a way the files' checksums did not catch.
    if (error instanceof SealedValueError) throw new MasterKeyError(`a value in the store cannot be decrypted with the master key: ${error.message}`);
    throw error;
  }
  if (loaded.source === 'generated') await writeKeyFile(loaded.file, loaded.key);
  return { opened, keyring: loaded.keyring, source: loaded.source, file: loaded.file };
}
