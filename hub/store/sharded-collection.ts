import { chmod } from 'node:fs/promises';
import { ensurePrivateDir } from '../../shared/private-files.js';
import path from 'node:path';
import { Low } from 'lowdb';
import { DataFile } from 'lowdb/node';

/** How long a lazy put may wait for its write, gathering others to the same shard meanwhile. */
const LAZY_FLUSH_MS = 1000;

interface Waiter {
  resolve: () => void;
  reject: (error: unknown) => void;
}

/**
 * One collection of records spread over several lowdb files by a hash of the key. lowdb rewrites
 * a whole file on every write; sharding makes a write cost in proportion to one shard, not to the
 * whole fleet, and coalescing turns a burst of changes to one shard into one write.
 */
export class ShardedCollection<T> {
  private readonly shards: Array<Low<Record<string, T>>> = [];
  private readonly records = new Map<string, T>();
  private readonly dirty = new Set<number>();
  /** Shards changed only by puts that may wait for the next lazy flush. */
  private readonly lazyDirty = new Set<number>();
  private lazyTimer: NodeJS.Timeout | null = null;
  private readonly waiting = new Map<number, Waiter[]>();
  /** Per shard, the tail of its chain of writes: a shard is never written twice at once. */
  private readonly chains = new Map<number, Promise<void>>();
  private flushScheduled = false;
  writes = 0;
  bytesWritten = 0;

  constructor(
    private readonly dir: string,
    private readonly name: string,
    private readonly shardCount: number,
  ) {}

  async open(): Promise<void> {
    await ensurePrivateDir(this.dir);
    for (let i = 0; i < this.shardCount; i++) {
      const file = path.join(this.dir, `${this.name}-${String(i).padStart(2, '0')}.json`);
      // Compact JSON: a third smaller and faster to write than lowdb's indented default.
      const adapter = new DataFile<Record<string, T>>(file, {
        parse: (text) => JSON.parse(text) as Record<string, T>,
        stringify: (data) => {
          const text = JSON.stringify(data);
          this.writes++;
          this.bytesWritten += Buffer.byteLength(text);
          return text;
        },
      });
      const db = new Low<Record<string, T>>(adapter, {});
      await db.read();
      // Files written before data dirs were private may be readable by others; later writes are
      // covered by the process umask (restrictNewFiles).
      await chmod(file, 0o600).catch((error: NodeJS.ErrnoException) => {
        if (error.code !== 'ENOENT') throw error;
      });
      this.shards.push(db);
      for (const [key, value] of Object.entries(db.data)) this.records.set(key, value);
    }
  }

  get(key: string): T | undefined {
    return this.records.get(key);
  }

  values(): IterableIterator<T> {
    return this.records.values();
  }

  get size(): number {
    return this.records.size;
  }

  /**
   * Changes the record in memory at once; resolves when it is on disk. `lazy` puts (things that are
   * re-sent anyway, such as a node's facts at every hello) are written within LAZY_FLUSH_MS, so a
   * burst of them costs one write per shard rather than one per record.
   */
  put(key: string, value: T, lazy = false): Promise<void> {
    this.records.set(key, value);
    const shard = this.shardOf(key);
    this.shards[shard]!.data[key] = value;
    return lazy ? this.markLazy(shard) : this.markDirty(shard);
  }

  delete(key: string): Promise<void> {
    if (!this.records.delete(key)) return Promise.resolve();
    const shard = this.shardOf(key);
    delete this.shards[shard]!.data[key];
    return this.markDirty(shard);
  }

  /** Resolves once every change made so far is on disk. */
  async flush(): Promise<void> {
    if (this.lazyTimer) clearTimeout(this.lazyTimer);
    this.lazyTimer = null;
    const pending = [...new Set([...this.dirty, ...this.lazyDirty])].map((s) => this.markDirty(s));
    await Promise.all([...pending, ...this.chains.values()]);
  }

  private shardOf(key: string): number {
    // FNV-1a: cheap and stable across processes and versions (a key's shard must never move).
    let h = 0x811c9dc5;
    for (let i = 0; i < key.length; i++) {
      h ^= key.charCodeAt(i);
      h = Math.imul(h, 0x01000193);
    }
    return (h >>> 0) % this.shardCount;
  }

  private waitFor(shard: number): Promise<void> {
    return new Promise<void>((resolve, reject) => {
      const list = this.waiting.get(shard);
      if (list) list.push({ resolve, reject });
      else this.waiting.set(shard, [{ resolve, reject }]);
    });
  }

  private markLazy(shard: number): Promise<void> {
    // Already due for a write in this turn: ride along.
    if (this.dirty.has(shard)) return this.waitFor(shard);
    this.lazyDirty.add(shard);
    this.lazyTimer ??= setTimeout(() => {
      this.lazyTimer = null;
      for (const s of this.lazyDirty) this.markDirty(s).catch(() => undefined);
    }, LAZY_FLUSH_MS);
    // Lazy changes are ones the hub can lose at an abrupt exit (close() writes them).
    this.lazyTimer.unref();
    return this.waitFor(shard);
  }

  private markDirty(shard: number): Promise<void> {
    this.dirty.add(shard);
    const done = this.waitFor(shard);
    if (!this.flushScheduled) {
      this.flushScheduled = true;
      // Everything changed in this turn of the event loop goes out in one write per shard.
      setImmediate(() => {
        this.flushScheduled = false;
        for (const s of this.dirty) this.enqueueWrite(s);
      });
    }
    return done;
  }

  private enqueueWrite(shard: number): void {
    const tail = (this.chains.get(shard) ?? Promise.resolve()).then(() => this.writeShard(shard));
    this.chains.set(shard, tail);
    void tail.finally(() => {
      if (this.chains.get(shard) === tail) this.chains.delete(shard);
    });
  }

  private async writeShard(shard: number): Promise<void> {
    // An earlier queued write may already have taken these changes.
    if (!this.dirty.has(shard)) return;
    this.dirty.delete(shard);
    // The write takes whatever memory holds, lazy changes included.
    this.lazyDirty.delete(shard);
    const waiters = this.waiting.get(shard) ?? [];
    this.waiting.delete(shard);
    try {
      // lowdb writes through steno: a temp file renamed over the old one, so a crash mid-write
      // leaves the previous version whole.
      await this.shards[shard]!.write();
      for (const w of waiters) w.resolve();
    } catch (error) {
      for (const w of waiters) w.reject(error);
      // Memory already holds the change: keep the shard dirty and try again, so that what the hub
      // shows reaches the disk once the disk works again (a full disk, say).
      this.dirty.add(shard);
      setTimeout(() => {
        if (this.dirty.has(shard)) this.enqueueWrite(shard);
      }, 1000).unref();
    }
  }
}
