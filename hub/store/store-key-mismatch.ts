/**
 * The store holds values sealed with master keys the hub was not given (or with none given at
 * all): it must not start, lest it serve values it cannot read or seal new ones under a key that
 * leaves the old ones unreadable. Names key ids only, never anything of a value.
 */
export class StoreKeyMismatchError extends Error {
  readonly code = 'store_key_mismatch';

  constructor(readonly unknownKeyIds: string[]) {
    super(`the store holds values encrypted with master key ${unknownKeyIds.join(', ')}, which the hub was not given`);
  }
}
