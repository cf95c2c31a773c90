/**
 * What the scheduler reads of a replica's reported state: whether it serves (a hand-over to it may
 * end) and whether it is failing (a scale-down takes it before those that work). Both come from
 * the agent's last report (observed-state.ts); a replica with no report does neither.
 */
import type { ReplicaReport } from '../shared/protocol.js';

/**
 * The report says the replica serves: it runs the spec whose hash is `currentSpecHash`, and is
 * healthy. An agent reports `health` for every container whose spec has a check (protocol 3, the
 * least a checked spec is placed on), `starting` until a probe passes; none without a check, and a
 * replica without one serves once it runs. The caller checks that the node is ready.
 */
export function reportServes(report: ReplicaReport, currentSpecHash: string | undefined): boolean {
  return report.state === 'running' && report.specHash === currentSpecHash && (report.health === undefined || report.health.status === 'healthy');
}

/**
 * The report says the replica does not do its job: it failed, keeps crashing, or its health check
 * fails. Whatever spec it runs: losing it costs less than losing one that works.
 */
export function reportFailing(report: ReplicaReport): boolean {
  return report.state === 'failed' || report.crashLoop !== undefined || report.health?.status === 'unhealthy';
}
