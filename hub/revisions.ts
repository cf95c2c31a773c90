/**
 * The revisions a service keeps: its current spec and up to nine before it, so that an operator
 * can see what changed and go back to any of them (as Kubernetes keeps a Deployment's last
 * ReplicaSets, `revisionHistoryLimit` 10).
 *
 * Only specs are kept, never placements. The record stores the earlier ones alone (`history`):
 * the current one is the record's own spec, revision and updatedAt, so no spec is stored twice.
 * A placement pass copies the record with the same `history` array, which the store sees as
 * unchanged and does not write again (see changedParts in store/record-layout.ts).
 */
import type { NormalizedSpec } from './spec/service-spec.js';
import type { RevisionRecord, ServiceRecord } from './store/store.js';

/** Revisions kept per service, the current one included. */
export const KEPT_REVISIONS = 10;

export interface KeptRevision extends RevisionRecord {
  current: boolean;
}

/** The kept revisions of a service, newest (the current one) first. A record from before history was kept has only its current one. */
export function keptRevisions(record: ServiceRecord): KeptRevision[] {
  const current: KeptRevision = { revision: record.revision, acceptedAt: record.updatedAt, spec: record.spec, current: true };
  const earlier = (record.history ?? []).map((r) => ({ ...r, current: false }));
  return [current, ...earlier.reverse()];
}

/** The history of a record whose current spec gives way to a new one: the old current joins it, the oldest beyond the limit leave. */
export function historyAfter(before: ServiceRecord): RevisionRecord[] {
  const previous: RevisionRecord = { revision: before.revision, acceptedAt: before.updatedAt, spec: before.spec };
  return [...(before.history ?? []), previous].slice(-(KEPT_REVISIONS - 1));
}

/** Why a rollback cannot go where it was asked: the request is sound, the service's state refuses it (409). */
export type RollbackRefusal = { code: 'no_earlier_revision' | 'revision_gone' | 'revision_unknown'; message: string };

/**
 * The spec to accept again for a rollback of `record` to `target` (default: the revision before
 * the current one), or why there is none.
 */
export function rollbackTarget(record: ServiceRecord, target: number | undefined): { revision: number; spec: NormalizedSpec } | RollbackRefusal {
  const kept = keptRevisions(record);
  const oldest = kept[kept.length - 1]!.revision;
  if (target === undefined) {
    const previous = kept[1];
    if (!previous) return { code: 'no_earlier_revision', message: `nothing to roll back to: revision ${record.revision} is the only one kept` };
    return { revision: previous.revision, spec: previous.spec };
  }
  if (target > record.revision) return { code: 'revision_unknown', message: `revision ${target} does not exist: the service is at revision ${record.revision}` };
  const found = kept.find((r) => r.revision === target);
  if (!found) return { code: 'revision_gone', message: `revision ${target} is gone: the last ${KEPT_REVISIONS} are kept (${oldest}-${record.revision})` };
  return { revision: found.revision, spec: found.spec };
}

/** The spec of a kept revision of `record` (the current one included), or undefined when it is no longer kept. */
export function specOfRevision(record: ServiceRecord, revision: number): NormalizedSpec | undefined {
  if (revision === record.revision) return record.spec;
  return record.history?.find((r) => r.revision === revision)?.spec;
}
