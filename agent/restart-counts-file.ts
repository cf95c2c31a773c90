import { open } from 'node:fs/promises';
import path from 'node:path';
import { writeFileAtomic } from '../shared/atomic-file.js';
import {
  MAX_CONTAINERS_PER_REPLICA,
  MAX_TRACKED_REPLICAS,
  type ReplicaRestarts,
  type RestartCountStore,
  type RestartRecords,
} from './reconciler/restart-tally.js';
import type { Logger } from '../shared/logger.js';

const FORMAT_VERSION = 1;
/**
 * Far above what a node writes (a replica with one container takes some 200 bytes): a larger
 * file is damaged or not ours, and reading it whole would cost the agent memory for nothing.
 */
export const MAX_RESTART_COUNTS_FILE_BYTES = 4 * 1024 * 1024;
/** Longer than any id or spec hash the protocol allows: anything longer is not ours. */
const MAX_KEY_LENGTH = 128;

/**
 * The replicas' restart counts in the agent's data dir, so that an agent restart does not send
 * the hub a count going backwards. Written atomically; saves arriving while a write is under way
 * collapse into one more write of the newest counts. A file that is missing, damaged or
 * unreadable is not a reason to stop: the counts start again from the engine's.
 */
export class RestartCountsFile implements RestartCountStore {
  private readonly file: string;
  private pending: RestartRecords | null = null;
  private writing: Promise<void> | null = null;

  constructor(
    dataDir: string,
    private readonly logger: Pick<Logger, 'warn'>,
  ) {
    this.file = path.join(dataDir, 'restarts.json');
  }

  async load(): Promise<RestartRecords | null> {
    let text: string;
    try {
      // One byte past the bound is read, never more: that is how a file too large shows, even
      // one that grows while it is read.
      const handle = await open(this.file, 'r');
      try {
        const buffer = Buffer.alloc(MAX_RESTART_COUNTS_FILE_BYTES + 1);
        let bytes = 0;
        while (bytes < buffer.length) {
          const { bytesRead } = await handle.read(buffer, bytes, buffer.length - bytes, bytes);
          if (bytesRead === 0) break;
          bytes += bytesRead;
        }
        if (bytes > MAX_RESTART_COUNTS_FILE_BYTES) {
          this.logger.warn({ file: this.file, maxBytes: MAX_RESTART_COUNTS_FILE_BYTES }, 'the restart counts file is too large: counting again from the engine');
          return null;
        }
        text = buffer.toString('utf8', 0, bytes);
      } finally {
        await handle.close();
      }
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT') this.logger.warn({ file: this.file, err: String(err) }, 'cannot read the restart counts');
      return null;
    }
    const records = decodeRestartCounts(text);
    if (!records) this.logger.warn({ file: this.file }, 'the restart counts file is damaged: counting again from the engine');
    return records;
  }

  save(records: RestartRecords): void {
    this.pending = records;
    this.writing ??= this.drain();
  }

  async flush(): Promise<void> {
    await this.writing;
  }

  private async drain(): Promise<void> {
    while (this.pending) {
      const records = this.pending;
      this.pending = null;
      try {
        await writeFileAtomic(this.file, JSON.stringify({ version: FORMAT_VERSION, replicas: records }), 0o600);
      } catch (err) {
        this.logger.warn({ file: this.file, err: String(err) }, 'cannot write the restart counts');
      }
    }
    this.writing = null;
  }
}

/** The counts in a file's text, or null unless every field is as written (and within the limits). */
export function decodeRestartCounts(text: string): RestartRecords | null {
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    return null;
  }
  if (!isObject(value) || value.version !== FORMAT_VERSION || !isObject(value.replicas)) return null;
  const entries = Object.entries(value.replicas);
  if (entries.length > MAX_TRACKED_REPLICAS) return null;
  for (const [replicaId, r] of entries) {
    if (replicaId.length > MAX_KEY_LENGTH || !isReplicaRestarts(r)) return null;
  }
  // fromEntries: own properties even for a key such as "__proto__".
  return Object.fromEntries(entries) as RestartRecords;
}

function isReplicaRestarts(r: unknown): r is ReplicaRestarts {
  if (!isObject(r) || !isCount(r.restarts) || !isObject(r.engineCounts)) return false;
  if (r.lastSpecHash !== null && (typeof r.lastSpecHash !== 'string' || r.lastSpecHash.length > MAX_KEY_LENGTH)) return false;
  const counts = Object.entries(r.engineCounts);
  return counts.length <= MAX_CONTAINERS_PER_REPLICA && counts.every(([id, n]) => id.length <= MAX_KEY_LENGTH && isCount(n));
}

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function isCount(n: unknown): n is number {
  return typeof n === 'number' && Number.isSafeInteger(n) && n >= 0;
}
