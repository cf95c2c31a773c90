import { appendFile, chmod, rename, truncate, unlink, writeFile } from 'node:fs/promises';
import { ensurePrivateDir } from '../../shared/private-files.js';
import path from 'node:path';
import { Low } from 'lowdb';
import { CheckedFile, inspectPrevious, previousCopyOf, readChecked } from './checked-file.js';
import { changeLogOf, encodeLogHeader, encodeLogLine, lineBytesAtLeast, readChangeLog, type DecodedLog, type LogChanges } from './change-log.js';
import { changedParts, layLog, PART_SEPARATOR, partRecordIn, placeItems, sharedParts, type RecordLayout, type StoredParts } from './record-layout.js';
import { StoreDamagedError, StoreFileDamagedError, type LogCut } from './store-file-damaged.js';
import { StoreHealthTracker, StoreWriteError } from './store-write-error.js';
import { Backoff } from '../../shared/backoff.js';

/** How long a lazy put may wait for its write, gathering others to the same shard meanwhile. */
const LAZY_FLUSH_MS = 1000;
/** Retries of a shard whose lazy changes failed to write (a full disk): from a second, at most every 30 s. */
const RETRY_BASE_MS = 1000;
const RETRY_CAP_MS = 30_000;
/**
 * A write goes to the shard's change log when it is at most this share of the shard (1 / ratio):
 * a shard of few records is written whole, as cheap as a line and simpler to restore. Half: a
 * second of hellos from a fleet connecting (its facts, gathered per shard) is a quarter to a half
 * of a node shard, and a quarter sent most of those batches to whole rewrites of their shards.
 */
const APPEND_RATIO = 2;
/**
 * In a shard at least this big (a large service's placements), a line of any size up to the shard
 * is appended: a failover moving a tenth of 100,000 replicas is a 2 MB line against an 8 MB shard,
 * and a pass or two later hand-overs end; rewriting the shard for each would cost four times more.
 */
const LARGE_SHARD_BYTES = 1024 * 1024;
/**
 * The fewest bytes one part record takes in a log line: `"k/i":{"id":"k/i","seq":0,"item":{}},`
 * with a key and an id of one character each.
 */
const MIN_PART_LINE_BYTES = 32;

/**
 * Items the carried records hold beyond what the disk holds of them: each is at least a part
 * record of a log line. A count of items, no look at any (a lower bound: items replaced in place
 * are not counted).
 */
function addedItemsAtLeast<T>(layout: RecordLayout<T>, carried: ReadonlyMap<string, T | undefined>, unsaved: ReadonlyMap<string, { saved: T | undefined }>): number {
  let added = 0;
  for (const [key, value] of carried) {
    if (value === undefined) continue;
    const saved = unsaved.get(key)?.saved;
    added += Math.max(0, layout.items(value).length - (saved === undefined ? 0 : layout.items(saved).length));
  }
  return added;
}

/**
 * The log may grow to this many times its shard's size before the shard is written whole: a log
 * that fills up to it is folded into the shard half as often as one bounded by the shard itself
 * (a line too big for the log still goes whole at once), for a start that reads at most three
 * shards' worth.
 */
const LOG_RATIO = 2;

export interface CollectionOptions<T = unknown> {
  /** The field of each record that holds its key, checked when a file is read (a node's `id`); unchecked when absent. */
  keyField?: string;
  /** Where the outcome of each file write is recorded (shared by a store's collections). */
  health?: StoreHealthTracker;
  /**
   * Called before each file write; throwing (or rejecting) fails that write, and a promise holds it
   * in flight meanwhile (fault injection in tests).
   */
  beforeWrite?: (file: string) => void | Promise<void>;
  /**
   * Told of every change of a record in memory, synchronously, once memory holds it: `written` is
   * the write that carries it, null for the undo of a refused write (memory equals the disk again).
   */
  onChange?: (key: string, before: unknown, after: unknown, written: Promise<void> | null) => void;
  /**
   * Stores each record as a main part and part records of its items (see record-layout.ts), so
   * that a write carries only the parts that changed; needs `keyField`.
   */
  layout?: RecordLayout<T>;
  /**
   * What a record read from disk at open becomes in memory: the same content, sharing what many
   * records have in common (a node's labels). Unset: kept as read.
   */
  readBack?: (record: T) => T;
}

/** Where the items of each record written by a write sit on disk once it lands (undefined: record deleted). */
type PlacedParts = Map<string, { ids: string[]; seqs: number[] } | undefined>;

/** A shard's change log (see change-log.ts). */
interface ShardLog {
  file: string;
  /** Bytes of whole lines in the log: what the next append goes after. */
  bytes: number;
  /** Size of the shard file as last read or written: the log never grows past it. */
  shardBytes: number;
  /** The checksum of the shard file on disk, which a new log names as its base; null: write whole. */
  shardChecksum: string | null;
  /** The log ends in an append cut short (a failed write): cut it off before appending again. */
  torn: boolean;
  /**
   * The log on disk belongs to another shard file (one written whole since, its log not set aside):
   * it is not part of the state, and the next append replaces it.
   */
  stale: boolean;
}

interface Waiter {
  /** The record whose change waits; null for a write forced by flush(). */
  key: string | null;
  /** A durable change is undone when its write fails; a lazy one stays and is retried. */
  durable: boolean;
  resolve: () => void;
  reject: (error: unknown) => void;
}

/**
 * A record whose memory value is not (yet) known to be on disk. `saved` is what the disk holds
 * (undefined: no record), what memory goes back to when a durable change fails; lazy changes are
 * kept as field patches so that they survive that, laid over the saved value.
 */
interface Unsaved<T> {
  saved: T | undefined;
  /** Fields set by lazy puts since the last write started. */
  lazy: Partial<T> | null;
  /** Fields set by lazy puts that the write in flight carries. */
  lazyInFlight: Partial<T> | null;
}

/**
 * One collection of records spread over several lowdb files by a hash of the key. A write appends
 * the records it changed to its shard's change log, or rewrites the shard file whole when that is
 * as cheap or the log would grow past twice the shard's size; sharding bounds what a whole write costs by
 * one shard, not the whole fleet, and coalescing turns a burst of changes to one shard into one write.
 */
export class ShardedCollection<T> {
  private readonly shards: Array<Low<Record<string, T>>> = [];
  private readonly files: string[] = [];
  private readonly logs: ShardLog[] = [];
  private readonly adapters: Array<CheckedFile<T>> = [];
  private readonly records = new Map<string, T>();
  /** Per shard, records changed in memory since their last successful write (see Unsaved). */
  private readonly unsaved: Array<Map<string, Unsaved<T>>> = [];
  private readonly dirty = new Set<number>();
  /** Shards changed only by puts that may wait for the next lazy flush. */
  private readonly lazyDirty = new Set<number>();
  private lazyTimer: NodeJS.Timeout | null = null;
  /** Per shard whose lazy changes failed to write: the one retry timer, and its backoff. */
  private readonly retries = new Map<number, { timer: NodeJS.Timeout | null; backoff: Backoff }>();
  private readonly waiting = new Map<number, Waiter[]>();
  /** Per shard, the tail of its chain of writes: a shard is never written twice at once. */
  private readonly chains = new Map<number, Promise<void>>();
  private flushScheduled = false;
  /** Set by rewriteWhole: every write goes whole, even one that carries no change. */
  private wholeOnly = false;
  /** With a layout: where each record's items sit on disk (see record-layout.ts). */
  private readonly parts = new Map<string, StoredParts>();
  writes = 0;
  bytesWritten = 0;

  constructor(
    private readonly dir: string,
    private readonly name: string,
    private readonly shardCount: number,
    private readonly opts: CollectionOptions<T> = {},
  ) {}

  /** Rejects with a StoreDamagedError naming every damaged file of the collection: none is read as empty. */
  async open(): Promise<void> {
    await ensurePrivateDir(this.dir);
    const damaged: StoreFileDamagedError[] = [];
    for (let i = 0; i < this.shardCount; i++) {
      const file = path.join(this.dir, `${this.name}-${String(i).padStart(2, '0')}.json`);
      // Checked at read, compact JSON with a checksum at write, the replaced file kept as `.prev`.
      const log: ShardLog = { file: changeLogOf(file), bytes: 0, shardBytes: 0, shardChecksum: null, torn: false, stale: false };
      const adapter = new CheckedFile<T>(file, {
        keyField: this.opts.keyField ?? null,
        onWrite: (bytes) => {
          this.writes++;
          this.bytesWritten += bytes;
        },
      });
      const db = new Low<Record<string, T>>(adapter, {});
      try {
        await db.read();
      } catch (error) {
        if (!(error instanceof StoreFileDamagedError)) throw error;
        damaged.push(error);
        // Its log is checked too, so that one start names every damaged file.
        const changes = await readChangeLog<T>(log.file, this.opts.keyField ?? null);
        if (!changes.ok) damaged.push(logDamaged(log.file, changes.reason, changes.cut));
        continue;
      }
      const changes = await readChangeLog<T>(log.file, this.opts.keyField ?? null, adapter.checksum);
      if (!changes.ok) {
        // Reported as a damaged shard is: the hub must not start without the changes it holds.
        damaged.push(logDamaged(log.file, changes.reason, changes.cut));
        continue;
      }
      log.shardChecksum = adapter.checksum;
      log.shardBytes = adapter.bytes;
      const state = layShard(file, log.file, db.data, adapter, changes, this.opts.keyField ?? '', this.opts.layout);
      if (!state.ok) {
        damaged.push(state.error);
        continue;
      }
      if (state.stale) {
        // A log of another shard file: a crash came after the shard was written whole and before
        // its log was set aside. The shard holds all of it; the next append replaces it.
        log.stale = true;
      } else {
        log.bytes = changes.validBytes;
        log.torn = changes.torn;
      }
      db.data = state.records;
      for (const [key, parts] of state.parts) this.parts.set(key, sharedParts(parts));
      // Files written before data dirs were private may be readable by others; later writes are
      // covered by the process umask (restrictNewFiles).
      for (const f of [file, log.file]) {
        await chmod(f, 0o600).catch((error: NodeJS.ErrnoException) => {
          if (error.code !== 'ENOENT') throw error;
        });
      }
      this.shards.push(db);
      this.adapters.push(adapter);
      this.files.push(file);
      this.logs.push(log);
      this.unsaved.push(new Map());
      const readBack = this.opts.readBack;
      for (const [key, read] of Object.entries(db.data)) {
        const value = readBack ? readBack(read) : read;
        if (value !== read) db.data[key] = value;
        this.records.set(key, value);
      }
    }
    if (damaged.length > 0) throw new StoreDamagedError(damaged);
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
   * write fails it rejects with a StoreWriteError and the record goes back to what the disk holds,
   * so that memory never holds what a restart would not load (a failed API write leaves nothing
   * behind). Later durable puts of the record still waiting for their write are refused with it:
   * they were built on the refused value (a scheduling pass reads memory while a write is in
   * flight), and writing them would persist the refused change after all. Reads stay synchronous:
   * a change is visible while its write is in flight.
   *
   * `lazy` puts (things that are re-sent anyway, such as a node's facts at every hello) keep memory
   * first: written within LAZY_FLUSH_MS, so a burst of them costs one write per shard rather than
   * one per record, and retried until a write lands; a hub that exits meanwhile loses only what the
   * agents send again. They are kept as the fields they change, so a durable change of the same
   * record that fails takes only its own fields with it.
   */
  put(key: string, value: T, lazy = false): Promise<void> {
    // Such a key would read back as a part of another record (see record-layout.ts).
    if (this.opts.layout && key.includes(PART_SEPARATOR)) return Promise.reject(new Error(`${this.name}: key ${JSON.stringify(key)} must not hold "${PART_SEPARATOR}"`));
    const before = this.records.get(key);
    const shard = this.shardOf(key);
    const unsaved = this.track(shard, key, before);
    if (lazy) unsaved.lazy = { ...unsaved.lazy, ...fieldsChanged(before, value) };
    this.setMemory(shard, key, value);
    const written = lazy ? this.markLazy(shard, key) : this.markDirty(shard, key);
    this.changed(key, before, value, written);
    return written;
  }

  /** Durable, as put: a delete that fails leaves the record as the disk has it. */
  delete(key: string): Promise<void> {
    const before = this.records.get(key);
    if (before === undefined) return Promise.resolve();
    const shard = this.shardOf(key);
    // Lazy fields of a record being deleted go with it.
    this.track(shard, key, before).lazy = null;
    this.setMemory(shard, key, undefined);
    const written = this.markDirty(shard, key);
    this.changed(key, before, undefined, written);
    return written;
  }

  /**
   * A subscriber that throws is a bug of its own: it must not leave the store half way through a
   * change (waiters unsettled, say), so its error surfaces on its own.
   */
  private changed(key: string, before: T | undefined, after: T | undefined, written: Promise<void> | null): void {
    if (!this.opts.onChange) return;
    try {
      this.opts.onChange(key, before, after, written);
    } catch (error) {
      queueMicrotask(() => {
        throw error;
      });
    }
  }

  /** Starts tracking a record about to change; untracked records equal the disk. */
  private track(shard: number, key: string, current: T | undefined): Unsaved<T> {
    const changed = this.unsaved[shard]!;
    let unsaved = changed.get(key);
    if (!unsaved) changed.set(key, (unsaved = { saved: current, lazy: null, lazyInFlight: null }));
    return unsaved;
  }

  private setMemory(shard: number, key: string, value: T | undefined): void {
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
    for (const retry of this.retries.values()) if (retry.timer) clearTimeout(retry.timer);
    this.retries.clear();
    const pending = [...new Set([...this.dirty, ...this.lazyDirty])].map((s) => this.markDirty(s, null));
    await Promise.all([...pending, ...this.chains.values()]);
  }

  /**
   * Writes every shard whole now, changed or not: the shard's previous copy becomes what it held
   * before, and its change log is set aside (a second call removes what the first set aside). For
   * a rewrite of what the disk holds of a record in every form (a master key rotation).
   */
  async rewriteWhole(): Promise<void> {
    await this.flush();
    this.wholeOnly = true;
    try {
      await Promise.all(this.shards.map((_, shard) => this.markDirty(shard, null)));
    } finally {
      this.wholeOnly = false;
    }
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

  private waitFor(shard: number, key: string | null, durable: boolean): Promise<void> {
    return new Promise<void>((resolve, reject) => {
      const waiter: Waiter = { key, durable, resolve, reject };
      const list = this.waiting.get(shard);
      if (list) list.push(waiter);
      else this.waiting.set(shard, [waiter]);
    });
  }

  private markLazy(shard: number, key: string): Promise<void> {
    // Marked even when it rides along with a due write: a failed write is retried only for shards
    // that carry lazy changes (durable ones are undone instead).
    this.lazyDirty.add(shard);
    // Already due for a write in this turn: ride along.
    if (this.dirty.has(shard)) return this.waitFor(shard, key, false);
    this.lazyTimer ??= setTimeout(() => {
      this.lazyTimer = null;
      // A shard whose writes fail waits for its armed retry: new lazy puts do not hurry it. One
      // whose retry is being written now is marked, and goes in the write after it.
      for (const s of this.lazyDirty) if (!this.retries.get(s)?.timer) this.markDirty(s, null).catch(() => undefined);
    }, LAZY_FLUSH_MS);
    // Lazy changes are ones the hub can lose at an abrupt exit (close() writes them).
    this.lazyTimer.unref();
    return this.waitFor(shard, key, false);
  }

  private markDirty(shard: number, key: string | null): Promise<void> {
    this.dirty.add(shard);
    const done = this.waitFor(shard, key, key !== null);
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
    // What this write carries: memory as it is now. Changes made while it is in flight wait for
    // the next write, so each waiter learns the outcome of the write that carried its change.
    const db = this.shards[shard]!;
    const data = { ...db.data };
    const carried = new Map<string, T | undefined>();
    const changed = this.unsaved[shard]!;
    for (const [key, unsaved] of changed) {
      carried.set(key, this.records.get(key));
      unsaved.lazyInFlight = unsaved.lazy === null ? unsaved.lazyInFlight : { ...unsaved.lazyInFlight, ...unsaved.lazy };
      unsaved.lazy = null;
    }
    const attempt = { file };
    const placed: PlacedParts = new Map();
    try {
      await this.persist(shard, attempt, data, carried, placed);
    } catch (cause) {
      return this.writeFailed(shard, attempt.file, waiters, carriesLazy, cause);
    }
    for (const [key, parts] of placed) {
      if (parts === undefined) this.parts.delete(key);
      else this.parts.set(key, sharedParts(parts));
    }
    for (const [key, value] of carried) {
      const unsaved = changed.get(key);
      if (!unsaved) continue;
      unsaved.saved = value;
      unsaved.lazyInFlight = null;
      // Unchanged since the write took it: memory equals the disk again.
      if (this.records.get(key) === value && unsaved.lazy === null) changed.delete(key);
    }
    const retry = this.retries.get(shard);
    if (retry?.timer) clearTimeout(retry.timer);
    this.retries.delete(shard);
    this.opts.health?.succeeded();
    for (const w of waiters) w.resolve();
  }

  /**
   * Where a record's items sit on disk: as kept since a log line placed them, or, for a record the
   * disk holds whole (`saved`), at their places, as a start would lay them out. Undefined: none.
   */
  private storedParts(key: string, saved: T | undefined): StoredParts | undefined {
    const kept = this.parts.get(key);
    if (kept !== undefined || saved === undefined || !this.opts.layout) return kept;
    return placeItems(this.opts.layout, saved, undefined);
  }

  /**
   * Puts a write on disk: the records it carries appended to the shard's change log when they are
   * small next to the shard and the log stays within LOG_RATIO times its size; otherwise the shard file
   * written whole, which empties the log. `attempt.file` names the file being written.
   */
  private async persist(shard: number, attempt: { file: string }, data: Record<string, T>, carried: Map<string, T | undefined>, placed: PlacedParts): Promise<void> {
    // Nothing to carry (a refused put's record went back to what the disk holds): the disk is current.
    if (carried.size === 0 && !this.wholeOnly) return;
    const log = this.logs[shard]!;
    const layout = this.opts.layout;
    const keyField = this.opts.keyField ?? '';
    // A log that is not the current shard's is replaced, never appended to.
    const fresh = log.bytes === 0 || log.stale;
    const header = fresh && log.shardChecksum !== null ? encodeLogHeader(log.shardChecksum) : '';
    // The longest line the log takes: small next to the shard (any size up to it for a large
    // shard), and the log within the shard's size.
    const roomBytes =
      log.shardChecksum === null
        ? -1
        : Math.min(LOG_RATIO * log.shardBytes - (fresh ? Buffer.byteLength(header) : log.bytes), log.shardBytes >= LARGE_SHARD_BYTES ? log.shardBytes : log.shardBytes / APPEND_RATIO);
    const unsaved = this.unsaved[shard]!;
    // Records that gain so many items that their parts alone cannot fit go whole at once, their
    // parts never made (the first placement of a large service: 100,000 part records).
    const mayFit = roomBytes >= 0 && (!layout || addedItemsAtLeast(layout, carried, unsaved) * MIN_PART_LINE_BYTES <= roomBytes);
    const changes: LogChanges<unknown> = {};
    if (!mayFit) {
      // Written whole below, where no record has parts: those of a record it deletes go too.
      if (layout) for (const key of carried.keys()) placed.set(key, undefined);
    } else if (layout) {
      // Only the parts that differ from what the disk holds (the saved value, where each item sits).
      for (const [key, value] of carried) {
        const saved = unsaved.get(key)?.saved;
        const before = this.storedParts(key, saved);
        const parts = value === undefined ? undefined : placeItems(layout, value, before, saved);
        placed.set(key, parts);
        changedParts(layout, keyField, key, saved, before, value, parts, changes);
      }
    } else {
      for (const [key, value] of carried) changes[key] = value ?? null;
    }
    // A line that cannot fit is not encoded at all (a large change: a line thrown away before the
    // shard is written whole).
    const line = mayFit && lineBytesAtLeast(changes) <= roomBytes ? encodeLogLine(changes) : null;
    const lineBytes = line === null ? -1 : Buffer.byteLength(line);
    if (line !== null && lineBytes <= roomBytes && !this.wholeOnly) {
      const logBytes = (fresh ? Buffer.byteLength(header) : log.bytes) + lineBytes;
      attempt.file = log.file;
      await this.opts.beforeWrite?.(log.file);
      this.writes++;
      this.bytesWritten += lineBytes;
      if (fresh) {
        // A log of the shard's previous file (its set-aside failed) is what --recover restores
        // with that file's `.prev`: kept as `<log>.prev` rather than overwritten, when it can be.
        if (log.stale) await setLogAside(log.file).catch(() => undefined);
        try {
          // A crash midway leaves a header or a line cut short: read as an empty log, or left out.
          await writeFile(log.file, header + line);
        } catch (error) {
          // Removed at once, as an append is cut off (the bytes may be on disk whole, should only
          // the close have failed): a restart must not load a write reported failed. Failing that,
          // it is replaced at the next append, or removed before the next whole write.
          log.stale = true;
          await removeFile(log.file).then(
            () => {
              log.stale = false;
              log.bytes = 0;
              log.torn = false;
            },
            () => undefined,
          );
          throw error;
        }
        log.stale = false;
        log.torn = false;
        log.bytes = logBytes;
        return;
      }
      // A line after an append cut short would read as one damaged line.
      if (log.torn) await truncateLog(log.file, log.bytes);
      log.torn = false;
      try {
        await appendFile(log.file, line);
      } catch (error) {
        // Cut off at once (the line may be on disk whole, should only its close have failed): a
        // restart must not load a write reported failed. Failing that, before the next append.
        log.torn = true;
        await truncateLog(log.file, log.bytes).then(
          () => (log.torn = false),
          () => undefined,
        );
        throw error;
      }
      log.bytes += lineBytes;
      return;
    }
    // Written whole, each record goes whole (see record-layout.ts): its items' places become their
    // order keys, which the next log lines go on from.
    // Whole records on disk: their items sit at their places, derived when next written (storedParts).
    if (layout) for (const key of Object.keys(data)) placed.set(key, undefined);
    if (log.stale) {
      // A log of an older shard file, still on disk: gone before the shard changes, lest a shard
      // written later with the same records (the same checksum) take it for its own.
      attempt.file = log.file;
      await this.opts.beforeWrite?.(log.file);
      await removeFile(log.file);
      log.stale = false;
      log.bytes = 0;
      log.torn = false;
    }
    const adapter = this.adapters[shard]!;
    const encoded = adapter.encode(data);
    let logKept = false;
    if (encoded.checksum === log.shardChecksum && (log.bytes > 0 || log.torn)) {
      // The same bytes as the file on disk (changes that undid each other): the log's header would
      // name the new file too, and a crash before its set-aside below would lay it over a shard
      // that holds its changes, undone. Set aside first; a crash between leaves the shard alone,
      // which is what this write holds.
      attempt.file = log.file;
      await this.opts.beforeWrite?.(log.file);
      await setLogAside(log.file);
      log.bytes = 0;
      log.torn = false;
      logKept = true;
    }
    attempt.file = this.files[shard]!;
    try {
      await this.opts.beforeWrite?.(attempt.file);
      // lowdb writes through steno: a temp file renamed over the old one, so a crash mid-write
      // leaves the previous version whole.
      await adapter.writeEncoded(encoded);
    } catch (error) {
      // With the log set aside, the shard file on disk holds these very bytes whatever became of
      // the rewrite (a refused one leaves it as it was): the write has landed. Reporting it failed
      // would take memory back to the log's state, which the disk no longer holds.
      if (!logKept) throw error;
    }
    log.shardBytes = adapter.bytes;
    log.shardChecksum = adapter.checksum;
    // The shard now holds everything the log did, and the log names the shard it was written on:
    // from here on it is not part of the state, and setting it aside only frees its space. It is
    // kept as `<log>.prev`, beside the shard's `.prev`: together they are the state just before
    // this write, which --recover restores. Should that fail, the write has still landed; the log
    // is replaced at the next append, or removed before the next whole write.
    if (log.bytes === 0 && !log.torn && !log.stale) {
      // No log to keep: an older `<log>.prev` does not go with the shard's new `.prev` (best effort).
      if (!logKept) await removeFile(previousCopyOf(log.file)).catch(() => undefined);
      return;
    }
    log.stale = true;
    try {
      await this.opts.beforeWrite?.(log.file);
      await setLogAside(log.file);
      log.stale = false;
      log.bytes = 0;
      log.torn = false;
    } catch {
      // Left stale, as above.
    }
  }

  /**
   * Durable changes the write carried are undone: their records go back to what the disk holds,
   * with the lazy fields laid over it, and later durable puts of those records, built on the
   * refused values, are refused too. Lazy changes stay and are retried.
   */
  private writeFailed(shard: number, file: string, waiters: Waiter[], carriesLazy: boolean, cause: unknown): void {
    const error = new StoreWriteError(file, cause);
    this.opts.health?.failed(error);
    const refused = new Set<string>();
    for (const w of waiters) if (w.durable && w.key !== null) refused.add(w.key);
    const changed = this.unsaved[shard]!;
    for (const unsaved of changed.values()) {
      // Lazy fields of the failed write are still to be written, under any set since.
      if (unsaved.lazyInFlight !== null) unsaved.lazy = { ...unsaved.lazyInFlight, ...unsaved.lazy };
      unsaved.lazyInFlight = null;
    }
    let lazyLeft = carriesLazy;
    const undone: Array<[string, T | undefined, T | undefined]> = [];
    for (const key of refused) {
      const unsaved = changed.get(key);
      if (!unsaved) continue;
      const restored = unsaved.saved === undefined ? undefined : withFields(unsaved.saved, unsaved.lazy);
      const refusedValue = this.records.get(key);
      this.setMemory(shard, key, restored);
      if (unsaved.lazy === null) changed.delete(key);
      else lazyLeft = true;
      undone.push([key, refusedValue, restored]);
    }
    for (const w of waiters) w.reject(error);
    if (refused.size > 0) {
      // Refuse the later durable puts of the refused records, still waiting for the next write.
      const later = this.waiting.get(shard) ?? [];
      const kept = later.filter((w) => !(w.durable && w.key !== null && refused.has(w.key)));
      for (const w of later) if (!kept.includes(w)) w.reject(error);
      if (kept.length > 0) this.waiting.set(shard, kept);
      else this.waiting.delete(shard);
    }
    // Told once the store is consistent again: a subscriber may read any record meanwhile.
    for (const [key, before, after] of undone) this.changed(key, before, after, null);
    if (!lazyLeft) return;
    // Lazy changes stay in memory: keep the shard dirty and try again, so that they reach the
    // disk once the disk works again (a full disk, say).
    this.lazyDirty.add(shard);
    this.scheduleRetry(shard);
  }

  /**
   * One retry timer per failing shard, backing off: every failed write (each refused API write,
   * say) would otherwise start a chain of its own, one whole-shard write a second each.
   */
  private scheduleRetry(shard: number): void {
    let retry = this.retries.get(shard);
    if (!retry) this.retries.set(shard, (retry = { timer: null, backoff: new Backoff({ baseMs: RETRY_BASE_MS, capMs: RETRY_CAP_MS }) }));
    if (retry.timer) return;
    const entry = retry;
    entry.timer = setTimeout(() => {
      entry.timer = null;
      if (this.lazyDirty.has(shard)) this.markDirty(shard, null).catch(() => undefined);
    }, Math.max(RETRY_BASE_MS, entry.backoff.nextDelayMs()));
    entry.timer.unref();
  }
}

/** A shard as a start loads it: its file's records with its log laid over, or why it cannot be. */
export type ShardState<T> =
  | {
      ok: true;
      /** The records as stored, file and log together (with a layout: mains and parts). */
      stored: Record<string, unknown>;
      /** The records, whole. */
      records: Record<string, T>;
      /** With a layout: where each record's items sit. */
      parts: Map<string, StoredParts>;
      /** The log was written on another shard file, and is not part of the state. */
      stale: boolean;
    }
  | { ok: false; error: StoreFileDamagedError };

/**
 * Lays a shard's change log over its file's records (`data`, changed in place), as a start does:
 * the one way a shard is loaded, by the store and by whatever checks what is on disk.
 */
export function layShard<T>(
  file: string,
  logFile: string,
  data: Record<string, T>,
  shard: { bytes: number; checksum: string | null },
  changes: DecodedLog<T> & { ok: true },
  keyField: string,
  layout?: RecordLayout<T>,
): ShardState<T> {
  const shardDamaged = (reason: string) => new StoreFileDamagedError(file, reason, { file: previousCopyOf(file), state: 'missing', reason: null, writtenAtMs: null });
  if (shard.bytes === 0 && (changes.base !== null || changes.torn)) {
    // The shard's records are gone (a shard written whole once keeps no previous copy): the
    // log alone would load as if they had never been.
    return { ok: false, error: logDamaged(logFile, `its shard file ${file} is missing`, null) };
  }
  const stale = changes.base !== null && changes.base !== shard.checksum;
  if (!layout) {
    if (!stale) for (const entry of changes.entries) applyChanges(data, entry);
    return { ok: true, stored: data, records: data, parts: new Map(), stale };
  }
  const misplaced = partRecordIn(data);
  if (misplaced !== null) return { ok: false, error: shardDamaged(misplaced) };
  // The log holds parts: the records it touches are rebuilt from their whole form and the log's
  // lines (see layLog). The others stay whole, their items where their places say (see
  // storedParts): laying out every record at each start cost seconds on a big store.
  const laid = layLog(layout, keyField, data, stale ? [] : changes.entries);
  if (!laid.ok) return { ok: false, error: shardDamaged(laid.reason) };
  const untouched: Record<string, unknown> = {};
  for (const [key, record] of Object.entries(data)) if (!laid.records.has(key)) untouched[key] = record;
  for (const [key, record] of laid.records) {
    if (record === undefined) delete data[key];
    else data[key] = record;
  }
  return {
    ok: true,
    // As stored: untouched records whole (as their file holds them), the others as mains and parts.
    get stored() {
      return { ...untouched, ...laid.stored() };
    },
    records: data,
    parts: laid.parts,
    stale,
  };
}

/** Loads one shard file with its change log, as a start does (see layShard). */
export async function loadShard<T>(file: string, opts: { keyField?: string; layout?: RecordLayout<T> } = {}): Promise<ShardState<T>> {
  const keyField = opts.keyField ?? null;
  const read = await readChecked<T>(file, keyField);
  if (read !== null && !read.ok) return { ok: false, error: new StoreFileDamagedError(file, read.reason, await inspectPrevious(file, keyField)) };
  const shard = read === null ? { bytes: 0, checksum: null } : { bytes: read.bytes, checksum: read.checksum };
  const logFile = changeLogOf(file);
  const changes = await readChangeLog<T>(logFile, keyField, shard.checksum);
  if (!changes.ok) return { ok: false, error: logDamaged(logFile, changes.reason, changes.cut) };
  return layShard(file, logFile, read === null ? {} : read.data, shard, changes, opts.keyField ?? '', opts.layout);
}

/** The fields of `next` that differ from `before` (all of them when there was no before); undefined marks a field removed. */
function fieldsChanged<T>(before: T | undefined, next: T): Partial<T> {
  if (before === undefined || typeof next !== 'object' || next === null) return { ...next };
  const changed: Record<string, unknown> = {};
  const a = before as Record<string, unknown>;
  const b = next as Record<string, unknown>;
  for (const k of Object.keys(b)) if (a[k] !== b[k]) changed[k] = b[k];
  for (const k of Object.keys(a)) if (!(k in b)) changed[k] = undefined;
  return changed as Partial<T>;
}

/** A damaged change log: no previous copy is kept of a log, but one damaged after its first lines can be cut. */
function logDamaged(file: string, reason: string, cut: LogCut | null): StoreFileDamagedError {
  return new StoreFileDamagedError(file, reason, { file: previousCopyOf(file), state: 'missing', reason: null, writtenAtMs: null }, cut);
}

/**
 * The log a whole write ends, kept as `<log>.prev`; with no log, an older `<log>.prev` goes, as it
 * does not belong with the shard's new `.prev`.
 */
async function setLogAside(file: string): Promise<void> {
  try {
    await rename(file, previousCopyOf(file));
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'ENOENT') throw error;
    await removeFile(previousCopyOf(file));
  }
}

async function removeFile(file: string): Promise<void> {
  await unlink(file).catch((error: NodeJS.ErrnoException) => {
    if (error.code !== 'ENOENT') throw error;
  });
}

async function truncateLog(file: string, bytes: number): Promise<void> {
  await truncate(file, bytes).catch((error: NodeJS.ErrnoException) => {
    if (error.code !== 'ENOENT') throw error;
  });
}

function applyChanges<T>(data: Record<string, T>, changes: LogChanges<T>): void {
  // With a layout these are stored records (mains and parts), joined after the whole log is laid over.
  for (const [key, value] of Object.entries(changes)) {
    if (value === null) delete data[key];
    else data[key] = value;
  }
}

function withFields<T>(base: T, fields: Partial<T> | null): T {
  if (fields === null) return base;
  const merged: Record<string, unknown> = { ...base, ...fields };
  for (const [k, v] of Object.entries(fields)) if (v === undefined) delete merged[k];
  return merged as T;
}
