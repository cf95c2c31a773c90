/** A service's latest rolling update as the API shows it. */
import { rolloutProgress } from './rollout-planner.js';
import type { RolloutState } from './rollout-record.js';
import type { ServiceRecord } from '../store/store.js';

export interface RolloutView {
  state: RolloutState;
  /** The revision being rolled out (for a rollback: the one restored, as a new revision). */
  toRevision: number;
  fromRevision: number;
  /** For a rollback: the revision whose update it undoes. */
  rollbackOf: number | null;
  /** Replicas running `toRevision`'s containers, of those the service has. */
  progress: { updated: number; total: number };
  /** Replicas the update is replacing now (the batch in flight). */
  inFlight: string[];
  /** Replicas of earlier batches that serve the new revision and are watched until they have for `monitor`. */
  monitoring: string[];
  failed: { count: number; replicaIds: string[] };
  /** Why it paused or rolled back, or what failed last. */
  reason: string | null;
  startedAt: string;
  finishedAt: string | null;
  /** When the next batch may start (the update's delay); null: as soon as the one in flight is done. */
  nextBatchAt: string | null;
}

const iso = (ms: number | null): string | null => (ms === null ? null : new Date(ms).toISOString());

export function rolloutView(record: ServiceRecord): RolloutView | null {
  const r = record.rollout;
  if (!r) return null;
  return {
    state: r.state,
    toRevision: r.toRevision,
    fromRevision: r.fromRevision,
    rollbackOf: r.rollbackOf,
    progress: rolloutProgress(record.placements),
    inFlight: r.batch?.replicaIds ?? [],
    // Only while it runs: a paused update keeps them to watch again once resumed.
    monitoring: r.state === 'updating' || r.state === 'rolling-back' ? (r.watching ?? []).map((w) => w.replicaId) : [],
    failed: { count: r.failedCount, replicaIds: r.failedReplicaIds },
    reason: r.reason,
    startedAt: iso(r.startedAtMs) as string,
    finishedAt: iso(r.finishedAtMs),
    nextBatchAt: iso(r.nextBatchAtMs),
  };
}
