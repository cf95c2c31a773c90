import { createCipheriv, createDecipheriv, createHash, randomBytes } from 'node:crypto';

/**
 * Values sealed at rest with AES-256-GCM: the hub's secrets and registry passwords (under its
 * master key), and the secrets of an agent's target cache (under the node's own cache key).
 */

/** AES-256-GCM: 32-byte keys, the 12-byte nonce GCM is built for, its full 16-byte tag. */
export const SEALING_KEY_BYTES = 32;
export const MASTER_KEY_BYTES = SEALING_KEY_BYTES;
const NONCE_BYTES = 12;
const TAG_BYTES = 16;

/**
 * A value encrypted at rest, as the store keeps it (base64 fields). `keyId` names the master key
 * that sealed it, so that a hub given another key says so at start instead of failing later, and
 * a keyring holding two keys (during a rotation) knows which one to use.
 */
export interface SealedValue {
  keyId: string;
  nonce: string;
  ciphertext: string;
  tag: string;
}

/** A sealed value that cannot be opened: another key, damage, or a value moved to another record. */
export class SealedValueError extends Error {
  readonly code = 'sealed_value_unreadable';
}

/** The first 8 hex chars of the key's sha256: names a key without revealing anything usable of it. */
export function keyIdOf(key: Buffer): string {
  return createHash('sha256').update(key).digest('hex').slice(0, 8);
}

/**
 * Encrypts `plaintext` with a fresh random nonce (never reused under one key: GCM's one rule), and
 * binds it to `associatedData` (the record's kind and name), so that a ciphertext copied into
 * another record fails to open rather than passing for that record's value.
 */
export function sealValue(key: Buffer, plaintext: Buffer, associatedData: string): SealedValue {
  const nonce = randomBytes(NONCE_BYTES);
  const cipher = createCipheriv('aes-256-gcm', key, nonce, { authTagLength: TAG_BYTES });
  cipher.setAAD(Buffer.from(associatedData, 'utf8'));
  const ciphertext = Buffer.concat([cipher.update(plaintext), cipher.final()]);
  return { keyId: keyIdOf(key), nonce: nonce.toString('base64'), ciphertext: ciphertext.toString('base64'), tag: cipher.getAuthTag().toString('base64') };
}

/**
 * Decrypts a sealed value, or throws a SealedValueError: GCM checks the tag over the ciphertext,
 * nonce and associated data, so any change is an error, never garbage. Messages name the record
 * and the key ids (`keyKind`: which key that is), never any of the value.
 */
export function openSealed(key: Buffer, sealed: SealedValue, associatedData: string, keyKind = 'master key'): Buffer {
  const keyId = keyIdOf(key);
  if (sealed.keyId !== keyId) throw new SealedValueError(`${associatedData}: encrypted with ${keyKind} ${sealed.keyId}, not with this one (${keyId})`);
  const nonce = Buffer.from(sealed.nonce, 'base64');
  const tag = Buffer.from(sealed.tag, 'base64');
  if (nonce.length !== NONCE_BYTES || tag.length !== TAG_BYTES) throw new SealedValueError(`${associatedData}: malformed encrypted value (nonce or tag of the wrong length)`);
  try {
    const decipher = createDecipheriv('aes-256-gcm', key, nonce, { authTagLength: TAG_BYTES });
    decipher.setAAD(Buffer.from(associatedData, 'utf8'));
    decipher.setAuthTag(tag);
    return Buffer.concat([decipher.update(Buffer.from(sealed.ciphertext, 'base64')), decipher.final()]);
  } catch {
    throw new SealedValueError(`${associatedData}: the encrypted value cannot be decrypted (damaged, or moved from another record)`);
  }
}

/** Whether a stored field is a sealed value (what a start checks every one of). */
export function isSealedValue(value: unknown): value is SealedValue {
  if (value === null || typeof value !== 'object') return false;
  const v = value as Record<string, unknown>;
  return typeof v.keyId === 'string' && typeof v.nonce === 'string' && typeof v.ciphertext === 'string' && typeof v.tag === 'string';
}
