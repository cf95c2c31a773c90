import { chmod } from 'node:fs/promises';
import { ensurePrivateDir } from '../../shared/private-files.js';
import path from 'node:path';
import { Low } from 'lowdb';
import { DataFile } from 'lowdb/node';
import { StoreHealthTracker, StoreWriteError } from './store-write-error.js';

/** How long a lazy put may wait for its write, gathering others to the same shard meanwhile. */
const LAZY_FLUSH_MS = 1000;

export interface CollectionOptions {
  /** Where the outcome of each file write is recorded (shared by a store's collections). */
  health?: StoreHealthTracker;
  /** Called before each file write; throwing fails that write (fault injection in tests). */
  beforeWrite?: (file: string) => void;
}

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
  private readonly files: string[] = [];
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
    private readonly opts: CollectionOptions = {},
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
      this.files.push(file);
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
   * A durable put (`lazy` false) changes memory and resolves once the change is on disk; if the
   * write fails it rejects with a StoreWriteError and memory goes back to what it held, so that
   * memory never holds what a restart would not load (a failed API write leaves nothing behind).
   * Reads stay synchronous: the change is visible while its write is in flight.
   *
   * `lazy` puts (things that are re-sent anyway, such as a node's facts at every hello) keep memory
   * first: written within LAZY_FLUSH_MS, so a burst of them costs one write per shard rather than
   * one per record, and retried until a write lands; a hub that exits meanwhile loses only what the
   * agents send again.
   */
  put(key: string, value: T, lazy = false): Promise<void> {
    const before = this.records.get(key);
    this.records.set(key, value);
    const shard = this.shardOf(key);
    this.shards[shard]!.data[key] = value;
    if (lazy) return this.markLazy(shard);
    return this.markDirty(shard).catch((error: unknown) => {
      // Undo only if nothing changed the record since: a later change carries its own outcome.
      if (this.records.get(key) === value) this.restore(shard, key, before);
      throw error;
    });
  }

  delete(key: string): Promise<void> {
    const before = this.records.get(key);
    if (!this.records.delete(key)) return Promise.resolve();
    const shard = this.shardOf(key);
    delete this.shards[shard]!.data[key];
    return this.markDirty(shard).catch((error: unknown) => {
      if (!this.records.has(key)) this.restore(shard, key, before);
      throw error;
    });
  }

  private restore(shard: number, key: string, value: T | undefined): void {
    if (value === undefined) {
      this.records.delete(key);
      delete this.shards[shard]!.data[key];
    } else {
      this.records.set(key, value);
      this.shards[shard]!.data[key] = value;
    }
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
    // Marked even when it rides along with a due write: a failed write is retried only for shards
    // that carry lazy changes (durable ones are undone instead).
    this.lazyDirty.add(shard);
    // Already due for a write in this turn: ride along.
    if (this.dirty.has(shard)) return this.waitFor(shard);
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
    const carriesLazy = this.lazyDirty.delete(shard);
    const waiters = this.waiting.get(shard) ?? [];
    this.waiting.delete(shard);
    const file = this.files[shard]!;
    try {
      this.opts.beforeWrite?.(file);
      // lowdb writes through steno: a temp file renamed over the old one, so a crash mid-write
      // leaves the previous version whole.
      await this.shards[shard]!.write();
      this.opts.health?.succeeded();
      for (const w of waiters) w.resolve();
    } catch (cause) {
      const error = new StoreWriteError(file, cause);
      this.opts.health?.failed(error);
      // Durable puts undo themselves when their waiter rejects (before any retry below runs); the
      // latest first, so that two changes to one record in this write restore the oldest value.
      for (let i = waiters.length - 1; i >= 0; i--) waiters[i]!.reject(error);
      if (!carriesLazy) return;
      // Lazy changes stay in memory: keep the shard dirty and try again, so that they reach the
      // disk once the disk works again (a full disk, say).
      this.lazyDirty.add(shard);
      setTimeout(() => {
        if (this.lazyDirty.has(shard)) this.markDirty(shard).catch(() => undefined);
      }, 1000).unref();
    }
  }
}
