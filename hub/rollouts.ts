/**
 * Rolling updates, the hub's duty: each reconcile pass takes the next step of every service whose
 * update is going on (rollout/rollout-planner.ts decides it, purely), from what its new replicas
 * report; this part reads those reports, wakes the loop when one of them changes or a monitor or
 * delay ends, and hands a failed update to the services for its automatic rollback.
 */
import type { Clock } from '../shared/clock.js';
import type { ReplicaReport } from '../shared/protocol.js';
import type { Dispatcher } from './dispatcher.js';
import type { FailureDetector } from './failure-detector.js';
import type { ObservedState } from './observed-state.js';
import { newReplicaId } from './replica-id.js';
import { isActive, planRollout, type ReplicaProgress } from './rollout/rollout-planner.js';
import type { RolloutRecord } from './rollout/rollout-record.js';
import type { Placement } from './scheduler/types.js';
import { updateConfigOf } from './spec/update-config.js';
import type { ServiceRecord } from './store/store.js';

/** A report of a batch's replica brings the next pass this close: reports of one batch share it. */
const BATCH_REPORT_PASS_WITHIN_MS = 100;

export interface RolloutsDeps {
  observed: ObservedState;
  dispatcher: Pick<Dispatcher, 'specHashOf'>;
  detector: Pick<FailureDetector, 'state'>;
  clock: Clock;
  /** Asks for a reconcile pass within that time. */
  markDirty: (withinMs: number) => void;
  /** The update of `service` at `failedRevision` failed: accept `toRevision`'s spec again, as a rollback. */
  rollBack: (service: string, failedRevision: number, toRevision: number, reason: string) => void;
}

/** The next step of one service's update, for the reconcile pass to write with its placements. */
export interface RolloutWrite {
  placements: Placement[];
  rollout: RolloutRecord;
}

export class Rollouts {
  /** Replicas of batches in flight or in their monitor period -> their service: a report of one is worth a pass. Bounded by the services' sizes. */
  private readonly watched = new Map<string, string>();
  /** The same, per service, so that a service's batch is let go of in proportion to its size. */
  private readonly watchedByService = new Map<string, readonly string[]>();
  private wakeTimer: NodeJS.Timeout | null = null;
  private wakeAtMs = Number.POSITIVE_INFINITY;

  constructor(private readonly deps: RolloutsDeps) {}

  /**
   * The next step of `record`'s update, given the placements this pass leaves it (`placements`);
   * null when it has none going on or nothing changes.
   */
  step(record: ServiceRecord, placements: Placement[]): RolloutWrite | null {
    const rollout = record.rollout;
    if (!isActive(rollout)) return null;
    const nowMs = this.deps.clock.nowMs();
    const config = updateConfigOf(record.spec);
    const step = planRollout({
      placements,
      rollout,
      // A global service has one replica per node and no other node to start a new one on.
      config: record.spec.mode === 'global' && config.order === 'start-first' ? { ...config, order: 'stop-first' } : config,
      nowMs,
      progressOf: (id) => this.progressOf(record.name, id),
      newReplicaId: () => newReplicaId(record.name),
    });
    if (step.wakeAtMs !== null) this.wakeAt(step.wakeAtMs, nowMs);
    if (step.rollBackTo !== null) {
      this.deps.rollBack(record.name, rollout.toRevision, step.rollBackTo, step.rollout.reason ?? 'the update failed');
    }
    if (step.placements === placements && step.rollout === rollout) return null;
    return { placements: step.placements as Placement[], rollout: step.rollout };
  }

  /** After a pass: the services it wrote. Their batches' replicas are the ones to watch. */
  track(changed: readonly ServiceRecord[]): void {
    for (const s of changed) {
      for (const id of this.watchedByService.get(s.name) ?? []) this.watched.delete(id);
      this.watchedByService.delete(s.name);
      if (!isActive(s.rollout)) continue;
      // The batch in flight, and the replicas of earlier ones still in their monitor period.
      const ids = [...(s.rollout.batch?.replicaIds ?? []), ...(s.rollout.watching ?? []).map((w) => w.replicaId)];
      if (ids.length === 0) continue;
      for (const id of ids) this.watched.set(id, s.name);
      this.watchedByService.set(s.name, ids);
    }
  }

  /** The service is gone: none of its replicas moves an update any more. */
  forget(service: string): void {
    for (const id of this.watchedByService.get(service) ?? []) this.watched.delete(id);
    this.watchedByService.delete(service);
  }

  /**
   * Accepted reports of a node: one about a batch's replica brings a pass. One that only tells
   * how a pull goes (every few seconds while a slow link downloads) decides nothing: no pass.
   */
  reported(reports: readonly ReplicaReport[]): void {
    if (this.watched.size === 0) return;
    for (const r of reports) {
      if (r.pull !== undefined) continue;
      if (this.watched.get(r.replicaId) === r.service) {
        this.deps.markDirty(BATCH_REPORT_PASS_WITHIN_MS);
        return;
      }
    }
  }

  stop(): void {
    if (this.wakeTimer) clearTimeout(this.wakeTimer);
    this.wakeTimer = null;
  }

  /**
   * What a replica of a batch does, from its agent's last report. It must run the service's
   * current spec to serve; an agent that says its new container could not be made (a pull the
   * registry refused, a create the engine refused) while the old one goes on serving reports the
   * error with the old container's hash, and that fails it too.
   */
  progressOf(service: string, replicaId: string): ReplicaProgress {
    const { observed, dispatcher, detector } = this.deps;
    const seen = observed.get(replicaId);
    if (!seen || detector.state(seen.nodeId) !== 'ready') return { kind: 'starting', restarts: null };
    const { report } = seen;
    const current = report.specHash === dispatcher.specHashOf(service);
    // An older container's report: its error is about the new one only while it runs (a running
    // container has no error of its own). A stopped or crashing one may be what the update replaces
    // (a rollback's broken version) and says nothing of the new one yet.
    if (!current) return report.error && report.state === 'running' ? { kind: 'failed', reason: report.error } : { kind: 'starting', restarts: null };
    if (report.crashLoop) {
      const exit = report.crashLoop.lastExitCode === null ? 'failing its health check' : `exit code ${report.crashLoop.lastExitCode}`;
      return { kind: 'failed', reason: `crash-looping (${report.crashLoop.restarts} restarts in a row, last: ${exit})` };
    }
    if (report.state === 'failed') return { kind: 'failed', reason: report.error ?? 'the container failed' };
    if (report.health?.status === 'unhealthy') {
      return { kind: 'failed', reason: `health check failing${report.health.output ? `: ${report.health.output}` : ''}` };
    }
    if (report.state === 'running' && (report.health === undefined || report.health.status === 'healthy')) {
      return { kind: 'serving', restarts: report.restarts };
    }
    return { kind: 'starting', restarts: report.restarts };
  }

  private wakeAt(atMs: number, nowMs: number): void {
    if (this.wakeTimer && this.wakeAtMs <= atMs) return;
    if (this.wakeTimer) clearTimeout(this.wakeTimer);
    this.wakeAtMs = atMs;
    this.wakeTimer = setTimeout(() => {
      this.wakeTimer = null;
      this.wakeAtMs = Number.POSITIVE_INFINITY;
      this.deps.markDirty(0);
    }, Math.max(0, atMs - nowMs));
    this.wakeTimer.unref();
  }
}
