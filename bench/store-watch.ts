/**
 * Counts the hub's store writes from outside the hub. The embedded store writes every shard file
 * atomically (a temp file renamed over the old one), so each completed write shows up as one
 * rename onto a `<collection>-NN.json` name; its size right after is what that write put on disk.
 *
 * This is an observer's estimate (a size is read a moment after the rename, and a burst may be
 * read as its last version). The exact figures are the hub's own counters on its /metrics
 * (tether_store_writes_total, tether_store_written_bytes_total), which the benchmark reads too.
 */
import { statSync, watch, type FSWatcher } from 'node:fs';
import path from 'node:path';

const SHARD_FILE_RE = /^[a-z-]+-\d+\.json$/;

export class StoreWatch {
  private readonly watchers: FSWatcher[] = [];
  writes = 0;
  bytes = 0;

  /** Watches `<storeDir>` and its collection folders; the hub must have created them already. */
  constructor(storeDir: string, folders = ['', 'nodes', 'services']) {
    for (const folder of folders) {
      const dir = path.join(storeDir, folder);
      try {
        const w = watch(dir, { persistent: false }, (event, filename) => {
          if (event !== 'rename' || !filename || !SHARD_FILE_RE.test(filename)) return;
          try {
            const size = statSync(path.join(dir, filename)).size;
            this.writes++;
            this.bytes += size;
          } catch {
            // Renamed away again before we looked: not a completed write onto this name.
          }
        });
        this.watchers.push(w);
      } catch {
        // A folder this store layout does not have.
      }
    }
  }

  close(): void {
    for (const w of this.watchers) w.close();
  }
}
