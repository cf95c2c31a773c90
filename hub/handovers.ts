/**
 * Hand-overs: a replica that moves off a lost or unusable node keeps its predecessor placed until
 * the replacement runs. This part knows which replacements end a hand-over, whether a replica runs
 * its service's current spec, and asks for the pass that records the end of one.
 */
import type { ReplicaReport } from '../shared/protocol.js';
import type { Dispatcher } from './dispatcher.js';
import type { FailureDetector } from './failure-detector.js';
import type { ObservedState } from './observed-state.js';
import type { ServiceRecord } from './store/store.js';

/** How long the end of a hand-over may wait for others before the pass that records it. */
const HANDOVER_PASS_WITHIN_MS = 1000;

export interface HandoversDeps {
  observed: ObservedState;
  dispatcher: Pick<Dispatcher, 'specHashOf'>;
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

  /** Whether the replica's agent reports it running its service's current spec. */
  isRunning(replicaId: string): boolean {
    const { observed, dispatcher, detector } = this.deps;
    const seen = observed.get(replicaId);
    return (
      seen !== undefined &&
      seen.report.state === 'running' &&
      seen.report.specHash === dispatcher.specHashOf(seen.report.service) &&
      detector.state(seen.nodeId) === 'ready'
    );
  }

  /** Accepted reports of a node: a replacement's first `running` ends a hand-over. */
  reported(reports: readonly ReplicaReport[]): void {
    if (this.handoverReplacements.size === 0) return;
    for (const r of reports) {
      if (r.state === 'running' && this.handoverReplacements.get(r.service)?.has(r.replicaId)) {
        // Ending a hand-over only drops the replica a lost node no longer runs: not urgent, and
        // during a failover thousands end within seconds, so they share a pass.
        this.deps.markDirty(HANDOVER_PASS_WITHIN_MS);
        return;
      }
    }
  }
}
