import type { AuditRecord } from './audit-record.js';
import { newestMatching, type AuditQuery, type AuditRead, type AuditTrail } from './audit-trail.js';

/** As many as one read may ask for. */
const DEFAULT_MAX_RECORDS = 1000;

/**
 * The audit of a hub without a data dir (tests that build one in memory): the newest records in
 * memory, the oldest let go.
 */
export class MemoryAuditTrail implements AuditTrail {
  private readonly records: AuditRecord[] = [];
  private written = 0;

  constructor(private readonly maxRecords = DEFAULT_MAX_RECORDS) {}

  record(record: AuditRecord): void {
    this.records.push(record);
    if (this.records.length > this.maxRecords) this.records.shift();
    this.written++;
  }

  async flush(): Promise<void> {}

  async read(query: AuditQuery): Promise<AuditRead> {
    return newestMatching([...this.records].reverse(), query);
  }

  stats() {
    return { written: this.written, dropped: 0, failed: 0 };
  }

  async close(): Promise<void> {}
}
