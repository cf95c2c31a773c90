import { appendFile, chmod, readFile, rename, stat, unlink } from 'node:fs/promises';
import path from 'node:path';
import type { Logger } from '../../shared/logger.js';
import { ensurePrivateDir } from '../../shared/private-files.js';
import type { AuditRecord } from './audit-record.js';
import { newestMatching, type AuditQuery, type AuditRead, type AuditTrail } from './audit-trail.js';

const MIB = 1024 * 1024;

export interface FileAuditLogOptions {
  logger: Pick<Logger, 'warn' | 'info'>;
  /** A file is rotated before it would pass this size: 10 MiB by default. */
  maxFileBytes?: number;
  /** Files kept, the one written included (`audit.log`, `audit.log.1`, ...): 3 by default. */
  keepFiles?: number;
  /**
   * Records waiting for their write: past it, new ones are dropped and counted. A write takes a
   * millisecond; 10,000 records (some 3 MB) is a stalled disk, not a busy API.
   */
  maxQueued?: number;
}

/** Records per file write: one append carries every record that came meanwhile, up to this. */
const MAX_BATCH = 1000;

/**
 * The audit log: JSON lines appended to `<dir>/audit.log` (the dir 0700, the files 0600),
 * rotated by size, so that it holds at most about keepFiles x maxFileBytes. A request hands its
 * record over and goes on; one writer appends what has queued meanwhile. A write that fails
 * loses its records (counted; warned once per burst of failures) rather than holding requests or
 * growing memory while the disk is away: the audit must never be what stops the API.
 */
export class FileAuditLog implements AuditTrail {
  private readonly file: string;
  private readonly maxFileBytes: number;
  private readonly keepFiles: number;
  private readonly maxQueued: number;
  private readonly queue: string[] = [];
  /** The writer in progress, if any; it runs until the queue is empty. */
  private draining: Promise<void> | null = null;
  /** Writes, rotations and reads one at a time: a read never sees a file renamed under it. */
  private exclusive: Promise<unknown> = Promise.resolve();
  /** Bytes in the current file; null until it has been looked at (again after a failure). */
  private fileBytes: number | null = null;
  private readonly counts = { written: 0, dropped: 0, failed: 0 };
  /** Records lost since writes started failing; null while they work. */
  private lostInFailure: number | null = null;
  private droppingSince: number | null = null;

  constructor(
    private readonly dir: string,
    private readonly opts: FileAuditLogOptions,
  ) {
    this.file = path.join(dir, 'audit.log');
    this.maxFileBytes = opts.maxFileBytes ?? 10 * MIB;
    this.keepFiles = opts.keepFiles ?? 3;
    this.maxQueued = opts.maxQueued ?? 10_000;
    if (!(this.maxFileBytes > 0) || !(this.keepFiles >= 1) || !(this.maxQueued >= 1)) throw new RangeError('audit log bounds must be positive');
  }

  record(record: AuditRecord): void {
    if (this.queue.length >= this.maxQueued) {
      this.counts.dropped++;
      if (this.droppingSince === null) {
        this.droppingSince = this.counts.dropped;
        this.opts.logger.warn({ maxQueued: this.maxQueued }, 'audit records dropped: the audit log cannot keep up (a slow or stalled disk)');
      }
      return;
    }
    this.queue.push(`${JSON.stringify(record)}\n`);
    this.kick();
  }

  async flush(): Promise<void> {
    while (this.draining) await this.draining;
  }

  async read(query: AuditQuery): Promise<AuditRead> {
    await this.flush();
    return this.exclusively(() => this.readFiles(query));
  }

  stats() {
    return { ...this.counts };
  }

  async close(): Promise<void> {
    await this.flush();
  }

  private kick(): void {
    if (this.draining) return;
    this.draining = this.drain().finally(() => {
      this.draining = null;
      // A record that came after the loop saw an empty queue, and before this.
      if (this.queue.length > 0) this.kick();
    });
  }

  private async drain(): Promise<void> {
    while (this.queue.length > 0) {
      await this.exclusively(() => this.writeBatch(this.queue.splice(0, MAX_BATCH)));
      // The queue has room again: a later overflow is a new burst, worth a line of its own.
      this.droppingSince = null;
    }
  }

  private exclusively<T>(work: () => Promise<T>): Promise<T> {
    const next = this.exclusive.then(work, work);
    this.exclusive = next.catch(() => undefined);
    return next;
  }

  private async writeBatch(lines: string[]): Promise<void> {
    let written = 0;
    try {
      let fileBytes = await this.currentBytes();
      let chunk = '';
      let chunkBytes = 0;
      let chunkLines = 0;
      for (const line of lines) {
        const bytes = Buffer.byteLength(line);
        if (fileBytes + chunkBytes + bytes > this.maxFileBytes && fileBytes + chunkBytes > 0) {
          if (chunkLines > 0) await this.append(chunk);
          written += chunkLines;
          await this.rotate();
          fileBytes = 0;
          chunk = '';
          chunkBytes = 0;
          chunkLines = 0;
        }
        chunk += line;
        chunkBytes += bytes;
        chunkLines++;
      }
      if (chunkLines > 0) await this.append(chunk);
      written += chunkLines;
      this.fileBytes = fileBytes + chunkBytes;
    } catch (error) {
      this.writeFailed(lines.length - written, error);
      this.counts.written += written;
      return;
    }
    this.counts.written += written;
    if (this.lostInFailure !== null) {
      this.opts.logger.info({ lost: this.lostInFailure }, 'the audit log writes again');
      this.lostInFailure = null;
    }
  }

  private writeFailed(lost: number, error: unknown): void {
    this.counts.failed += lost;
    // Looked at again at the next write: the failure may have left the file anywhere.
    this.fileBytes = null;
    if (this.lostInFailure === null) {
      this.lostInFailure = 0;
      this.opts.logger.warn({ err: error, file: this.file }, 'cannot write the audit log: records are lost until it can (counted)');
    }
    this.lostInFailure += lost;
  }

  private async append(chunk: string): Promise<void> {
    await appendFile(this.file, chunk, { mode: 0o600 });
  }

  /** The current file's size, looked at (and the dir and file made private) the first time. */
  private async currentBytes(): Promise<number> {
    if (this.fileBytes !== null) return this.fileBytes;
    await ensurePrivateDir(this.dir);
    try {
      const size = (await stat(this.file)).size;
      // One written by a hub from before files were private, or copied in, may be readable by others.
      await chmod(this.file, 0o600);
      this.fileBytes = size;
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== 'ENOENT') throw error;
      this.fileBytes = 0;
    }
    return this.fileBytes;
  }

  private nameOf(index: number): string {
    return index === 0 ? this.file : `${this.file}.${index}`;
  }

  /** audit.log -> audit.log.1 -> ... ; the oldest beyond keepFiles goes. */
  private async rotate(): Promise<void> {
    await ignoreMissing(unlink(this.nameOf(this.keepFiles - 1)));
    for (let index = this.keepFiles - 2; index >= 0; index--) await ignoreMissing(rename(this.nameOf(index), this.nameOf(index + 1)));
    this.fileBytes = 0;
  }

  private async readFiles(query: AuditQuery): Promise<AuditRead> {
    const newestFirst = async function* (this: FileAuditLog): AsyncGenerator<AuditRecord[]> {
      for (let index = 0; index < this.keepFiles; index++) {
        let text: string;
        try {
          text = await readFile(this.nameOf(index), 'utf8');
        } catch (error) {
          // Nothing written yet, or the dir cannot be (a write failure says so, and counts it).
          if (['ENOENT', 'ENOTDIR'].includes((error as NodeJS.ErrnoException).code ?? '')) continue;
          throw error;
        }
        yield parseLines(text).reverse();
      }
    }.call(this);
    // Files are read one at a time, and no further than the query needs.
    const collected: AuditRecord[] = [];
    for await (const records of newestFirst) {
      const read = newestMatching(records, { ...query, limit: query.limit - collected.length });
      collected.unshift(...read.records);
      if (read.more) return { records: collected, more: true };
      // An older record than `since` in this file: the older files hold none that match.
      if (read.records.length < records.length) return { records: collected, more: false };
    }
    return { records: collected, more: false };
  }
}

/** The records of a file; a line that does not parse (torn by a crash mid-append) is skipped. */
function parseLines(text: string): AuditRecord[] {
  const records: AuditRecord[] = [];
  for (const line of text.split('\n')) {
    if (!line) continue;
    try {
      const parsed = JSON.parse(line) as AuditRecord;
      if (parsed && typeof parsed.time === 'string') records.push(parsed);
    } catch {
      // Torn or damaged: the rest of the file is still worth reading.
    }
  }
  return records;
}

async function ignoreMissing(operation: Promise<unknown>): Promise<void> {
  try {
    await operation;
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'ENOENT') throw error;
  }
}
