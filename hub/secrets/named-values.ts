import { createHash } from 'node:crypto';
import { VALUE_NAME_PATTERN } from '../../shared/container-spec.js';
import type { FieldError } from '../../shared/validation.js';
import type { ValueSealer } from './master-keyring.js';
import { SealedValueError } from './sealed-value.js';
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

/**
 * Which services use a config or secret, by name. Services cannot name one yet: the spec fields
 * that do (`secrets`, `configs`, `env` references) fill this in, and a delete of one in use is
 * refused with them.
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
    private readonly deps: { store: Store; sealer: ValueSealer; usedBy: UsedByLookup; limits?: ValueLimits },
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
    if (this.kind === 'config') {
      const record: ConfigRecord = { ...base, digest, value: bytes.toString('base64') };
      await store.putConfig(record);
      return { outcome: current ? 'updated' : 'created', record: record as RecordOf<K> };
    }
    // Only the prefix the API shows is kept: a whole digest of a weak secret beside its ciphertext
    // would let a thief of the store test guesses against it at full length.
    const record: SecretRecord = { ...base, digest: digest.slice(0, DIGEST_PREFIX_CHARS), sealed: sealer.seal(bytes, secretAad(name)) };
    await store.putSecret(record);
    return { outcome: current ? 'updated' : 'created', record: record as RecordOf<K> };
  }

  /** Why a value of `size` bytes in place of `current` would take the kind past its limits; null when it fits. */
  private overLimit(current: RecordOf<K> | undefined, size: number): PutRefused | null {
    const { maxCount, maxTotalBytes } = this.deps.limits ?? VALUE_LIMITS;
    const all = this.list();
    const plural = `${this.kind}s`;
    if (!current && all.length >= maxCount) {
      return { outcome: 'refused', code: `too_many_${plural}`, message: `the hub keeps at most ${maxCount} ${plural}: delete one first` };
    }
    const totalBytes = all.reduce((n, r) => n + r.size, 0) - (current?.size ?? 0) + size;
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
