import { readFile } from 'node:fs/promises';
import path from 'node:path';
import Type from 'typebox';
import { decodeHubFrame } from '../shared/codec.js';
import { VALUE_NAME_PATTERN } from '../shared/container-spec.js';
import { MAX_TARGET_VALUES, type TargetFrame, type TargetValue } from '../shared/protocol.js';
import { writeFileAtomic } from '../shared/atomic-file.js';
import { Validator } from '../shared/validation.js';
import type { Logger } from '../shared/logger.js';
import { CacheKeyFile } from './values/cache-key.js';
import { openSealed, sealValue } from '../shared/sealed-value.js';

/** Marks the cache's own shape (below), told apart from a bare target frame an older agent wrote. */
const CACHE_FORMAT = 'tether-target-cache-2';

const Base64 = Type.String({ pattern: '^[A-Za-z0-9+/]*={0,2}$', maxLength: 1024 * 1024 });
/**
 * The cache file: the target frame as the hub sent it but for its secrets (so it decodes with the
 * protocol's own schema), and the secrets apart, each sealed with the node's cache key.
 */
const CacheFileSchema = Type.Object(
  {
    format: Type.Literal(CACHE_FORMAT),
    target: Type.Unknown(),
    sealedSecrets: Type.Array(
      Type.Object(
        {
          name: Type.String({ pattern: VALUE_NAME_PATTERN }),
          version: Type.Integer({ minimum: 1, maximum: Number.MAX_SAFE_INTEGER }),
          keyId: Type.String({ maxLength: 64 }),
          nonce: Base64,
          ciphertext: Base64,
          tag: Base64,
        },
        { additionalProperties: false },
      ),
      { maxItems: MAX_TARGET_VALUES },
    ),
  },
  { additionalProperties: false },
);
const cacheFile = new Validator(CacheFileSchema);

export interface TargetCacheOptions {
  /**
   * Whether secrets are cached (sealed) for a reboot without the hub; false keeps them in memory
   * only (--no-offline-secrets). Default true.
   */
  offlineSecrets?: boolean;
  logger?: Pick<Logger, 'info' | 'error'>;
}

const silent: Pick<Logger, 'info' | 'error'> = { info: () => undefined, error: () => undefined };

/** What binds a sealed secret to its name: moved to another name or version, it does not open. */
const associatedDataOf = (name: string, version: number) => `secret\0${name}\0${version}`;

/**
 * The last target from the hub, kept on the device's disk so that the agent runs its assignment
 * after a reboot while the hub is unreachable. Mode 0600: targets carry registry credentials.
 * Secrets are never in it as they are: sealed (AES-256-GCM) with the node's cache key, which is
 * in a file of its own (cache.key), or not cached at all with offline secrets off. A secret that
 * does not open (another key, damage) is dropped with an error: its replicas wait for the hub.
 */
export class TargetCache {
  private readonly file: string;
  private readonly key: CacheKeyFile;
  readonly offlineSecrets: boolean;
  private readonly logger: Pick<Logger, 'info' | 'error'>;

  constructor(dataDir: string, opts: TargetCacheOptions = {}) {
    this.file = path.join(dataDir, 'target.json');
    this.key = new CacheKeyFile(dataDir);
    this.offlineSecrets = opts.offlineSecrets ?? true;
    this.logger = opts.logger ?? silent;
  }

  async load(): Promise<TargetFrame | null> {
    let text: string;
    try {
      text = await readFile(this.file, 'utf8');
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === 'ENOENT') return null;
      throw error;
    }
    let parsed: unknown;
    try {
      parsed = JSON.parse(text);
    } catch {
      return null;
    }
    // A damaged cache is no reason to stop the device: run nothing until the hub speaks.
    if (!cacheFile.check(parsed)) {
      const legacy = decodeHubFrame(text);
      if (!legacy.ok || legacy.frame.type !== 'target') return null;
      return this.offlineSecrets ? legacy.frame : withValues(legacy.frame, (legacy.frame.values ?? []).filter((v) => v.source !== 'secret'));
    }
    const decoded = decodeHubFrame(JSON.stringify(parsed.target));
    if (!decoded.ok || decoded.frame.type !== 'target') return null;
    const frame = decoded.frame;
    const sealed = parsed.sealedSecrets;
    if (sealed.length === 0) return frame;
    if (!this.offlineSecrets) {
      this.logger.info({ secrets: sealed.length }, 'offline secrets are off: the secrets of the cached target are not used; their replicas wait for the hub');
      return frame;
    }
    let key: Buffer | null;
    try {
      key = await this.key.read();
      if (key === null) throw new Error(`${this.key.file} is missing`);
    } catch (err) {
      this.logger.error({ secrets: sealed.map((s) => s.name), err: (err as Error).message }, 'the secrets of the cached target cannot be opened without the cache key; dropped: their replicas wait for the hub');
      return frame;
    }
    const secrets: TargetValue[] = [];
    for (const s of sealed) {
      try {
        const data = openSealed(key, s, associatedDataOf(s.name, s.version), 'cache key');
        secrets.push({ source: 'secret', name: s.name, version: s.version, data: data.toString('base64') });
      } catch (err) {
        this.logger.error({ secret: s.name, version: s.version, err: (err as Error).message }, 'a secret of the cached target cannot be opened; dropped: the replicas that use it wait for the hub');
      }
    }
    return withValues(frame, [...(frame.values ?? []), ...secrets]);
  }

  async save(target: TargetFrame): Promise<void> {
    const values = target.values ?? [];
    const secrets = this.offlineSecrets ? values.filter((v) => v.source === 'secret') : [];
    // The key is made only when there is a secret to seal.
    const key = secrets.length > 0 ? await this.key.readOrCreate() : null;
    const content = {
      format: CACHE_FORMAT,
      target: withValues(target, values.filter((v) => v.source !== 'secret')),
      sealedSecrets: secrets.map((s) => ({ name: s.name, version: s.version, ...sealValue(key!, Buffer.from(s.data, 'base64'), associatedDataOf(s.name, s.version)) })),
    };
    await writeFileAtomic(this.file, JSON.stringify(content), 0o600);
  }
}

/** The frame with these values (the field absent when there are none, as the protocol has it). */
function withValues(frame: TargetFrame, values: TargetValue[]): TargetFrame {
  const { values: _dropped, ...rest } = frame;
  return values.length > 0 ? { ...rest, values } : rest;
}
