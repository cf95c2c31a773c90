/**
 * Where a spec not yet accepted would put new replicas: the scheduler's pure core (planPlacements)
 * run once over the fleet as it is now, with the candidate in place of the service's record. Its
 * answer is thrown away: nothing is stored, nothing dispatched, no id kept.
 *
 * It answers what the next pass would place, not a promise: the fleet may change before the real
 * pass; replicas on unreachable nodes are not moved (the hub's own patience decides that, over
 * time); moves off nodes that no longer match go a few at a time, each once its replacement
 * serves, so only the first pass's are shown (`moving`); and a rolling update's replacements
 * happen batch by batch later, so they are counted (`replacing`), not placed.
 */
import { planPlacements } from './scheduler/placement.js';
import type { Placement, SchedNode, SchedService } from './scheduler/types.js';

export interface PlacementPreview {
  /**
   * New replicas the pass would place, with their nodes (ids are made by the real pass, so none is
   * shown), the first MAX_PLACED_SHOWN of them (a global service on a large fleet has one per node).
   */
  placed: Array<{ node: string; nodeName?: string }>;
  /** All of them. */
  placedTotal: number;
  /** Replicas of the service that would wait for a node. */
  pending: number;
  /** Why they wait, each reason once (at most MAX_REASONS). */
  reasons?: string[];
  /** Replicas the pass would remove (a scale-down). */
  removed: number;
  /**
   * Replicas the pass would start moving off nodes they may no longer run on (constraints changed):
   * each serves until its replacement does, and the scheduler moves a few at a time, so later
   * passes move the rest.
   */
  moving: number;
  /** Replicas whose container the change replaces: the rolling update does it, batch by batch. */
  replacing: number;
}

const MAX_REASONS = 10;
export const MAX_PLACED_SHOWN = 1000;

export function previewPlacement(
  candidate: SchedService,
  others: Iterable<SchedService>,
  nodes: readonly SchedNode[],
  newReplicaId: (service: string) => string,
): PlacementPreview {
  const services: SchedService[] = [candidate];
  for (const s of others) if (s.name !== candidate.name) services.push(s);
  const change = planPlacements(services, nodes, { newReplicaId }).find((c) => c.service === candidate.name);
  const after: readonly Placement[] = change?.placements ?? candidate.placements;
  const had = new Set(candidate.placements.map((p) => p.replicaId));
  const handingOver = new Set(candidate.placements.filter((p) => p.replacedBy).map((p) => p.replicaId));
  const kept = new Set(after.map((p) => p.replicaId));
  const nameOf = new Map(nodes.map((n) => [n.id, n.name]));
  const placed: PlacementPreview['placed'] = [];
  const reasons = new Set<string>();
  let pending = 0;
  let placedTotal = 0;
  for (const p of after) {
    if (p.replacedBy) continue;
    if (p.pendingReason !== null || p.nodeId === null) {
      pending++;
      if (p.pendingReason !== null && reasons.size < MAX_REASONS) reasons.add(p.pendingReason);
      continue;
    }
    if (had.has(p.replicaId)) continue;
    if (placedTotal++ >= MAX_PLACED_SHOWN) continue;
    const nodeName = nameOf.get(p.nodeId);
    placed.push({ node: p.nodeId, ...(nodeName === undefined ? {} : { nodeName }) });
  }
  return {
    placed,
    placedTotal,
    pending,
    ...(reasons.size > 0 ? { reasons: [...reasons] } : {}),
    removed: candidate.placements.filter((p) => !kept.has(p.replicaId)).length,
    moving: after.filter((p) => p.replacedBy && !handingOver.has(p.replicaId)).length,
    replacing: after.filter((p) => p.revision !== undefined && !p.replacedBy).length,
  };
}
