import { createHash } from 'node:crypto';
import { VALUE_NAME_PATTERN } from '../../shared/container-spec.js';
import type { FieldError } from '../../shared/validation.js';
import type { ValueSealer } from './master-keyring.js';
import { SealedValueError } from '../../shared/sealed-value.js';
import type { ConfigRecord, SecretRecord, Store } from '../store/store.js';

/** Largest value a config or secret holds, in bytes (decoded): a target carries it whole. */
export { MAX_VALUE_BYTES } from '../../shared/protocol.js';
/**
 * Hex chars of a value's sha256 that views show: enough to tell versions apart. Of a guessable
 * secret (a short password) they still confirm a guess: whoever reads them must be trusted as an
 * admin is.
 */
export const DIGEST_PREFIX_CHARS = 12;

/**
 * How many of each kind the hub keeps, and their bytes in all: it holds every value in memory
 * (a config as base64), so these bound that (about 85 MiB per kind at most).
 */
export const VALUE_LIMITS = { maxCount: 1000, maxTotalBytes: 64 * 1024 * 1024 };
export type ValueLimits = typeof VALUE_LIMITS;

const VALUE_NAME_RE = new RegExp(VALUE_NAME_PATTERN);

export function validateValueName(name: string): FieldError | null {
  return VALUE_NAME_RE.test(name) ? null : { path: 'name', message: 'must be 1-63 lower-case letters, digits, ".", "_" or "-", starting with a letter or digit' };
}

export type ValueKind = 'config' | 'secret';

/** Associated data of a secret's sealed value: moved to another record, it does not open. */
export const secretAad = (name: string): string => `secret:${name}`;
/** Associated data of a secret's previous value: it never opens as the current one, nor as another version. */
export const previousSecretAad = (name: string, version: number): string => `secret:${name}@${version}`;

/**
 * Which services use a config or secret, by name (their specs' `secrets`, `configs` and `env`
 * references): a delete of one in use is refused with them.
 */
export type UsedByLookup = (kind: ValueKind, name: string) => string[];
export const usedByNone: UsedByLookup = () => [];

/** A config or secret as the API shows it; `value`/`valueBase64` only for a config read alone. */
export interface ValueView {
  name: string;
  version: number;
  size: number;
  digest: string;
  createdAt: string;
  updatedAt: string;
  usedBy: string[];
  value?: string;
  valueBase64?: string;
}

export type PutOutcome = 'created' | 'updated' | 'unchanged';
/** A put refused by a limit: the request is sound, what the hub holds already refuses it. */
export type PutRefused = { outcome: 'refused'; code: string; message: string };
export type DeleteResult = { kind: 'deleted' } | { kind: 'missing' } | { kind: 'in_use'; services: string[] };

const sha256 = (bytes: Buffer): string => createHash('sha256').update(bytes).digest('hex');
const utf8 = new TextDecoder('utf-8', { fatal: true });

/** The value as text when it reads as UTF-8 without NUL (what a JSON reader can take as it is), else base64. */
function shownValue(bytes: Buffer): { value: string } | { valueBase64: string } {
  if (!bytes.includes(0)) {
    try {
      return { value: utf8.decode(bytes) };
    } catch {
      // Not UTF-8: shown as base64 below.
    }
  }
  return { valueBase64: bytes.toString('base64') };
}

type RecordOf<K extends ValueKind> = K extends 'config' ? ConfigRecord : SecretRecord;

/**
 * The hub's configs or its secrets: named values with versions. A secret's value is sealed with
 * the master key before it reaches the store and never comes out of here in a view; `open` is
 * for what sends it on (agents, later). A change of value makes a new version; the same value
 * again changes nothing.
 */
export class NamedValues<K extends ValueKind> {
  constructor(
    readonly kind: K,
    private readonly deps: {
      store: Store;
      sealer: ValueSealer;
      usedBy: UsedByLookup;
      limits?: ValueLimits;
      /** A new version of `name` is durable: the services that use it roll to it. */
      changed?: (name: string) => void;
      /** Why `size` bytes for `name` would be too much for a service that names it; null when they fit. */
      usersRefuse?: (kind: ValueKind, name: string, size: number) => string | null;
    },
  ) {}

  get(name: string): RecordOf<K> | undefined {
    const { store } = this.deps;
    return (this.kind === 'config' ? store.getConfig(name) : store.getSecret(name)) as RecordOf<K> | undefined;
  }

  list(): Array<RecordOf<K>> {
    const { store } = this.deps;
    const all = [...(this.kind === 'config' ? store.listConfigs() : store.listSecrets())] as Array<RecordOf<K>>;
    return all.sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
  }

  /**
   * Stores `bytes` as the value of `name`; resolves once it is durable (a refused write rejects
   * with a StoreWriteError and leaves the record as it was). Nothing awaits between reading the
   * current record and putting the new one, so two puts of one name never share a version.
   */
  async put(name: string, bytes: Buffer): Promise<{ outcome: PutOutcome; record: RecordOf<K> } | PutRefused> {
    const current = this.get(name);
    const digest = sha256(bytes);
    if (current && this.holds(current, bytes, digest)) return { outcome: 'unchanged', record: current };
    const refused = this.overLimit(current, bytes.length);
    if (refused) return refused;
    const now = new Date().toISOString();
    const base = { name, version: (current?.version ?? 0) + 1, size: bytes.length, createdAt: current?.createdAt ?? now, updatedAt: now };
    const { store, sealer } = this.deps;
    const outcome = current ? 'updated' : 'created';
    if (this.kind === 'config') {
      const config = current as ConfigRecord | undefined;
      const record: ConfigRecord = { ...base, digest, value: bytes.toString('base64') };
      if (config) record.previous = { version: config.version, size: config.size, digest: config.digest, updatedAt: config.updatedAt, value: config.value };
      await store.putConfig(record);
      this.deps.changed?.(name);
      return { outcome, record: record as RecordOf<K> };
    }
    // Only the prefix the API shows is kept: a whole digest of a weak secret beside its ciphertext
    // would let a thief of the store test guesses against it at full length.
    const record: SecretRecord = { ...base, digest: digest.slice(0, DIGEST_PREFIX_CHARS), sealed: sealer.seal(bytes, secretAad(name)) };
    const previous = current ? this.previousOf(current as SecretRecord) : null;
    if (previous) record.previous = previous;
    await store.putSecret(record);
    this.deps.changed?.(name);
    return { outcome, record: record as RecordOf<K> };
  }

  /** The current value of `secret`, sealed again as a previous one; null when it no longer opens (nothing to keep). */
  private previousOf(secret: SecretRecord): SecretRecord['previous'] | null {
    let value: Buffer;
    try {
      value = this.open(secret);
    } catch (error) {
      if (error instanceof SealedValueError) return null;
      throw error;
    }
    const { version, size, digest, updatedAt } = secret;
    return { version, size, digest, updatedAt, sealed: this.deps.sealer.seal(value, previousSecretAad(secret.name, version)) };
  }

  /** The current version of `name`; undefined when there is none. */
  currentVersion(name: string): number | undefined {
    return this.get(name)?.version;
  }

  /** Whether the hub still holds `version` of `name`: the current one, or the one before it. */
  holdsVersion(name: string, version: number): boolean {
    const record = this.get(name);
    return record !== undefined && (record.version === version || record.previous?.version === version);
  }

  /**
   * The bytes of `version` of `name`, for a target that carries them to a node whose replica
   * names it; undefined when the hub no longer holds that version (or a secret's no longer opens).
   */
  valueOf(name: string, version: number): Buffer | undefined {
    const record = this.get(name);
    if (!record) return undefined;
    try {
      if (this.kind === 'config') {
        const config = record as ConfigRecord;
        if (config.version === version) return Buffer.from(config.value, 'base64');
        if (config.previous?.version === version) return Buffer.from(config.previous.value, 'base64');
        return undefined;
      }
      const secret = record as SecretRecord;
      if (secret.version === version) return this.open(secret);
      if (secret.previous?.version === version) return this.deps.sealer.open(secret.previous.sealed, previousSecretAad(secret.name, version));
      return undefined;
    } catch (error) {
      if (error instanceof SealedValueError) return undefined;
      throw error;
    }
  }

  /** Why a value of `size` bytes in place of `current` would take the kind past its limits; null when it fits. */
  private overLimit(current: RecordOf<K> | undefined, size: number): PutRefused | null {
    const { maxCount, maxTotalBytes } = this.deps.limits ?? VALUE_LIMITS;
    const usersRefusal = current ? this.deps.usersRefuse?.(this.kind, current.name, size) : null;
    if (usersRefusal) return { outcome: 'refused', code: `${this.kind}_too_large_for_service`, message: usersRefusal };
    const all = this.list();
    const plural = `${this.kind}s`;
    if (!current && all.length >= maxCount) {
      return { outcome: 'refused', code: `too_many_${plural}`, message: `the hub keeps at most ${maxCount} ${plural}: delete one first` };
    }
    // Previous values count: the hub holds them too. The new one's previous is the current one.
    const held = (r: RecordOf<K>) => r.size + (r.previous?.size ?? 0);
    const totalBytes = all.reduce((n, r) => n + held(r), 0) - (current ? held(current) : 0) + size + (current?.size ?? 0);
    if (totalBytes > maxTotalBytes) {
      return { outcome: 'refused', code: `${plural}_full`, message: `the hub keeps at most ${maxTotalBytes} bytes of ${plural} in all; this value would take them to ${totalBytes}: delete some first` };
    }
    return null;
  }

  /** Whether `current` holds these bytes: a config by its digest, a secret by its value (opened, compared, dropped). */
  private holds(current: RecordOf<K>, bytes: Buffer, digest: string): boolean {
    if (current.size !== bytes.length) return false;
    if (this.kind === 'config') return current.digest === digest;
    try {
      return this.open(current as SecretRecord).equals(bytes);
    } catch (error) {
      // A stored value that no longer opens (damaged) is replaced by the new one, never a 500 for good.
      if (error instanceof SealedValueError) return false;
      throw error;
    }
  }

  async delete(name: string): Promise<DeleteResult> {
    if (!this.get(name)) return { kind: 'missing' };
    const services = this.deps.usedBy(this.kind, name);
    if (services.length > 0) return { kind: 'in_use', services };
    const { store } = this.deps;
    await (this.kind === 'config' ? store.deleteConfig(name) : store.deleteSecret(name));
    return { kind: 'deleted' };
  }

  /** A secret's value, for what must send it on; never for a view. */
  open(secret: SecretRecord): Buffer {
    return this.deps.sealer.open(secret.sealed, secretAad(secret.name));
  }

  /** What the API shows: a config's value only when asked for one (`withValue`), a secret's never. */
  view(record: RecordOf<K>, withValue = false): ValueView {
    const view: ValueView = {
      name: record.name,
      version: record.version,
      size: record.size,
      digest: record.digest.slice(0, DIGEST_PREFIX_CHARS),
      createdAt: record.createdAt,
      updatedAt: record.updatedAt,
      usedBy: this.deps.usedBy(this.kind, record.name),
    };
    if (withValue && this.kind === 'config') Object.assign(view, shownValue(Buffer.from((record as ConfigRecord).value, 'base64')));
    return view;
  }
}
