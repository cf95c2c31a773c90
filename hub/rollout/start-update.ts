/**
 * What accepting a new spec does to a service's placements: each replica whose container the new
 * spec would change keeps running the revision it runs (its placement names it) until a rolling
 * update reaches it; each whose container stays the same simply runs the new revision. Pure.
 *
 * Scaling, constraints, credentials and the update settings themselves replace no container, so
 * a change of only those starts no update (and one in flight goes on, towards the new revision).
 */
import { containerSpecHash, containerSpecOf } from '../../shared/container-spec.js';
import type { Placement } from '../scheduler/types.js';
import type { NormalizedSpec } from '../spec/service-spec.js';
import type { ServiceRecord } from '../store/store.js';
import { specOfRevision } from '../revisions.js';
import type { RolloutRecord } from './rollout-record.js';

export function containerHashOf(spec: NormalizedSpec): string {
  return containerSpecHash(containerSpecOf(spec));
}

export interface UpdateStart {
  placements: Placement[];
  /** The update to run; undefined: the record's own stays as it was (none, or one going on). */
  rollout: RolloutRecord | undefined;
}

/**
 * `before`'s placements and update, once `after` (its new spec, revision and history; placements
 * and update as before's) is accepted at `nowMs`. `rollbackOf`: the revision whose update this
 * spec undoes (a rollback), if any.
 */
export function startUpdate(before: ServiceRecord, after: ServiceRecord, nowMs: number, rollbackOf: number | null = null): UpdateStart {
  const revision = after.revision;
  const newHash = containerHashOf(after.spec);
  const hashByRevision = new Map<number, string | null>();
  const hashOf = (rev: number): string | null => {
    let hash = hashByRevision.get(rev);
    if (hash === undefined) {
      // Looked up in the new record: a revision that just left its history cannot be sent again.
      const old = specOfRevision(after, rev);
      hashByRevision.set(rev, (hash = old ? containerHashOf(old) : null));
    }
    return hash;
  };
  let stamped = 0;
  let changed = false;
  const placements = before.placements.map((p) => {
    const runs = p.revision ?? before.revision;
    // A revision no longer kept cannot be sent to a node again: it is replaced at once.
    const keep = hashOf(runs) !== newHash && hashOf(runs) !== null && placedOn(p);
    if (keep) stamped++;
    if (keep && p.revision === runs) return p;
    if (!keep && p.revision === undefined) return p;
    changed = true;
    const copy: Placement = { ...p };
    if (keep) copy.revision = runs;
    else delete copy.revision;
    return copy;
  });
  // An old replica that now runs the new spec again (a rollback) no longer waits for a
  // replacement of the spec being undone: the hand-over is called off, the replacement dropped.
  const calledOff = new Set<string>();
  for (const p of placements) if (p.replacedBy && p.revision === undefined) calledOff.add(p.replacedBy);
  for (const p of placements) if (calledOff.has(p.replicaId) && p.revision === undefined) calledOff.delete(p.replicaId);
  if (calledOff.size > 0) {
    changed = true;
    const kept: Placement[] = [];
    for (const p of placements) {
      if (calledOff.has(p.replicaId)) {
        if (p.revision !== undefined) stamped--;
        continue;
      }
      if (p.replacedBy && calledOff.has(p.replacedBy)) {
        const copy = { ...p };
        delete copy.replacedBy;
        kept.push(copy);
      } else kept.push(p);
    }
    placements.splice(0, placements.length, ...kept);
  }
  const active = before.rollout && (before.rollout.state === 'updating' || before.rollout.state === 'rolling-back' || before.rollout.state === 'paused');
  if (stamped === 0) {
    const kept = changed ? placements : before.placements;
    // A rollback with nothing to replace (no replica had left the spec it restores) is done at once.
    if (rollbackOf !== null) return { placements: kept, rollout: { ...fresh(before, revision, nowMs, rollbackOf, 0), state: 'rolled-back', finishedAtMs: nowMs } };
    // Nothing left to replace: an update in flight is over (its last replicas were made equal to the new spec).
    const rollout = active
      ? { ...(before.rollout as RolloutRecord), state: doneState(before.rollout as RolloutRecord), toRevision: revision, batch: null, watching: [], nextBatchAtMs: null, finishedAtMs: nowMs }
      : undefined;
    return { placements: kept, rollout };
  }
  const containerChanged = hashOf(before.revision) !== newHash;
  if (!containerChanged && active) {
    // Same containers as the update in flight aims at: it goes on, towards this revision.
    return { placements: changed ? placements : before.placements, rollout: { ...(before.rollout as RolloutRecord), toRevision: revision } };
  }
  return { placements, rollout: fresh(before, revision, nowMs, rollbackOf, stamped) };
}

/** A new update of `before` towards `revision`, with `total` replicas to replace. */
function fresh(before: ServiceRecord, revision: number, nowMs: number, rollbackOf: number | null, total: number): RolloutRecord {
  return {
    state: rollbackOf === null ? 'updating' : 'rolling-back',
    toRevision: revision,
    fromRevision: before.revision,
    rollbackOf,
    startedAtMs: nowMs,
    finishedAtMs: null,
    reason: null,
    batch: null,
    nextBatchAtMs: null,
    failedReplicaIds: [],
    failedCount: 0,
    total,
  };
}

export function doneState(rollout: RolloutRecord): 'completed' | 'rolled-back' {
  return rollout.rollbackOf === null ? 'completed' : 'rolled-back';
}

/** Placed on a node: the only replicas with a container to replace. */
export function placedOn(p: Placement): boolean {
  return p.nodeId !== null && p.pendingReason === null;
}
