import { randomBytes } from 'node:crypto';
import { unlink } from 'node:fs/promises';
import path from 'node:path';
import type { LowdbStore } from '../store/lowdb-store.js';
import type { SecretRecord } from '../store/store.js';
import { StoreKeyMismatchError } from '../store/store-key-mismatch.js';
import { keyMismatchLine, loadMasterKey, MASTER_KEY_ENV, MasterKeyError, PREVIOUS_MASTER_KEY_ENV, PREVIOUS_MASTER_KEY_FILE, writeKeyFile, type LoadedMasterKey } from './master-key-file.js';
import { keyIdOf, MasterKeyring } from './master-keyring.js';
import { MASTER_KEY_BYTES, SealedValueError } from '../../shared/sealed-value.js';
import { previousSecretAad, secretAad } from './named-values.js';

export interface RotationOptions {
  dataDir: string;
  env: Record<string, string | undefined>;
  /** Opens the hub's store with a keyring (the hub must be stopped: the store has no lock). */
  openStore: (sealer: MasterKeyring) => Promise<LowdbStore>;
  /** Where the command's lines go (stdout): a key given in the environment is printed here, once. */
  print: (line: string) => void;
}

export interface RotationResult {
  fromKeyId: string;
  toKeyId: string;
  secrets: number;
  services: number;
  /** A rotation cut short was finished (its new key kept) rather than a new one begun. */
  finished: boolean;
}

/**
 * `tether-hub rotate-master-key`: every secret and registry password sealed again under a new key,
 * and no value under the old one left on disk.
 *
 * The order makes a crash at any step lose nothing, as a start holds both keys while the previous
 * one is still kept (master.key.prev, or TETHER_MASTER_KEY_PREV):
 *   0. the store is opened and every sealed value opened: one that does not stops it here;
 *   1. the old key is written to master.key.prev (atomically);
 *   2. the new key to master.key (atomically): from here a start holds both;
 *   3. every record is sealed again and written, and the sealed collections rewritten whole (their
 *      previous copies and change logs then hold the new ciphertexts only);
 *   4. master.key.prev is removed: only now is the old key no longer needed.
 * Run again after a crash, it finds master.key.prev and finishes that rotation (steps 3 and 4) with
 * the key master.key already holds, rather than begin another over values still under the old one.
 *
 * With the key in TETHER_MASTER_KEY, there is no file to write: the new key is printed before any
 * record changes, and a crash midway is finished by running it again with the new key in
 * TETHER_MASTER_KEY and the old one in TETHER_MASTER_KEY_PREV.
 */
export async function rotateMasterKey(opts: RotationOptions): Promise<RotationResult> {
  const loaded = await loadMasterKey(opts.dataDir, opts.env);
  if (loaded.source === 'generated') throw new MasterKeyError(`no master key to rotate: ${loaded.file} is missing and ${MASTER_KEY_ENV} is not set (a hub generates one at its first start)`);
  const previousFile = path.join(opts.dataDir, PREVIOUS_MASTER_KEY_FILE);
  if (loaded.previous !== null) {
    // Finishing: values may be under either key; all go under master.key's (or the variable's).
    const counts = await reseal(opts, loaded, loaded.keyring, async () => undefined);
    if (loaded.source === 'file') await removeFile(previousFile);
    opts.print(`finished a master key rotation that was cut short: ${counts.secrets} secrets and ${counts.services} registry passwords are now under key ${loaded.keyring.currentKeyId}`);
    if (loaded.source === 'env') opts.print(`unset ${PREVIOUS_MASTER_KEY_ENV}: no value needs key ${keyIdOf(loaded.previous)} any more`);
    return { fromKeyId: keyIdOf(loaded.previous), toKeyId: loaded.keyring.currentKeyId, ...counts, finished: true };
  }
  const newKey = randomBytes(MASTER_KEY_BYTES);
  const keyring = new MasterKeyring(newKey, [loaded.key]);
  const counts = await reseal(opts, loaded, keyring, async () => {
    if (loaded.source === 'file') {
      await writeKeyFile(previousFile, loaded.key);
      await writeKeyFile(loaded.file, newKey);
    } else {
      // Printed before any record changes: once the first is written, only this key opens it.
      opts.print(`new master key ${keyring.currentKeyId}: set ${MASTER_KEY_ENV}=${newKey.toString('base64')} for the hub (this command cannot change its environment)`);
      opts.print(`should this command stop before it says it is done, run it again with ${MASTER_KEY_ENV} set to the new key and ${PREVIOUS_MASTER_KEY_ENV} to the old one`);
    }
  });
  if (loaded.source === 'file') await removeFile(previousFile);
  opts.print(`rotated the master key from ${keyIdOf(loaded.key)} to ${keyring.currentKeyId}: ${counts.secrets} secrets and ${counts.services} registry passwords re-encrypted`);
  return { fromKeyId: keyIdOf(loaded.key), toKeyId: keyring.currentKeyId, ...counts, finished: false };
}

/**
 * Opens the store with `keyring` and every secret's value (the store opened every registry
 * password already): a value that does not open stops the rotation before anything changed.
 * Then `beforeWrite` (the new key put where a start finds it), and every secret and registry
 * password sealed under the keyring's current key and written, the sealed files rewritten whole.
 */
async function reseal(opts: RotationOptions, loaded: LoadedMasterKey, keyring: MasterKeyring, beforeWrite: () => Promise<void>): Promise<{ secrets: number; services: number }> {
  let store: LowdbStore;
  try {
    store = await opts.openStore(keyring);
  } catch (error) {
    throw asKeyError(loaded, error);
  }
  let secrets = 0;
  let services = 0;
  try {
    let opened: Array<{ secret: SecretRecord; value: Buffer; previous: Buffer | null }>;
    try {
      opened = [...store.listSecrets()].map((secret) => ({
        secret,
        value: keyring.open(secret.sealed, secretAad(secret.name)),
        previous: secret.previous ? keyring.open(secret.previous.sealed, previousSecretAad(secret.name, secret.previous.version)) : null,
      }));
    } catch (error) {
      throw asKeyError(loaded, error);
    }
    await beforeWrite();
    for (const { secret, value, previous } of opened) {
      const resealed: SecretRecord = { ...secret, sealed: keyring.seal(value, secretAad(secret.name)) };
      if (secret.previous && previous) resealed.previous = { ...secret.previous, sealed: keyring.seal(previous, previousSecretAad(secret.name, secret.previous.version)) };
      await store.putSecret(resealed);
      secrets++;
    }
    for (const service of [...store.listServices()]) {
      // The store seals a record's passwords under the keyring's current key as it is put.
      const sealsAny = service.spec.registryAuth !== null || (service.history ?? []).some((r) => r.spec.registryAuth !== null);
      await store.putService({ ...service });
      if (sealsAny) services++;
    }
    await store.rewriteSealed();
  } finally {
    await store.close();
  }
  return { secrets, services };
}

/** The one line a rotation stops on for a key that does not fit or a value that does not open; other errors as they are. */
function asKeyError(loaded: LoadedMasterKey, error: unknown): unknown {
  if (error instanceof StoreKeyMismatchError) return new MasterKeyError(keyMismatchLine(loaded, error));
  if (error instanceof SealedValueError) return new MasterKeyError(`cannot rotate: a value in the store cannot be decrypted: ${error.message}`);
  return error;
}

async function removeFile(file: string): Promise<void> {
  await unlink(file).catch((error: NodeJS.ErrnoException) => {
    if (error.code !== 'ENOENT') throw error;
  });
}
