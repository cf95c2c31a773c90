/**
 * Service commands (create, replace, roll back, scale, delete) and the views of services. Writes
 * of one name go one at a time; a deleted name leaves a tombstone so that its revisions keep
 * growing.
 */
import type { Clock } from '../shared/clock.js';
import { canonicalJson } from '../shared/container-spec.js';
import { MAX_VOLUME_PURGES } from '../shared/protocol.js';
import type { Logger } from '../shared/logger.js';
import type { NormalizedSpec } from './spec/service-spec.js';
import type { Dispatcher } from './dispatcher.js';
import type { FailureDetector } from './failure-detector.js';
import type { ServiceStats } from './hub-stats.js';
import type { ObservedState } from './observed-state.js';
import { PerKeyQueue } from './per-key-queue.js';
import { historyAfter, rollbackTarget, specOfRevision, type RollbackRefusal } from './revisions.js';
import { rolloutView } from './rollout/rollout-view.js';
import { startUpdate } from './rollout/start-update.js';
import type { ServiceRecord, Store } from './store/store.js';
import { newReplicaId } from './replica-id.js';
import { checkMove } from './scheduler/move-check.js';
import type { Placement, SchedNode } from './scheduler/types.js';
import { serviceStateOf, serviceView, type ReplicaPage, type ServiceState } from './views.js';
import { previewPlacement, type PlacementPreview } from './placement-preview.js';
import { checkRevision, type RevisionCondition } from './revision-match.js';
import { serviceMatches, type Selector } from './selector.js';
import { SortedKeys, type KeyPage } from './sorted-keys.js';

export type PutServiceResult = { outcome: 'created' | 'updated' | 'unchanged'; record: ServiceRecord };

/** What a PUT would do (see Services.preview): the record it would store, and where replicas would go. */
export interface PutPreview {
  outcome: PutServiceResult['outcome'];
  before: NormalizedSpec | undefined;
  /** The spec as it would be stored (configs and secrets pinned to their current versions). */
  after: NormalizedSpec;
  placement: PlacementPreview;
}

/** A command on a service that must exist: `missing` when it does not. */
type OnExisting<T> = T | { kind: 'missing' };

export type RollbackResult = OnExisting<
  | { kind: 'done'; outcome: 'rolled-back' | 'unchanged'; record: ServiceRecord; rolledBackTo: number }
  | ({ kind: 'refused' } & RollbackRefusal)
>;

export type ScaleResult = OnExisting<{ kind: 'done'; outcome: 'updated' | 'unchanged'; record: ServiceRecord } | { kind: 'global' }>;

/** An operator's move of one replica (see Services.move). */
export type MoveResult = OnExisting<
  | { kind: 'replica_missing' }
  | { kind: 'refused'; code: string; message: string }
  | { kind: 'done'; record: ServiceRecord; replicaId: string; replacement: string; fromNode: string; toNode: string | null; volumes: string[] }
>;

export type ResumeResult = OnExisting<{ kind: 'done'; record: ServiceRecord } | { kind: 'not_paused'; state: string | null }>;

export interface ServicesDeps {
  store: Store;
  dispatcher: Dispatcher;
  observed: ObservedState;
  detector: Pick<FailureDetector, 'state'>;
  clock: Clock;
  logger: Logger;
  /** The services changed: the next pass places them. */
  markDirty: () => void;
  /** A service is gone: nothing of it waits for a hand-over any more. */
  deleted: (name: string) => void;
  /**
   * `spec` with the configs and secrets it names at their current versions (pinnedToCurrent):
   * applied to every spec accepted, a rollback's included. Absent: specs as they come.
   */
  pinValues?: (spec: NormalizedSpec) => NormalizedSpec;
  /** The nodes as the scheduler sees them now: an operator's move is checked against them. Absent: none. */
  schedNodes?: () => readonly SchedNode[];
  /**
   * A command (a move) gave the service a hand-over no pass made: the replacement's first report
   * that it serves must end it, as for those a pass makes.
   */
  handingOver?: (record: ServiceRecord) => void;
}

export class Services implements ServiceStats {
  /** Writes of one service, one at a time: each builds on the record the previous one left. */
  private readonly serviceWrites = new PerKeyQueue();
  /** Service names in order, for pages of the list. */
  private readonly order: SortedKeys;

  constructor(private readonly deps: ServicesDeps) {
    this.order = SortedKeys.following(deps.store, 'services', function* () {
      for (const s of deps.store.listServices()) yield s.name;
    }).keys;
  }

  get(name: string): ServiceRecord | undefined {
    return this.deps.store.getService(name);
  }

  count(): number {
    let n = 0;
    for (const _ of this.deps.store.listServices()) n++;
    return n;
  }

  view(record: ServiceRecord, page: ReplicaPage) {
    const { observed, dispatcher, detector, clock } = this.deps;
    const nowMs = clock.nowMs();
    const view = serviceView(record, observed, (replicaId) => dispatcher.expectedContainerOf(record.name, replicaId), (nodeId) => detector.state(nodeId, nowMs), page);
    return { ...view, state: serviceStateOf(view.status, record.rollout?.state ?? null), rollout: rolloutView(record) };
  }

  /** One page of service views by name, after `after`, of the services that match (see SortedKeys.page). */
  page(q: { after: string | null; limit: number; selector: Selector; states: ReadonlySet<ServiceState> | null }, replicas: ReplicaPage): KeyPage<ReturnType<Services['view']>> {
    return this.order.page(q.after, q.limit, (name) => {
      const record = this.deps.store.getService(name);
      if (!record || !serviceMatches(record, q.selector)) return undefined;
      const view = this.view(record, replicas);
      return q.states && !q.states.has(view.state) ? undefined : view;
    });
  }

  /**
   * What `put` would do, doing none of it: the outcome, the spec before and as it would be stored,
   * and where the scheduler would place new replicas on the fleet as it is (placement-preview.ts).
   */
  preview(name: string, given: NormalizedSpec, ifRevision?: RevisionCondition): PutPreview {
    const { store, pinValues, schedNodes, clock } = this.deps;
    const before = store.getService(name);
    checkRevision(ifRevision, before?.revision ?? null, `service "${name}"`);
    const after = pinValues ? pinValues(given) : given;
    if (before && sameRecord(before.spec, after)) {
      const pending = before.placements.filter((p) => !p.replacedBy && (p.pendingReason !== null || p.nodeId === null)).length;
      return { outcome: 'unchanged', before: before.spec, after: before.spec, placement: { placed: [], placedTotal: 0, pending, removed: 0, moving: 0, replacing: 0 } };
    }
    const candidate = candidateRecord(name, after, before, store.getServiceTombstone(name)?.revision ?? 0, clock.nowMs());
    const others = (function* () {
      for (const s of store.listServices()) yield { name: s.name, spec: s.spec, placements: s.placements };
    })();
    const placement = previewPlacement({ name, spec: candidate.spec, placements: candidate.placements }, others, schedNodes?.() ?? [], newReplicaId);
    return { outcome: before ? 'updated' : 'created', before: before?.spec, after, placement };
  }

  /** Creates or replaces a service. The same spec again changes nothing and restarts nothing. */
  put(name: string, spec: NormalizedSpec, ifRevision?: RevisionCondition): Promise<PutServiceResult> {
    return this.serviceWrites.run(name, () => {
      checkRevision(ifRevision, this.deps.store.getService(name)?.revision ?? null, `service "${name}"`);
      return this.putNow(name, spec);
    });
  }

  /**
   * Accepts a kept revision's spec again, as a new revision (as `kubectl rollout undo` does):
   * `toRevision`, or the one before the current. A spec equal to the current one changes nothing.
   */
  rollback(name: string, toRevision?: number, ifRevision?: RevisionCondition): Promise<RollbackResult> {
    return this.serviceWrites.run(name, async () => {
      const before = this.deps.store.getService(name);
      if (!before) return { kind: 'missing' };
      checkRevision(ifRevision, before.revision, `service "${name}"`);
      const target = rollbackTarget(before, toRevision);
      if ('code' in target) return { kind: 'refused', ...target };
      // The revision goes out in batches under the update settings it carries, as any change does.
      const { outcome, record } = await this.putNow(name, target.spec, { rollbackOf: before.revision });
      return { kind: 'done', outcome: outcome === 'unchanged' ? 'unchanged' : 'rolled-back', record, rolledBackTo: target.revision };
    });
  }

  /**
   * Changes a replicated service's replica count alone. It is a new revision, as any accepted
   * spec change is (the same change by PUT is one too): `revision` keeps naming one spec.
   */
  scale(name: string, replicas: number, ifRevision?: RevisionCondition): Promise<ScaleResult> {
    return this.serviceWrites.run(name, async () => {
      const before = this.deps.store.getService(name);
      if (!before) return { kind: 'missing' };
      checkRevision(ifRevision, before.revision, `service "${name}"`);
      if (before.spec.mode === 'global') return { kind: 'global' };
      const { outcome, record } = await this.putNow(name, { ...before.spec, replicas });
      return { kind: 'done', outcome: outcome === 'unchanged' ? 'unchanged' : 'updated', record };
    });
  }

  /**
   * An update whose failures passed its limit, with failureAction "rollback": accepts the revision
   * it replaced again, as a rolling back update. Nothing when the service moved on meanwhile (a
   * newer spec, or the update is no longer running).
   */
  autoRollback(name: string, failedRevision: number, toRevision: number, reason: string): Promise<void> {
    return this.serviceWrites.run(name, async () => {
      const before = this.deps.store.getService(name);
      if (!before || before.revision !== failedRevision || before.rollout?.state !== 'updating') return;
      const spec = specOfRevision(before, toRevision);
      const why = `update to revision ${failedRevision} failed (${reason})`;
      if (!spec) {
        // Cannot happen while history keeps 10 revisions and an update starts from the previous
        // one; should it, the update waits for an operator rather than guess.
        await this.deps.store.putService({ ...before, rollout: { ...before.rollout, state: 'paused', reason: `${why}; revision ${toRevision} is no longer kept to roll back to` } });
        return;
      }
      this.deps.logger.warn({ service: name, revision: failedRevision, rollbackTo: toRevision, reason }, 'update failed; rolling back');
      await this.putNow(name, spec, { rollbackOf: failedRevision, reason: `${why}; rolling back to revision ${toRevision}` });
    });
  }

  /** Continues a paused update (or rollback) with what is left of it; its failures so far start over. */
  resume(name: string): Promise<ResumeResult> {
    return this.serviceWrites.run(name, async () => {
      const before = this.deps.store.getService(name);
      if (!before) return { kind: 'missing' };
      const rollout = before.rollout;
      if (rollout?.state !== 'paused') return { kind: 'not_paused', state: rollout?.state ?? null };
      // Replicas it watched, and the paused batch's that had not failed, are watched afresh: what
      // they did while it was paused (a restart, time serving) counts for nothing.
      const batchLive = (rollout.batch?.replicaIds ?? []).filter((id) => !rollout.batch?.failedIds.includes(id));
      const watching = [...(rollout.watching ?? []).map((w) => w.replicaId), ...batchLive].map((replicaId) => ({ replicaId, servingSinceMs: null, restartsAtStart: null }));
      const record: ServiceRecord = {
        ...before,
        rollout: { ...rollout, state: rollout.rollbackOf === null ? 'updating' : 'rolling-back', reason: null, batch: null, nextBatchAtMs: null, failedCount: 0, watching },
      };
      await this.deps.store.putService(record);
      this.deps.markDirty();
      return { kind: 'done', record };
    });
  }

  /**
   * Accepts the service's spec again with the configs and secrets it names at their current
   * versions: a new revision, rolled out under its update settings, when one of them changed.
   */
  followValues(name: string): Promise<PutServiceResult | null> {
    return this.serviceWrites.run(name, async () => {
      const before = this.deps.store.getService(name);
      return before ? this.putNow(name, before.spec) : null;
    });
  }

  /**
   * Moves one replica on purpose (a sticky one included): a replacement goes to `toNode` (checked
   * now: a node that cannot take it is a refusal), or, none given, wherever the scheduler finds
   * room on another node; the replica serves until its replacement does, as in any hand-over. The
   * data of its volumes stays where it is: the replacement starts with the new node's volumes.
   */
  move(name: string, replicaId: string, toNode: string | null): Promise<MoveResult> {
    return this.serviceWrites.run(name, async () => {
      const { store, schedNodes } = this.deps;
      const before = store.getService(name);
      if (!before) return { kind: 'missing' };
      const replica = before.placements.find((p) => p.replicaId === replicaId);
      if (!replica) return { kind: 'replica_missing' };
      const services = [...store.listServices()].map((s) => ({ name: s.name, spec: s.spec, placements: s.placements }));
      const check = checkMove({ name, spec: before.spec, placements: before.placements }, replica, toNode, schedNodes?.() ?? [], services);
      if (!check.ok) return { kind: 'refused', code: check.code, message: check.message };
      const replacement: Placement = { replicaId: newReplicaId(name), nodeId: toNode, pendingReason: null, movedFrom: check.fromNodeId, movedOnRequest: true };
      // As a pass lists them: what stays, the replacement, then the replica that hands over.
      const placements = [...before.placements.filter((p) => p !== replica), replacement, { ...replica, replacedBy: replacement.replicaId }];
      const record: ServiceRecord = { ...before, placements };
      await store.putService(record);
      this.deps.handingOver?.(record);
      this.deps.markDirty();
      this.deps.logger.info({ service: name, replicaId, replacement: replacement.replicaId, fromNode: check.fromNodeId, toNode }, 'replica moves on request');
      const volumes = (before.spec.volumes ?? []).map((v) => v.name);
      return { kind: 'done', record, replicaId, replacement: replacement.replicaId, fromNode: check.fromNodeId, toNode, volumes };
    });
  }

  /**
   * Deletes the service. Its volumes stay on the nodes unless `purgeVolumes`: then every node is
   * told to remove them once its containers of the service are gone (a node away does it when it
   * returns). Null when there is no such service.
   */
  async delete(name: string, opts: { purgeVolumes?: boolean; ifRevision?: RevisionCondition } = {}): Promise<DeleteResult | null> {
    return this.serviceWrites.run(name, () => {
      const record = this.deps.store.getService(name);
      // An unknown service is the delete's own null (404).
      if (record) checkRevision(opts.ifRevision, record.revision, `service "${name}"`);
      return this.deleteNow(name, opts.purgeVolumes === true);
    });
  }

  /** Accepts `spec` for `name`; runs only inside that name's write queue. */
  /**
   * Accepts `spec` for `name`; runs only inside that name's write queue. Replicas whose container
   * it changes go on running their revision until its rolling update reaches them (startUpdate).
   * `rollbackOf`: the revision whose update this one undoes; `reason`: why, for the update's record.
   */
  private async putNow(name: string, given: NormalizedSpec, opts: { rollbackOf?: number; reason?: string } = {}): Promise<PutServiceResult> {
    const { store, logger, clock, pinValues } = this.deps;
    const spec = pinValues ? pinValues(given) : given;
    const before = store.getService(name);
    if (before && sameRecord(before.spec, spec)) return { outcome: 'unchanged', record: before };
    // A service of a name deleted with its volumes: their purge is called off where it is still
    // to happen, so that the new service's volumes are never taken for the old one's.
    if (!before) await dropVolumePurges(store, name, this.deps.dispatcher.nodesPurging(name));
    const record = candidateRecord(name, spec, before, store.getServiceTombstone(name)?.revision ?? 0, clock.nowMs(), opts);
    // A refused write is undone by the store (and any change planned on top of it), the
    // dispatcher's index with it: nothing of it stays (a retried PUT is a change again).
    await store.putService(record);
    this.deps.markDirty();
    if (!before && store.getServiceTombstone(name)) {
      // The live record carries the revision now; a tombstone that stays (a failed write) only
      // holds a lower one.
      void store.deleteServiceTombstone(name).catch((err: unknown) => logger.error({ err, service: name }, 'could not drop the revision of a deleted service'));
    }
    return { outcome: before ? 'updated' : 'created', record };
  }

  private async deleteNow(name: string, purge: boolean): Promise<DeleteResult | null> {
    const { store } = this.deps;
    const record = store.getService(name);
    if (!record) return null;
    const volumes = volumeNamesOf(record);
    // Durable before the delete, so that no crash between the two lets the name start over.
    const reached = store.getService(name)!.revision;
    await store.putServiceTombstone({ name, revision: reached, deletedAt: new Date().toISOString() });
    // Read again: a reconcile pass may have changed the placements meanwhile.
    // Before the delete, so that no crash between the two forgets the purge: a node's purge of a
    // service that still exists waits for it to be gone (see Dispatcher.purgesOf). A plain delete
    // takes back a purge an earlier delete of the name asked for and never finished.
    let nodesAsked = 0;
    if (purge && volumes.length > 0) nodesAsked = await addVolumePurges(store, name);
    else await dropVolumePurges(store, name, this.deps.dispatcher.nodesPurging(name));
    const before = store.getService(name);
    if (!before) return null;
    // The dispatcher lets go of the replicas (and their observed states) only once the delete is
    // on disk. Writes of this name wait meanwhile, and a reconcile pass no longer sees the service.
    await store.deleteService(name);
    this.deps.deleted(name);
    this.deps.markDirty();
    if (nodesAsked > 0) this.deps.logger.info({ service: name, volumes, nodes: nodesAsked }, 'service deleted; its volumes are to be removed from every node');
    return { volumes, purged: purge && volumes.length > 0, nodesAsked };
  }
}

/** What a delete did: the volumes the service named (current spec or a kept revision), and whether they go. */
export interface DeleteResult {
  volumes: string[];
  purged: boolean;
  /** Nodes told to remove them. */
  nodesAsked: number;
}

/** The named volumes of the service's current spec and of every revision it keeps, each once, sorted. */
function volumeNamesOf(record: ServiceRecord): string[] {
  const names = new Set<string>();
  for (const spec of [record.spec, ...(record.history ?? []).map((r) => r.spec)]) for (const v of spec.volumes ?? []) names.add(v.name);
  return [...names].sort();
}

/**
 * Adds `service` to every node's purges, newest last and at most MAX_VOLUME_PURGES per node (the
 * oldest go first). Every node, since the hub does not know which ones ever ran a replica of it
 * (scale-downs, moves and lost nodes leave volumes behind); purges are rare, and an agent with
 * none of its volumes finds nothing to remove. Returns how many nodes were asked.
 */
async function addVolumePurges(store: Store, service: string): Promise<number> {
  const writes: Array<Promise<void>> = [];
  for (const node of store.listNodes()) {
    const listed = node.volumePurges ?? [];
    if (!listed.includes(service)) writes.push(store.putNode({ ...node, volumePurges: [...listed, service].slice(-MAX_VOLUME_PURGES) }));
  }
  await Promise.all(writes);
  return writes.length;
}

/** Takes `service` out of the purges of the nodes that list it (`nodes`, the dispatcher's index: no walk over the fleet). */
async function dropVolumePurges(store: Store, service: string, nodes: ReadonlySet<string>): Promise<void> {
  const writes: Array<Promise<void>> = [];
  for (const id of [...nodes]) {
    const node = store.getNode(id);
    if (!node?.volumePurges?.includes(service)) continue;
    const next = node.volumePurges.filter((n) => n !== service);
    const { volumePurges: _, ...rest } = node;
    writes.push(store.putNode(next.length > 0 ? { ...rest, volumePurges: next } : rest));
  }
  await Promise.all(writes);
}

/**
 * The record `spec` makes of `before` (undefined: a new service, going on from `deletedRevision`,
 * the revision a deleted one of the name reached: clients and caches rely on revisions growing per
 * name). Replicas whose container it changes are pinned to their revision (startUpdate).
 */
function candidateRecord(
  name: string,
  spec: NormalizedSpec,
  before: ServiceRecord | undefined,
  deletedRevision: number,
  nowMs: number,
  opts: { rollbackOf?: number; reason?: string } = {},
): ServiceRecord {
  const now = new Date().toISOString();
  if (!before) return { name, spec, revision: deletedRevision + 1, createdAt: now, updatedAt: now, placements: [] };
  const record: ServiceRecord = { ...before, spec, revision: before.revision + 1, updatedAt: now, history: historyAfter(before) };
  const update = startUpdate(before, record, nowMs, opts.rollbackOf ?? null);
  const out: ServiceRecord = { ...record, placements: update.placements };
  if (update.rollout) out.rollout = opts.reason && update.rollout.reason === null ? { ...update.rollout, reason: opts.reason } : update.rollout;
  return out;
}

function sameRecord(a: unknown, b: unknown): boolean {
  return canonicalJson(a) === canonicalJson(b);
}
