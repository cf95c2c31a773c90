/**
 * Failover: every 10th agent is stopped (its link closes); until the agents report every replica
 * running again and the hub shows none counted on a node that is down, minus lostAfter.
 */
import type { CutResult } from '../fleet-messages.js';
import type { FleetRun } from './run.js';
import { round } from './util.js';

export async function failover(run: FleetRun): Promise<void> {
  // What the cut agents run is asked of them, not of the hub: a view of every replica is
  // seconds of blocking work for the hub at this size, which would disturb what is measured.
  const startedAt = performance.now();
  const parts = await run.all<CutResult>({ cmd: 'cut', every: 10, service: 'bench' }, 60_000);
  const cut = new Set(parts.flatMap((p) => p.nodeIds));
  run.liveAgents -= cut.size;
  const toMove = parts.reduce((n, p) => n + p.replicas, 0);
  const lostAfterMs = run.opts.lostAfterMs;
  const r = run.opts.replicas;
  const done = await run.waitRunning(
    'bench',
    r,
    startedAt,
    lostAfterMs + 120_000,
    // All running on ready nodes. Replicas of the lost nodes that wait for the hub to record the
    // hand-over (their replacements run) are not counted by the hub, and need not be gone.
    (v) => v.status.running === r && v.status.onDownNodes === 0,
  );
  const firstMoveS = done.firstIncreaseS;
  const agentsS = done.agentsS;
  const totalS = done.hubS;
  run.figures.hub.failover = {
    agentsReportedS: agentsS,
    measured: true,
    lostAfterMs,
    cutAgents: cut.size,
    replicasToMove: toMove,
    firstMoveS,
    totalS,
    afterLostAfterS: round(totalS - lostAfterMs / 1000, 3),
  };
}
