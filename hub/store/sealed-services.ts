import type { ValueSealer } from '../secrets/master-keyring.js';
import { isSealedValue, type SealedValue } from '../../shared/sealed-value.js';
import type { NormalizedSpec } from '../spec/service-spec.js';
import type { RevisionRecord, ServiceRecord } from './store.js';

/** Associated data of a service's registry password: sealed for that service, it opens for no other. */
export const registryPasswordAad = (service: string): string => `registry-password:${service}`;

/** A spec's registry credentials as the store keeps them: the password sealed, never in the clear. */
interface StoredRegistryAuth {
  username: string;
  serveraddress?: string;
  sealedPassword: SealedValue;
}

const storedAuth = (spec: NormalizedSpec): Partial<StoredRegistryAuth> | null => spec.registryAuth as Partial<StoredRegistryAuth> | null;

/**
 * Where registry passwords are sealed: between the hub's service records, which hold them in the
 * clear (agents need them), and the store's, which hold them sealed with the master key. The store
 * keeps the sealed form (what it writes) and hands out the plain one: the very object that was
 * put, so that readers comparing records by identity see no change. Rejected alternative: sealing
 * inside the collection's write path, which would have touched every way a shard is written and
 * laid out again; here records are sealed once when put and opened once when loaded.
 *
 * A spec is sealed once per spec object and key (a placement change keeps its service's spec
 * object): sealing it again would give a new nonce, so a new main record to write at every pass.
 */
export class ServiceSealing {
  /** Stored (sealed) record -> the plain one the hub put or a start opened. */
  private readonly plainOf = new WeakMap<ServiceRecord, ServiceRecord>();
  /** Plain spec -> its sealed form, with the service it was sealed for. */
  private readonly sealedSpecs = new WeakMap<NormalizedSpec, { service: string; sealed: NormalizedSpec }>();
  private readonly sealedHistories = new WeakMap<RevisionRecord[], { service: string; sealed: RevisionRecord[] }>();

  constructor(private readonly sealer: ValueSealer | null) {}

  /** The record as the store writes it; the plain record itself when it holds no password (or no key was given). */
  toStored(plain: ServiceRecord): ServiceRecord {
    if (this.sealer === null) return plain;
    const spec = this.sealSpec(plain.name, plain.spec);
    const history = plain.history === undefined ? undefined : this.sealHistory(plain.name, plain.history);
    if (spec === plain.spec && history === plain.history) return plain;
    const stored: ServiceRecord = { ...plain, spec, ...(history === undefined ? {} : { history }) };
    this.plainOf.set(stored, plain);
    return stored;
  }

  /** The record as the hub reads it (opened once, then the same object each time). */
  toPlain(stored: ServiceRecord): ServiceRecord;
  toPlain(stored: ServiceRecord | undefined): ServiceRecord | undefined;
  toPlain(stored: ServiceRecord | undefined): ServiceRecord | undefined {
    if (stored === undefined) return undefined;
    const known = this.plainOf.get(stored);
    if (known) return known;
    if (this.sealer === null || !holdsSealed(stored)) return stored;
    const spec = this.openSpec(stored.name, stored.spec);
    const history = stored.history?.map((r) => ({ ...r, spec: this.openSpec(stored.name, r.spec) }));
    const plain: ServiceRecord = { ...stored, spec, ...(history === undefined ? {} : { history }) };
    this.plainOf.set(stored, plain);
    if (history !== undefined) this.sealedHistories.set(history, { service: stored.name, sealed: stored.history! });
    return plain;
  }

  private sealSpec(service: string, spec: NormalizedSpec): NormalizedSpec {
    const auth = spec.registryAuth;
    if (auth === null || typeof auth.password !== 'string') return spec;
    const memo = this.sealedSpecs.get(spec);
    // Sealed under an older key (a rotation re-seals): sealed again.
    if (memo && memo.service === service && storedAuth(memo.sealed)?.sealedPassword?.keyId === this.sealer!.currentKeyId) return memo.sealed;
    const { password, ...rest } = auth;
    const sealedAuth: StoredRegistryAuth = { ...rest, sealedPassword: this.sealer!.seal(Buffer.from(password, 'utf8'), registryPasswordAad(service)) };
    const sealed = { ...spec, registryAuth: sealedAuth } as unknown as NormalizedSpec;
    this.sealedSpecs.set(spec, { service, sealed });
    return sealed;
  }

  private sealHistory(service: string, history: RevisionRecord[]): RevisionRecord[] {
    const memo = this.sealedHistories.get(history);
    if (memo && memo.service === service && memo.sealed.every((r, i) => r.spec === this.sealSpec(service, history[i]!.spec))) return memo.sealed;
    const sealed = history.map((r) => {
      const spec = this.sealSpec(service, r.spec);
      return spec === r.spec ? r : { ...r, spec };
    });
    const result = sealed.every((r, i) => r === history[i]) ? history : sealed;
    this.sealedHistories.set(history, { service, sealed: result });
    return result;
  }

  private openSpec(service: string, spec: NormalizedSpec): NormalizedSpec {
    const auth = storedAuth(spec);
    if (auth === null || !isSealedValue(auth.sealedPassword)) return spec;
    const { sealedPassword, ...rest } = auth;
    const password = this.sealer!.open(sealedPassword, registryPasswordAad(service)).toString('utf8');
    const plain = { ...spec, registryAuth: { ...rest, password } } as NormalizedSpec;
    this.sealedSpecs.set(plain, { service, sealed: spec });
    return plain;
  }
}

/** Key ids of the sealed passwords a stored record holds (what a start checks against its keyring). */
export function sealedKeyIdsOf(stored: ServiceRecord): string[] {
  const ids: string[] = [];
  for (const spec of [stored.spec, ...(stored.history ?? []).map((r) => r.spec)]) {
    const sealed = storedAuth(spec)?.sealedPassword;
    if (isSealedValue(sealed)) ids.push(sealed.keyId);
  }
  return ids;
}

/** Whether a stored record holds a registry password in the clear (written by a hub from before they were sealed). */
export function holdsClearPassword(stored: ServiceRecord): boolean {
  return [stored.spec, ...(stored.history ?? []).map((r) => r.spec)].some((spec) => typeof spec.registryAuth?.password === 'string');
}

function holdsSealed(stored: ServiceRecord): boolean {
  return sealedKeyIdsOf(stored).length > 0;
}
