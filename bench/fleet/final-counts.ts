/** The run's closing figures: load, what the agents logged, and the store writes over the whole run. */
import os from 'node:os';
import type { FleetRun } from './run.js';
import { round } from './util.js';

export async function finalCounts(run: FleetRun): Promise<void> {
  if (run.api?.retries.length) run.figures.notes.push(`retried GETs after connection failures: ${run.api.retries.length} (first: ${run.api.retries[0]})`);
  run.figures.loadAvgEnd = os.loadavg().map((x) => round(x));
  const s = await run.agentStatus();
  run.figures.hub.agentWarnings = s.warnings;
  run.figures.hub.agentErrors = s.errors;
  run.figures.hub.agentMessages = s.messages;
  if (run.hub && run.storeWatch) {
    run.figures.hub.store = {
      writes: run.storeWatch.writes,
      bytesAtRename: run.storeWatch.bytes,
      writeBytesProc: run.storeWriteBytesDone + run.hubStoreWriteBytes(),
      source: 'inotify renames of shard files (count, size after each) and /proc/<hub>/io write_bytes less the log; the hub exposes no store counter',
    };
  }
}
