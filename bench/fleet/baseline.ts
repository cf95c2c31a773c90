/**
 * The bare ws baseline: the same agent processes open the same number of plain ws connections to
 * bench/baseline-server.ts, send the same heartbeat frames, and are measured the same way (RSS per
 * connection after GC, idle CPU, burst throughput). It runs first, alone, and is gone before the
 * hub starts, so that hub figures read as hub / baseline of the same run.
 */
import type { BurstResult, RawConnectResult } from '../fleet-messages.js';
import type { BurstFigures } from '../fleet-figures.js';
import { baselineStats, kill, startBaseline } from '../processes.js';
import { rssBytes } from '../proc-stats.js';
import type { FleetRun } from './run.js';
import { MiB, round, seconds, sleep } from './util.js';

export async function baseline(run: FleetRun): Promise<void> {
  const { opts } = run;
  const server = await startBaseline(opts.gc);
  try {
    const before = await run.gcRss(server);
    const beforeNoGc = rssBytes(server.pid)!;
    const started = performance.now();
    const shares = run.shares();
    const parts = await Promise.all(
      run.workers.map((w, i) =>
        w.call<RawConnectResult>({ cmd: 'raw-connect', url: `ws://127.0.0.1:${server.port}/`, count: shares[i]![1], heartbeatMs: opts.heartbeatMs }, 300_000),
      ),
    );
    const connectS = seconds(started);
    const opened = parts.reduce((n, p) => n + p.opened, 0);
    if (opened < opts.agents) run.figures.errors.push(`baseline: ${opts.agents - opened} connections failed (${parts.find((p) => p.firstError)?.firstError})`);
    await sleep(run.opts.settleMs);
    const afterNoGc = rssBytes(server.pid)!;
    const after = await run.gcRss(server);
    const idleCpu = await run.cpuWindow(server.pid, false);
    let burst: BurstFigures | null = null;
    if (!opts.skip.has('burst')) {
      const counted = (await baselineStats(server)).frames;
      burst = run.burstFigures(await run.all<BurstResult>({ cmd: 'raw-burst', framesPerConnection: run.framesPerConnection() }, 300_000));
      burst.serverCounted = (await baselineStats(server)).frames - counted;
    }
    run.figures.baseline = {
      connected: opened,
      connectS,
      rssBeforeMiB: round(before.rss / MiB, 1),
      rssAfterMiB: round(after.rss / MiB, 1),
      rssPerConnectionKiB: round((after.rss - before.rss) / 1024 / Math.max(1, opened)),
      rssPerConnectionNoGcKiB: round((afterNoGc - beforeNoGc) / 1024 / Math.max(1, opened)),
      heapPerConnectionKiB: after.heapUsed !== null && before.heapUsed !== null ? round((after.heapUsed - before.heapUsed) / 1024 / Math.max(1, opened)) : null,
      idleCpu,
      burst,
    };
  } finally {
    await run.all({ cmd: 'raw-close' }, 60_000).catch(() => undefined);
    await kill(server);
  }
}
