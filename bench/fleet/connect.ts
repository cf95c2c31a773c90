/**
 * Join and connect: every agent joins through POST /v1/join (the agent's own joinHub, a bounded
 * number in flight), then all start at once and say hello; the hub's RSS is read after a forced
 * GC before the joins, after them, and once every agent is welcomed (RSS per agent, per connection).
 */
import type { JoinResult } from '../fleet-messages.js';
import { rssBytes } from '../proc-stats.js';
import type { FleetRun } from './run.js';
import { Curve, MiB, round, seconds, sleep, waitUntil } from './util.js';

export async function join(run: FleetRun): Promise<void> {
  const { opts } = run;
  run.rssMarks.before = await run.gcRss(run.hub!);
  run.rssMarks.beforeNoGc = rssBytes(run.hub!.pid)!;
  const res = await run.api.call<{ token: string }>('POST', '/v1/join-tokens', { ttlSeconds: 86_400 });
  if (res.status !== 201) throw new Error(`POST /v1/join-tokens: HTTP ${res.status}`);
  const started = performance.now();
  const shares = run.shares();
  const perProcess = Math.max(1, Math.round(opts.joinConcurrency / opts.processes));
  const parts = await Promise.all(
    run.workers.map((w, i) =>
      w.call<JoinResult>(
        { cmd: 'join', hubUrl: run.api.url, joinToken: res.body.token, firstIndex: shares[i]![0], count: shares[i]![1], concurrency: perProcess },
        600_000,
      ),
    ),
  );
  run.figures.hub.joinS = seconds(started);
  run.figures.hub.joined = parts.reduce((n, p) => n + p.joined, 0);
  run.liveAgents = run.figures.hub.joined;
  const failed = parts.reduce((n, p) => n + p.failed, 0);
  if (failed > 0) run.figures.errors.push(`join: ${failed} agents could not join (${parts.find((p) => p.firstError)?.firstError})`);
  if (run.liveAgents === 0) throw new Error('no agent joined');
  run.rssMarks.joined = await run.gcRss(run.hub!);
}

export async function connect(run: FleetRun): Promise<void> {
  const n = run.liveAgents;
  const started = performance.now();
  const curve = new Curve(n, started);
  await run.all({ cmd: 'start' }, 600_000);
  const timeoutMs = Math.max(120_000, n * 30);
  try {
    await waitUntil(`all ${n} agents welcomed`, timeoutMs, 100, async () => {
      const s = await run.agentStatus();
      curve.see(s.ready);
      run.figures.hub.ready = s.ready;
      if (s.ready < n) return null;
      const h = await run.api.healthz();
      run.figures.hub.connectedNodes = h.connectedNodes;
      return h.connectedNodes >= n ? true : null;
    });
    run.figures.hub.connectS = seconds(started);
  } finally {
    run.figures.hub.connectCurve = curve.result();
    run.figures.hub.connectedNodes = (await run.api.healthz().catch(() => ({ connectedNodes: -1 }))).connectedNodes;
  }
  await sleep(run.opts.settleMs);
  const afterNoGc = rssBytes(run.hub!.pid)!;
  const after = await run.gcRss(run.hub!);
  const { before, joined, beforeNoGc } = run.rssMarks;
  run.figures.hub.rss = {
    beforeMiB: round(before!.rss / MiB, 1),
    joinedMiB: round(joined!.rss / MiB, 1),
    connectedMiB: round(after.rss / MiB, 1),
    perAgentKiB: round((after.rss - before!.rss) / 1024 / n),
    perConnectionKiB: round((after.rss - joined!.rss) / 1024 / n),
    perAgentNoGcKiB: round((afterNoGc - beforeNoGc!) / 1024 / n),
    heapPerAgentKiB: after.heapUsed !== null && before!.heapUsed !== null ? round((after.heapUsed - before!.heapUsed) / 1024 / n) : null,
    heapJoinedPerAgentKiB: joined!.heapUsed !== null && before!.heapUsed !== null ? round((joined!.heapUsed - before!.heapUsed) / 1024 / n) : null,
  };
}
