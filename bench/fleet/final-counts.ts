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
    const counters = await run.storeCountersTotal();
    run.figures.hub.store = {
      hubWrites: counters?.writes ?? null,
      hubBytes: counters?.bytes ?? null,
      writes: run.storeWatch.writes,
      bytesAtRename: run.storeWatch.bytes,
      writeBytesProc: run.storeWriteBytesDone + run.hubStoreWriteBytes(),
      source: "the hub's /metrics counters (tether_store_writes_total, tether_store_written_bytes_total) summed over its processes; inotify renames of shard files (count, size after each) and /proc/<hub>/io write_bytes less the log from outside",
    };
  }
}
