/**
 * Cold start: the hub started on the run's own data dir (the change logs and record parts the run
 * left, as a real hub has them) with no agent connecting, which is what issue 10's hub-start target
 * asks. Every agent is stopped first (as failover's cut stops some: the link closes, no reconnect),
 * then the hub is SIGKILLed and started again on the same data dir and port. Measured from the
 * SIGKILL: /healthz 200 (served only once the store and the dispatcher are loaded and the reconcile
 * loop and liveness sweep started), and the first scheduling pass planned
 * (`tether_scheduler_plan_seconds_count >= 1` on /metrics, as bench/hub-start.ts reads it). The
 * restart phase's figure is the same start under a reconnect storm, which /healthz waits behind.
 */
import { readdirSync, readFileSync, statSync } from 'node:fs';
import path from 'node:path';
import type { CutResult } from '../fleet-messages.js';
import { kill } from '../processes.js';
import { metricValue } from './hub-api.js';
import type { FleetRun } from './run.js';
import { round, seconds, sleep } from './util.js';

/** The first pass is waited for at most this long after /healthz; the start itself has the hub's own bound. */
const FIRST_PASS_TIMEOUT_MS = 60_000;

export interface StoreSize {
  /** The shard files (`*.json`), the state a start reads first. */
  shardBytes: number;
  /** The change logs (`*.log`), replayed over their shards at start. */
  logBytes: number;
}

/** Bytes of the store's live files under dir; previous copies (`.prev`) and temp files are not read at start. */
export function storeSizeIn(dir: string): StoreSize {
  const size: StoreSize = { shardBytes: 0, logBytes: 0 };
  const walk = (at: string) => {
    for (const entry of readdirSync(at, { withFileTypes: true })) {
      const full = path.join(at, entry.name);
      if (entry.isDirectory()) walk(full);
      else if (entry.name.endsWith('.json')) size.shardBytes += statSync(full).size;
      else if (entry.name.endsWith('.log')) size.logBytes += statSync(full).size;
    }
  };
  walk(dir);
  return size;
}

export async function coldStart(run: FleetRun): Promise<void> {
  // Every agent stopped, so none connects to the new hub (cut every 1st = all of them).
  const parts = await run.all<CutResult>({ cmd: 'cut', every: 1, service: 'bench' }, 60_000);
  run.liveAgents -= parts.reduce((n, p) => n + p.nodeIds.length, 0);
  const before = await run.agentStatus();
  if (before.ready > 0) throw new Error(`${before.ready} agents still connected after stopping them all`);

  await run.keepStoreCountersBeforeKill('for the cold start');
  const killedAt = performance.now();
  await kill(run.hub);
  const killS = seconds(killedAt);
  // What the new hub will load, read while no hub runs; the benchmark's own time for it is left
  // out of the figures, which count the kill and the hub's start.
  const size = storeSizeIn(path.join(run.dataDir, 'store'));
  const spawnAt = performance.now();
  const fromKill = () => killS + seconds(spawnAt);
  await run.startHub();
  const healthzS = fromKill();

  const token = readFileSync(path.join(run.dataDir, 'admin-token'), 'utf8').trim();
  let firstPassPlannedS: number | null = null;
  const deadline = performance.now() + FIRST_PASS_TIMEOUT_MS;
  while (performance.now() < deadline) {
    const res = await fetch(`${run.api.url}/metrics`, { headers: { authorization: `Bearer ${token}` }, signal: AbortSignal.timeout(5000) }).catch(() => null);
    const planned = res?.ok ? metricValue(await res.text(), 'tether_scheduler_plan_seconds_count') : null;
    if (planned !== null && planned >= 1) {
      firstPassPlannedS = fromKill();
      break;
    }
    await sleep(20);
  }
  if (firstPassPlannedS === null) run.figures.notes.push(`cold start: no scheduling pass planned within ${FIRST_PASS_TIMEOUT_MS / 1000} s of /healthz`);

  const after = await run.agentStatus();
  run.figures.hub.coldStart = {
    measured: true,
    healthzS: round(healthzS, 3),
    firstPassPlannedS: firstPassPlannedS === null ? null : round(firstPassPlannedS, 3),
    shardBytes: size.shardBytes,
    logBytes: size.logBytes,
    nodes: run.figures.hub.joined,
    replicas: run.opts.replicas,
    agentConnects: after.connects - before.connects,
  };
}
