import { keyIdOf, MASTER_KEY_BYTES, openSealed, sealValue, SealedValueError, type SealedValue } from '../../shared/sealed-value.js';

export { keyIdOf } from '../../shared/sealed-value.js';

/**
 * What seals values for the store and opens them again: the small interface the store and the
 * secrets keep (decrypting is only needed to send a value on, and to re-seal it).
 */
export interface ValueSealer {
  /** Id of the key new values are sealed with. */
  readonly currentKeyId: string;
  seal(plaintext: Buffer, associatedData: string): SealedValue;
  open(sealed: SealedValue, associatedData: string): Buffer;
  /** Whether a value sealed under this key id can be opened. */
  knows(keyId: string): boolean;
}

/**
 * The hub's master key, and the one before it while a rotation is unfinished (a crash between
 * writing the new key and re-sealing every record): values name their key by id, so both open.
 */
export class MasterKeyring implements ValueSealer {
  readonly currentKeyId: string;
  private readonly byId = new Map<string, Buffer>();

  constructor(
    private readonly current: Buffer,
    previous: Buffer[] = [],
  ) {
    for (const key of [current, ...previous]) {
      if (key.length !== MASTER_KEY_BYTES) throw new Error(`a master key is ${MASTER_KEY_BYTES} bytes, got ${key.length}`);
      if (!this.byId.has(keyIdOf(key))) this.byId.set(keyIdOf(key), key);
    }
    this.currentKeyId = keyIdOf(current);
  }

  seal(plaintext: Buffer, associatedData: string): SealedValue {
    return sealValue(this.current, plaintext, associatedData);
  }

  open(sealed: SealedValue, associatedData: string): Buffer {
    const key = this.byId.get(sealed.keyId);
    if (!key) throw new SealedValueError(`${associatedData}: encrypted with master key ${sealed.keyId}, which this hub does not hold (it holds ${[...this.byId.keys()].join(', ')})`);
    return openSealed(key, sealed, associatedData);
  }

  knows(keyId: string): boolean {
    return this.byId.has(keyId);
  }
}
