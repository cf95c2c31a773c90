import type { AuditRecord } from './audit-record.js';

export interface AuditQuery {
  /** Records at or after this wall-clock time (ms); null: any. */
  sinceMs: number | null;
  limit: number;
}

export interface AuditRead {
  /** The newest records that match, oldest first. */
  records: AuditRecord[];
  /** Older records match too, beyond the limit. */
  more: boolean;
}

/**
 * Where the hub keeps its audit records. `record` never waits nor throws: a request is never
 * held, nor failed, by its audit; what cannot be kept is counted instead (`stats`).
 */
export interface AuditTrail {
  record(record: AuditRecord): void;
  /** Waits for the records handed over so far to be written (or given up on). */
  flush(): Promise<void>;
  read(query: AuditQuery): Promise<AuditRead>;
  /** Records written, dropped at a full queue, and lost to failed writes, since the hub started. */
  stats(): { written: number; dropped: number; failed: number };
  close(): Promise<void>;
}

/** Keeps the newest `limit` of `candidates` (newest first) that are at or after `sinceMs`; they stop at the first older one. */
export function newestMatching(candidates: Iterable<AuditRecord>, query: AuditQuery): AuditRead {
  const found: AuditRecord[] = [];
  for (const record of candidates) {
    if (query.sinceMs !== null && Date.parse(record.time) < query.sinceMs) break;
    if (found.length === query.limit) return { records: found.reverse(), more: true };
    found.push(record);
  }
  return { records: found.reverse(), more: false };
}
