/** Placement: one PUT of the "bench" service, until every replica is reported running (FleetRun.waitRunning). */
import { BENCH_IMAGE } from '../fleet-messages.js';
import type { FleetRun } from './run.js';
import { round } from './util.js';

export async function placement(run: FleetRun): Promise<void> {
  const r = run.opts.replicas;
  const started = performance.now();
  const put = await run.api.call('PUT', '/v1/services/bench', { image: BENCH_IMAGE, command: ['/bin/sleep', '3600'], replicas: r });
  if (put.status !== 201 && put.status !== 200) throw new Error(`PUT /v1/services/bench: HTTP ${put.status} ${JSON.stringify(put.body).slice(0, 300)}`);
  const done = await run.waitRunning('bench', r, started, Math.max(120_000, r * 2), (v) => v.status.running === r);
  run.figures.hub.placement = {
    replicas: r,
    running: done.view.status.running,
    seconds: done.hubS,
    perSecond: Math.round(r / done.hubS),
    agentsReportedS: done.agentsS,
    lastGetMs: round(done.getMs[done.getMs.length - 1]!, 1),
  };
}
