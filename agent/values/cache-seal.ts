import { createCipheriv, createDecipheriv, createHash, randomBytes } from 'node:crypto';

/**
 * AES-256-GCM for the secrets of the agent's target cache: the hub's scheme (its sealed values),
 * kept apart because agent and hub share no code but the protocol.
 */
export const CACHE_KEY_BYTES = 32;
const NONCE_BYTES = 12;
const TAG_BYTES = 16;

/** A sealed value's fields, base64; `keyId` names the key (its digest's start), never any of it. */
export interface SealedBytes {
  keyId: string;
  nonce: string;
  ciphertext: string;
  tag: string;
}

/** A sealed value that does not open: another key, damage, or one moved to another name. */
export class UnsealError extends Error {
  readonly code = 'cache_value_unreadable';
}

export function cacheKeyIdOf(key: Buffer): string {
  return createHash('sha256').update(key).digest('hex').slice(0, 8);
}

/** A fresh random nonce per seal; `associatedData` (the value's source, name and version) binds it to its name. */
export function sealBytes(key: Buffer, plaintext: Buffer, associatedData: string): SealedBytes {
  const nonce = randomBytes(NONCE_BYTES);
  const cipher = createCipheriv('aes-256-gcm', key, nonce, { authTagLength: TAG_BYTES });
  cipher.setAAD(Buffer.from(associatedData, 'utf8'));
  const ciphertext = Buffer.concat([cipher.update(plaintext), cipher.final()]);
  return { keyId: cacheKeyIdOf(key), nonce: nonce.toString('base64'), ciphertext: ciphertext.toString('base64'), tag: cipher.getAuthTag().toString('base64') };
}

/** The plaintext, or an UnsealError: GCM's tag covers everything, so a change is an error, never garbage. */
export function openBytes(key: Buffer, sealed: SealedBytes, associatedData: string): Buffer {
  const keyId = cacheKeyIdOf(key);
  if (sealed.keyId !== keyId) throw new UnsealError(`sealed with cache key ${sealed.keyId}, not with this one (${keyId})`);
  const nonce = Buffer.from(sealed.nonce, 'base64');
  const tag = Buffer.from(sealed.tag, 'base64');
  if (nonce.length !== NONCE_BYTES || tag.length !== TAG_BYTES) throw new UnsealError('malformed (nonce or tag of the wrong length)');
  try {
    const decipher = createDecipheriv('aes-256-gcm', key, nonce, { authTagLength: TAG_BYTES });
    decipher.setAAD(Buffer.from(associatedData, 'utf8'));
    decipher.setAuthTag(tag);
    return Buffer.concat([decipher.update(Buffer.from(sealed.ciphertext, 'base64')), decipher.final()]);
  } catch {
    throw new UnsealError('it does not decrypt (damaged, or moved from another value)');
  }
}
