/**
 * The fleet events a change of a stored record stands for (pure): services created, updated
 * (a new revision) and deleted, replicas placed or moved, nodes joined and removed.
 */
import { diffPlacements } from '../scheduler/placement-diff.js';
import type { Placement } from '../scheduler/types.js';
import type { NodeRecord, ServiceRecord } from '../store/store.js';
import type { NewFleetEvent } from './fleet-events.js';

/** Placed: a node runs (or should run) it now. */
const placedOn = (p: Placement | undefined): string | null => (p && p.nodeId !== null && p.pendingReason === null ? p.nodeId : null);

/**
 * A service record's change. `nodeName` names a node by id (undefined when the hub knows none).
 * Placements and rollout progress alone are no service event; a spec accepted is (its revision grows).
 */
export function serviceEvents(
  name: string,
  before: ServiceRecord | undefined,
  after: ServiceRecord | undefined,
  nodeName: (nodeId: string) => string | undefined,
): NewFleetEvent[] {
  const events: NewFleetEvent[] = [];
  if (!after) {
    if (before) events.push({ type: 'service.deleted', service: name, message: `revision ${before.revision}` });
    return events;
  }
  if (!before) events.push({ type: 'service.created', service: name, message: `revision ${after.revision}` });
  else if (before.revision !== after.revision) events.push({ type: 'service.updated', service: name, message: `revision ${before.revision} -> ${after.revision}` });
  for (const event of placementEvents(before?.placements ?? [], after.placements, nodeName)) events.push({ service: name, ...event });
  return events;
}

/**
 * Replicas that came to be placed on a node: `replica.moved` for a replacement of a replica that
 * left a node (lost, removed, drained, or moved by an operator), or for a replica that changed
 * node; `replica.placed` otherwise. A settled service costs one walk, no map (see placement-diff.ts).
 */
export function placementEvents(
  olds: readonly Placement[],
  news: readonly Placement[],
  nodeName: (nodeId: string) => string | undefined,
): NewFleetEvent[] {
  // Where each replica that did not stay in step was placed before (a walk in step by id, as the
  // dispatcher's: a failover's drops do not make the rest of the list look changed).
  const wasPlaced = new Map<string, string | null>();
  const came: Placement[] = [];
  diffPlacements(
    olds,
    news,
    (a, b) => placedOn(a) === placedOn(b),
    (a) => wasPlaced.set(a.replicaId, placedOn(a)),
    (b) => {
      if (placedOn(b) !== null) came.push(b);
    },
  );
  const events: NewFleetEvent[] = [];
  for (const p of came) {
    const node = p.nodeId as string;
    const before = wasPlaced.get(p.replicaId);
    if (before === node) continue;
    const fromNode = before ?? p.movedFrom ?? null;
    const named = nodeName(node);
    const base = { replica: p.replicaId, node, ...(named === undefined ? {} : { nodeName: named }) };
    if (fromNode === null) {
      events.push({ type: 'replica.placed', ...base });
    } else {
      const fromName = nodeName(fromNode);
      const why = before ? '' : p.movedOnRequest ? ': moved by an operator' : ': replaces its replica there';
      events.push({ type: 'replica.moved', ...base, message: `from node ${fromName ? `${fromName} (${fromNode})` : fromNode}${why}` });
    }
  }
  return events;
}

/** A node record's change: joined (created) or removed (deleted); anything else is no event here. */
export function nodeRecordEvents(id: string, before: NodeRecord | undefined, after: NodeRecord | undefined): NewFleetEvent[] {
  if (!before && after) return [{ type: 'node.joined', node: id, nodeName: after.name }];
  if (before && !after) return [{ type: 'node.removed', node: id, nodeName: before.name }];
  return [];
}
