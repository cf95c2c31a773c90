/**
 * What the hub keeps of a service's rolling update, in the service's record: enough to pick it up
 * where it stood after a hub restart. Which replica runs which revision is in the placements
 * (Placement.revision); this holds the rest: the update's state, its batch in flight and what
 * failed.
 */

export const ROLLOUT_STATES = ['updating', 'paused', 'rolling-back', 'completed', 'rolled-back'] as const;
export type RolloutState = (typeof ROLLOUT_STATES)[number];

/** Replica ids remembered as failed per update: past this, only the count grows. */
export const MAX_REMEMBERED_FAILURES = 100;

export interface RolloutBatch {
  /** The replicas this batch replaces (their ids stay: each is made again of the new revision where it is). */
  replicaIds: string[];
  /** When the batch began (wall clock, ms). */
  startedAtMs: number;
  /** Replicas of the batch already counted as failed (at most the batch's size). */
  failedIds: string[];
  /**
   * Each replica's restart count when it was first seen running the new revision: a count that
   * grows during the update is a crash, even if the replica is running again when looked at.
   */
  restartsAtStart: Record<string, number>;
}

/**
 * A replica of an earlier batch, watched until it has served for the update's `monitor`: the next
 * batch does not wait for that, but a failure of this one still counts.
 */
export interface WatchedReplica {
  replicaId: string;
  /** Since when it has served without a break (wall clock, ms); null while it does not serve. */
  servingSinceMs: number | null;
  /** Its restart count when its batch ended: any growth is a crash. */
  restartsAtStart: number | null;
}

export interface RolloutRecord {
  state: RolloutState;
  /** The revision being rolled out: the service's current one while the update runs. */
  toRevision: number;
  /** The revision it replaces: what an automatic rollback goes back to. */
  fromRevision: number;
  /** For a rollback (manual or automatic): the revision whose update it undoes. */
  rollbackOf: number | null;
  startedAtMs: number;
  /** When it reached completed or rolled-back; null before. */
  finishedAtMs: number | null;
  /** Why it paused, rolled back, or what failed last; null when nothing did. */
  reason: string | null;
  /** The batch in flight, null between batches. */
  batch: RolloutBatch | null;
  /**
   * Replicas of earlier batches still in their monitor period (at most the service's replicas);
   * absent in records written before it existed, which is the same as none.
   */
  watching?: WatchedReplica[];
  /** The next batch does not start before this (the update's delay after a batch); null: at once. */
  nextBatchAtMs: number | null;
  /** Replicas of the new revision that failed in this update (the first MAX_REMEMBERED_FAILURES). */
  failedReplicaIds: string[];
  failedCount: number;
  /** Replicas the update has to replace in all (the count when it began, as the ratio's base). */
  total: number;
}
