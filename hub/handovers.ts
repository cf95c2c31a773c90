/**
 * Hand-overs: a replica that moves off its node (lost, draining, or no longer matching its
 * service's constraints) keeps its predecessor placed until the replacement serves. This part
 * knows which replacements end a hand-over, whether a replica serves its service's current spec,
 * and asks for the pass that records the end of one.
 */
import type { ReplicaReport } from '../shared/protocol.js';
import type { Dispatcher } from './dispatcher.js';
import type { FailureDetector } from './failure-detector.js';
import type { ObservedState } from './observed-state.js';
import { reportFailing, reportServes } from './replica-serving.js';
import type { ServiceRecord } from './store/store.js';

/** How long the end of a hand-over may wait for others before the pass that records it. */
const HANDOVER_PASS_WITHIN_MS = 1000;

export interface HandoversDeps {
  observed: ObservedState;
  dispatcher: Pick<Dispatcher, 'specHashOfReplica'>;
  detector: Pick<FailureDetector, 'state'>;
  /** Asks for a reconcile pass within that time. */
  markDirty: (withinMs: number) => void;
}

export class Handovers {
  /**
   * Per service, the replacements whose predecessors wait for them: their first `running` report
   * ends a hand-over. Updated from the services a pass changed, so a pass costs nothing here for
   * the services it left alone.
   */
  private readonly handoverReplacements = new Map<string, Set<string>>();

  constructor(private readonly deps: HandoversDeps) {}

  /** After a pass: the services it changed. */
  track(changed: readonly ServiceRecord[]): void {
    for (const s of changed) {
      const waiting = new Set<string>();
      for (const p of s.placements) if (p.replacedBy) waiting.add(p.replacedBy);
      if (waiting.size > 0) this.handoverReplacements.set(s.name, waiting);
      else this.handoverReplacements.delete(s.name);
    }
  }

  /** The service is gone: none of its replacements ends anything any more. */
  forget(service: string): void {
    this.handoverReplacements.delete(service);
  }

  /**
   * Whether the replica serves: its agent reports it running the spec it should (its service's
   * current one, or the revision a rolling update pins it to), healthy when that has a health
   * check, and its node is ready. Only then may the replica it replaces go:
   * the old one is still serving (a drained node's), or may come back (a lost node's).
   */
  isServing(replicaId: string): boolean {
    const { observed, dispatcher, detector } = this.deps;
    const seen = observed.get(replicaId);
    return (
      seen !== undefined &&
      reportServes(seen.report, dispatcher.specHashOfReplica(seen.report.service, replicaId)) &&
      detector.state(seen.nodeId) === 'ready'
    );
  }

  /** Whether the replica's agent reports it failed, crash-looping or unhealthy. */
  isFailing(replicaId: string): boolean {
    const seen = this.deps.observed.get(replicaId);
    return seen !== undefined && reportFailing(seen.report);
  }

  /**
   * Accepted reports of a node: a replacement that serves ends a hand-over (its first `running`,
   * or the report that it became healthy when it has a check).
   */
  reported(reports: readonly ReplicaReport[]): void {
    if (this.handoverReplacements.size === 0) return;
    for (const r of reports) {
      if (r.state === 'running' && (r.health === undefined || r.health.status === 'healthy') && this.handoverReplacements.get(r.service)?.has(r.replicaId)) {
        // Ending a hand-over only drops the replica the old node no longer needs to run: not
        // urgent, and during a failover or a drain many end within seconds, so they share a pass.
        this.deps.markDirty(HANDOVER_PASS_WITHIN_MS);
        return;
      }
    }
  }
}
