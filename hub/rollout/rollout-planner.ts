/**
 * The rolling update's state machine, pure: from a service's placements, its update record, its
 * update settings and what its new replicas do now, the next step. The hub runs it in every
 * reconcile pass for each service with an update going on, and whenever a replica of the batch in
 * flight reports, so it only ever has to be right for the state it is given (level-triggered).
 *
 *   updating ──batch serves──> next batch (after `delay`) ──none left, all served for `monitor`──> completed
 *      │ failures above maxFailureRatio (of a batch in flight, or of a replica in its `monitor` period):
 *      ├─ rollback ──> the hub accepts the previous spec again: rolling-back ──> rolled-back
 *      ├─ pause ────> paused ──resume──> updating
 *      └─ continue ─> the failed replicas count as done
 *
 * A batch of stop-first replaces each replica where it is: its placement moves to the new
 * revision, and the agent pulls the new image while the old container serves, stops it, then
 * starts the new one. A batch of start-first places a new replica beside each old one (a
 * hand-over, as for a lost node): the old one stops only once the new one serves.
 */
import type { Placement } from '../scheduler/types.js';
import type { UpdateConfig } from '../spec/update-config.js';
import { MAX_REMEMBERED_FAILURES, type RolloutBatch, type RolloutRecord, type WatchedReplica } from './rollout-record.js';
import { doneState, placedOn } from './start-update.js';

/** What a replica of the batch in flight does now, as the hub sees it. */
export type ReplicaProgress =
  /** Runs the new revision, healthy (or without a check). */
  | { kind: 'serving'; restarts: number }
  /** Not there yet: pulling, starting, health starting, or not reported. */
  | { kind: 'starting'; restarts: number | null }
  | { kind: 'failed'; reason: string };

export interface RolloutInput {
  placements: readonly Placement[];
  rollout: RolloutRecord;
  config: UpdateConfig;
  nowMs: number;
  progressOf: (replicaId: string) => ReplicaProgress;
  newReplicaId: () => string;
}

export interface RolloutStep {
  /** The same array when nothing changed. */
  placements: readonly Placement[];
  /** The same object when nothing changed. */
  rollout: RolloutRecord;
  /** The update failed and its action is rollback: the hub accepts this revision's spec again. */
  rollBackTo: number | null;
  /** When the step should be taken again without any report (a monitor or delay ends); null: none. */
  wakeAtMs: number | null;
}

export function isActive(rollout: RolloutRecord | undefined): rollout is RolloutRecord {
  return rollout !== undefined && (rollout.state === 'updating' || rollout.state === 'rolling-back');
}

export function planRollout(input: RolloutInput): RolloutStep {
  const { config, nowMs } = input;
  let placements = input.placements;
  let rollout = input.rollout;
  const unchanged: RolloutStep = { placements, rollout, rollBackTo: null, wakeAtMs: null };
  if (!isActive(rollout)) return unchanged;
  const edit = (next: Partial<RolloutRecord>) => (rollout = { ...rollout, ...next });

  // A replica with nothing placed has no container to replace: it starts as the new revision.
  if (placements.some((p) => p.revision !== undefined && !placedOn(p))) {
    placements = placements.map((p) => (p.revision !== undefined && !placedOn(p) ? withoutRevision(p) : p));
  }

  let wakeAtMs: number | null = null;
  const wakeAt = (atMs: number) => (wakeAtMs = wakeAtMs === null ? atMs : Math.min(wakeAtMs, atMs));
  const present = new Set(placements.map((p) => p.replicaId));
  const newFailures: Array<{ id: string; reason: string }> = [];

  // Replicas of earlier batches in their monitor period: a crash or a failing check still counts.
  const watchedBefore = rollout.watching ?? [];
  const watching: WatchedReplica[] = [];
  for (const w of watchedBefore) {
    // Replicas that left meanwhile (scaled away, moved off a lost node) are no longer watched.
    if (!present.has(w.replicaId)) continue;
    const progress = input.progressOf(w.replicaId);
    if (progress.kind === 'failed') {
      newFailures.push({ id: w.replicaId, reason: progress.reason });
      continue;
    }
    if (progress.restarts !== null && w.restartsAtStart !== null && progress.restarts > w.restartsAtStart) {
      newFailures.push({ id: w.replicaId, reason: `restarted ${progress.restarts - w.restartsAtStart} time(s) since it started` });
      continue;
    }
    const restartsAtStart = w.restartsAtStart ?? progress.restarts;
    // One that does not serve without failing (its node went away, its container is being made
    // again) is the hub's failure handling's, not this update's: it leaves the watch, or an update
    // could wait on it for ever.
    if (progress.kind !== 'serving') continue;
    const servingSinceMs = w.servingSinceMs ?? nowMs;
    if (nowMs - servingSinceMs >= config.monitorMs) continue;
    wakeAt(servingSinceMs + config.monitorMs);
    watching.push(servingSinceMs === w.servingSinceMs && restartsAtStart === w.restartsAtStart ? w : { replicaId: w.replicaId, servingSinceMs, restartsAtStart });
  }

  let batch = rollout.batch;
  let ids: string[] = [];
  let failedIds: string[] = [];
  let restartsAtStart: Record<string, number> = {};
  let allServing = true;
  if (batch) {
    // Replicas that left meanwhile no longer hold the batch up.
    ids = batch.replicaIds.filter((id) => present.has(id));
    failedIds = batch.failedIds.filter((id) => present.has(id));
    restartsAtStart = { ...batch.restartsAtStart };
    for (const id of ids) {
      if (failedIds.includes(id)) continue;
      const progress = input.progressOf(id);
      const baseline = restartsAtStart[id];
      if (progress.kind === 'failed') {
        newFailures.push({ id, reason: progress.reason });
        failedIds.push(id);
      } else if (progress.restarts !== null && baseline !== undefined && progress.restarts > baseline) {
        newFailures.push({ id, reason: `restarted ${progress.restarts - baseline} time(s) since it started` });
        failedIds.push(id);
      } else {
        // The first count seen of the new container is its baseline: any growth after is a crash.
        if (progress.restarts !== null && baseline === undefined) restartsAtStart[id] = progress.restarts;
        if (progress.kind !== 'serving') allServing = false;
      }
    }
  }
  if (newFailures.length > 0) {
    const failedCount = rollout.failedCount + newFailures.length;
    const remembered = [...rollout.failedReplicaIds, ...newFailures.map((f) => f.id)].slice(0, MAX_REMEMBERED_FAILURES);
    const first = newFailures[0]!;
    edit({ failedCount, failedReplicaIds: remembered, reason: `replica ${first.id} failed: ${first.reason}` });
  }
  if (watching.length !== watchedBefore.length || watching.some((w, i) => w !== watchedBefore[i])) edit({ watching });

  // Judged on every step, not only when a failure is new: a rollback the hub could not write
  // (a store that refused it) is asked for again on the next one.
  if (rollout.failedCount > 0 && rollout.failedCount > config.maxFailureRatio * rollout.total) {
    const reason = rollout.reason ?? 'replicas failed';
    // A rollback that fails stops where it is: rolling back the rollback would go round in circles.
    const action = rollout.state === 'rolling-back' && config.failureAction === 'rollback' ? 'pause' : config.failureAction;
    const failedBatch = batch ? { ...batch, replicaIds: ids, failedIds, restartsAtStart } : null;
    if (action === 'rollback') {
      if (newFailures.length > 0) edit({ batch: failedBatch });
      return { placements, rollout, rollBackTo: rollout.fromRevision, wakeAtMs: null };
    }
    if (action === 'pause') {
      const what = rollout.state === 'rolling-back' ? 'rollback' : 'update';
      edit({ state: 'paused', reason: `${what} paused: ${reason}`, batch: failedBatch });
      return { placements, rollout, rollBackTo: null, wakeAtMs: null };
    }
    // continue: the failed replicas count as done.
  }

  if (batch) {
    const live = ids.filter((id) => !failedIds.includes(id));
    // The batch is over once its replicas serve (or every one failed and the update goes on): the
    // next one starts, and these are watched for the rest of their monitor period meanwhile, as
    // Swarm does. Holding each batch for the whole period would make an update take
    // batches x monitor however fast its containers start.
    if (live.length === 0 || allServing) {
      batch = null;
      if (config.monitorMs > 0 && live.length > 0) {
        const next = [...(rollout.watching ?? []), ...live.map((id) => ({ replicaId: id, servingSinceMs: nowMs, restartsAtStart: restartsAtStart[id] ?? null }))];
        edit({ watching: next });
        wakeAt(nowMs + config.monitorMs);
      }
      edit({ batch: null, nextBatchAtMs: config.delayMs > 0 ? nowMs + config.delayMs : null });
    } else {
      batch = { ...batch, replicaIds: ids, failedIds, restartsAtStart };
      if (!sameBatch(batch, rollout.batch as RolloutBatch)) edit({ batch });
    }
  }

  if (!batch) {
    const nextAt = rollout.nextBatchAtMs;
    const waiting = placements.filter((p) => p.revision !== undefined && placedOn(p) && !p.replacedBy);
    if (nextAt !== null && nowMs < nextAt && waiting.length > 0) {
      wakeAt(nextAt);
    } else if (waiting.length === 0) {
      // Every batch is done once the last ones have served for their monitor period. An old
      // replica still handed over is one whose start-first replacement failed and the update went
      // on (failureAction continue): it serves until its replacement does, as a lost node's does.
      if ((rollout.watching ?? []).length === 0) {
        edit({ state: doneState(rollout), batch: null, nextBatchAtMs: null, finishedAtMs: nowMs });
        wakeAtMs = null;
      }
    } else {
      const chosen = new Set(waiting.slice(0, config.parallelism));
      const replicaIds: string[] = [];
      const added: Placement[] = [];
      const next = placements.map((p) => {
        if (!chosen.has(p)) return p;
        if (config.order === 'stop-first') {
          replicaIds.push(p.replicaId);
          return withoutRevision(p);
        }
        const replacement: Placement = { replicaId: input.newReplicaId(), nodeId: null, pendingReason: null };
        added.push(replacement);
        replicaIds.push(replacement.replicaId);
        return { ...p, replacedBy: replacement.replicaId };
      });
      placements = [...next, ...added];
      edit({
        batch: { replicaIds, startedAtMs: nowMs, failedIds: [], restartsAtStart: {} },
        nextBatchAtMs: null,
      });
    }
  }
  if (placements === input.placements && rollout === input.rollout) return { ...unchanged, wakeAtMs };
  return { placements, rollout, rollBackTo: null, wakeAtMs };
}

function withoutRevision(p: Placement): Placement {
  const copy = { ...p };
  delete copy.revision;
  return copy;
}

function sameBatch(a: RolloutBatch, b: RolloutBatch): boolean {
  return (
    a.replicaIds.length === b.replicaIds.length &&
    a.failedIds.length === b.failedIds.length &&
    Object.keys(a.restartsAtStart).length === Object.keys(b.restartsAtStart).length
  );
}

/** How far an update got: replicas running the new revision, of those the service has (hand-overs count once). */
export function rolloutProgress(placements: readonly Placement[]): { updated: number; total: number } {
  let updated = 0;
  let total = 0;
  for (const p of placements) {
    if (p.replacedBy) continue;
    total++;
    if (p.revision === undefined) updated++;
  }
  return { updated, total };
}
