import { randomBytes } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { writeFileAtomic } from '../../shared/atomic-file.js';
import { SEALING_KEY_BYTES as CACHE_KEY_BYTES } from '../../shared/sealed-value.js';

export const CACHE_KEY_FILE = 'cache.key';

/**
 * The node's own key for the secrets of its target cache: 32 random bytes, base64, in a 0600
 * file of its own beside the cache, made the first time a secret is cached. Apart from the cache
 * so that a copy of the cache alone (a backup, a support bundle) holds no readable secret; it
 * does not protect against whoever reads the whole data dir (see the README).
 */
export class CacheKeyFile {
  readonly file: string;
  private key: Buffer | null = null;

  constructor(dataDir: string) {
    this.file = path.join(dataDir, CACHE_KEY_FILE);
  }

  /** The key, or null when there is none yet; throws when the file is there but holds no key. */
  async read(): Promise<Buffer | null> {
    if (this.key) return this.key;
    let text: string;
    try {
      text = await readFile(this.file, 'utf8');
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return null;
      throw err;
    }
    const key = Buffer.from(text.trim(), 'base64');
    if (key.length !== CACHE_KEY_BYTES) throw new Error(`${this.file} holds no cache key (${key.length} bytes, not ${CACHE_KEY_BYTES})`);
    this.key = key;
    return key;
  }

  /** The key, made and written first if there is none. A damaged file is replaced: what it sealed is lost anyway. */
  async readOrCreate(): Promise<Buffer> {
    const existing = await this.read().catch(() => null);
    if (existing) return existing;
    const key = randomBytes(CACHE_KEY_BYTES);
    await writeFileAtomic(this.file, `${key.toString('base64')}\n`, 0o600);
    this.key = key;
    return key;
  }
}
