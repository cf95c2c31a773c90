/**
 * What stays: which of a service's placements a pass keeps before anything new is placed (lost,
 * drained and no longer matching nodes, hand-overs, scale-down, global services), and which
 * services have nothing to decide.
 */
import { matchesAll } from '../spec/constraints.js';
import { updateConfigOf } from '../spec/update-config.js';
import { refusesDemand } from './feasibility.js';
import { protocolMisfitText } from './pending-reasons.js';
import { MinHeap } from './min-heap.js';
import type { NodeStateLookup } from './node-states.js';
import type { NodeState } from './node-usage.js';
import type { ServicePlan } from './service-plan.js';
import type { Placement, SchedNode } from './types.js';

/** What keeping a replicated service's placements needs beyond the service itself. */
export interface KeepContext {
  statesById: NodeStateLookup;
  seenReplicaIds: Set<string>;
  /**
   * A list known to hold no id twice (the planner's own output) need not add its ids to the seen
   * ones; false when every id must be seen (the first pass after a start, which drops duplicates).
   */
  trustUniqueIds: boolean;
  newId: (service: string) => string;
  defaultLostAfterMs: number;
  /** Whether the replica serves (see PlacementOptions.isRunning). */
  isRunning: (replicaId: string) => boolean;
  /** Whether the replica is reported failing (see PlacementOptions.isUnhealthy). */
  isUnhealthy: (replicaId: string) => boolean;
}

export function keepReplicated(plan: ServicePlan, ctx: KeepContext): void {
  const { statesById } = ctx;
  const lostAfterMs = plan.spec.lostAfterMs ?? ctx.defaultLostAfterMs;
  const reschedule = plan.spec.onNodeLost === 'reschedule';
  const olds = distinctPlacements(plan, ctx);
  // Hand-overs look their replacements up by id: only those are indexed (most passes have none; a
  // map of every replica of a large service took a tenth of a second of each failover pass).
  const replacementIds = new Set<string>();
  for (const old of olds) if (old.replacedBy) replacementIds.add(old.replacedBy);
  const byId = new Map<string, Placement>();
  if (replacementIds.size > 0) for (const p of olds) if (replacementIds.has(p.replicaId)) byId.set(p.replicaId, p);
  // The node still holds the replica: it exists, and its agent can run it (one known to be too old
  // would refuse its whole target, so such a replica is dropped at once rather than handed over).
  const holding = (p: Placement): NodeState | undefined => {
    const state = p.nodeId === null ? undefined : statesById.get(p.nodeId);
    return state && !refusesDemand(state.node, plan.demand) ? state : undefined;
  };
  const lost = (node: SchedNode): boolean => reschedule && node.downForMs !== null && node.downForMs >= lostAfterMs;

  // Replicas that have a replacement (moves, and a rolling update's start-first hand-overs): hand
  // over, call the move off, or wait.
  const draining: Placement[] = [];
  const restored = new Set<Placement>();
  const cancelled = new Set<string>();
  // Hand-overs off nodes that are up (drained, or no longer matching): they count against the
  // service's update parallelism. Those of lost nodes do not: their replicas serve nobody.
  const evicting: Placement[] = [];
  for (const old of olds) {
    if (!old.replacedBy) continue;
    const state = holding(old);
    if (!state) continue;
    const replacement = byId.get(old.replacedBy);
    // The replacement serves: the old one may go (a lost node stops it when it comes back).
    if (replacement && ctx.isRunning(replacement.replicaId)) continue;
    if (!replacement || (replacement.nodeId !== null && !holding(replacement))) {
      // No replacement left, or it went with its own node: judged again as any replica, it gets
      // another if it must (a drained node's replica must not stop before something else serves).
      restored.add(old);
      continue;
    }
    // A move off its node (its replacement says where from), rather than a rolling update's
    // start-first hand-over, which is for the update to end.
    const move = replacement.movedFrom === old.nodeId;
    // An operator's move goes on whatever the node it leaves does: it was asked for, not forced.
    if (move && !replacement.movedOnRequest && state.node.downForMs === null && !mustLeave(state.node, plan)) {
      // Why it moved is gone before its replacement served (the node came back, was uncordoned,
      // or matches again): keep what already runs there.
      cancelled.add(replacement.replicaId);
      restored.add(old);
      continue;
    }
    const copy = copyPlacement(old);
    draining.push(copy);
    if (move && !lost(state.node)) evicting.push(copy);
  }

  const kept: Placement[] = [];
  // The node of each kept placement (null: pending), so that it is looked up once.
  const keptNodes: Array<SchedNode | null> = [];
  let pendingCount = 0;
  for (const old of olds) {
    if ((old.replacedBy && !restored.has(old)) || cancelled.has(old.replicaId)) continue;
    const waiting = plan.sticky ? waitForItsNode(old, plan, statesById) : null;
    if (waiting) {
      kept.push(waiting.placement);
      keptNodes.push(waiting.node);
      continue;
    }
    if (old.nodeId === null || old.pendingReason !== null) {
      // A replicated replica that is pending has no node (one may be left from global mode).
      const copy = copyPlacement(old);
      delete copy.replacedBy;
      kept.push({ ...copy, nodeId: null });
      keptNodes.push(null);
      pendingCount++;
      continue;
    }
    const state = holding(old);
    if (!state) continue;
    keptNodes.push(state.node);
    // A placed replica that stays as it was is kept as the same object: nothing mutates placed
    // replicas during a pass, and a large service would otherwise be copied whole on every change.
    if (old.replacedBy === undefined && old.movedFrom !== null) {
      kept.push(old);
      continue;
    }
    const copy = copyPlacement(old);
    delete copy.replacedBy;
    kept.push(copy);
  }

  // Scale-down first: a replica that would have to move is cheaper removed than replaced.
  const excess = kept.length - plan.spec.replicas;
  const removed = excess > 0 ? chooseRemovals(kept, pendingCount, excess, statesById, plan, ctx) : null;
  const removedIds = new Set([...(removed ?? [])].map((p) => p.replicaId));
  // Moves off nodes that are up, as many at once as a rolling update replaces (order start-first
  // is what a hand-over does by nature); more start as these end. A move whose replacement was
  // just scaled away has ended.
  let evictionsLeft = updateConfigOf(plan.spec).parallelism;
  for (const p of evicting) if (!removedIds.has(p.replacedBy as string)) evictionsLeft--;
  // Appended after what is kept: a list's order is the order its replicas were placed in (see
  // chooseRemovals), and a replacement is the newest of them.
  const replacements: Placement[] = [];
  for (let i = 0; i < kept.length; i++) {
    const p = kept[i] as Placement;
    if (removed?.has(p)) continue;
    const node = keptNodes[i];
    if (p.pendingReason !== null && p.nodeId !== null) {
      // A sticky replica waiting on its node (waitForItsNode): it stays, counted nowhere.
      plan.placements.push(p);
      continue;
    }
    if (p.nodeId === null || !node) {
      plan.placements.push(p);
      plan.toPlace.push(p);
      continue;
    }
    const isLost = lost(node);
    if (isLost || (evictionsLeft > 0 && mustLeave(node, plan))) {
      // A replacement goes elsewhere; the original stays in its node's target meanwhile.
      if (!isLost) evictionsLeft--;
      const replacement: Placement = { replicaId: ctx.newId(plan.service.name), nodeId: null, pendingReason: null, movedFrom: p.nodeId };
      draining.push({ ...copyPlacement(p), replacedBy: replacement.replicaId });
      replacements.push(replacement);
      continue;
    }
    plan.placements.push(p);
    plan.countByNodeId.set(p.nodeId, (plan.countByNodeId.get(p.nodeId) ?? 0) + 1);
  }
  for (const p of replacements) {
    plan.placements.push(p);
    plan.toPlace.push(p);
  }
  // A replacement scaled away leaves nothing to hand over to.
  for (const p of draining) if (!removedIds.has(p.replacedBy as string)) plan.draining.push(p);
}

/**
 * Whether a replica on this node, which is up, must move off it: the node is draining, or no
 * longer matches the service's constraints (its labels changed, or the constraints did). Never a
 * replica of a sticky service: its data is on the node, and a replica placed elsewhere would start
 * empty, so it stays where it is (serving) until its operator moves it on purpose.
 */
function mustLeave(node: SchedNode, plan: ServicePlan): boolean {
  if (plan.sticky) return false;
  return node.scheduling === 'draining' || (plan.constraints.length > 0 && !matchesAll(node, plan.constraints));
}

/**
 * A sticky replica whose node's agent is too old to mount its volumes (it came back older) waits
 * on that node, pending with why, rather than start empty elsewhere; once the agent can, it runs
 * there again. Null for any other replica (the usual rules apply; a node that is gone no longer
 * holds its data, and the replica is placed anew).
 */
function waitForItsNode(old: Placement, plan: ServicePlan, statesById: NodeStateLookup): { placement: Placement; node: SchedNode } | null {
  if (old.nodeId === null) return null;
  const state = statesById.get(old.nodeId);
  if (!state) return null;
  const refused = refusesDemand(state.node, plan.demand);
  if (!refused && old.pendingReason === null) return null;
  const copy = copyPlacement(old);
  delete copy.replacedBy;
  copy.pendingReason = refused ? `waits for node ${state.node.name}, which holds its volumes' data: ${protocolMisfitText(plan.spec, state.node.protocolVersion ?? null)}` : null;
  return { placement: copy, node: state.node };
}

/**
 * Placements arrays that hold no replica id twice: the planner's output, and lists a pass found so.
 * The hub never edits a list in place (see summaries below), so the fact holds for the array.
 */
const uniqueIds = new WeakSet<readonly Placement[]>();

/** The planner made this list: it holds no replica id twice. */
export function markIdsUnique(placements: readonly Placement[]): void {
  uniqueIds.add(placements);
}

/**
 * A service's placements without a replica id seen before in this pass, each id now seen. A list
 * known to hold no id twice is taken as it is and its ids are not added (`idsUnseen`): during a
 * failover a large service is judged pass after pass, and adding its 100,000 ids to a set was
 * two fifths of each pass. Ids of other services cannot match them (each starts with its name),
 * except in a hand-edited store, which the first pass after a start cleans with every id seen.
 */
function distinctPlacements(plan: ServicePlan, ctx: KeepContext): readonly Placement[] {
  const placements = plan.service.placements;
  if (ctx.trustUniqueIds && uniqueIds.has(placements)) {
    plan.idsUnseen = true;
    return placements;
  }
  const olds: Placement[] = [];
  for (const old of placements) {
    if (ctx.seenReplicaIds.has(old.replicaId)) continue;
    ctx.seenReplicaIds.add(old.replicaId);
    olds.push(old);
  }
  if (olds.length === placements.length) uniqueIds.add(placements);
  return olds;
}

/**
 * Whether a replicated service has nothing to decide: exactly its replicas, each on a node that
 * exists, still matches, is not lost nor draining, none pending or handing over. Keeping such a service
 * would copy it unchanged, so the pass only counts its reservations: most services are like this
 * most of the time, and that keeps a pass over a large fleet cheap.
 */
export function isSettled(plan: ServicePlan, ctx: KeepContext): boolean {
  const placements = plan.service.placements;
  if (placements.length !== plan.spec.replicas) return false;
  const summary = summaryOf(placements);
  if (!summary.allPlaced) return false;
  const lostAfterMs = plan.spec.lostAfterMs ?? ctx.defaultLostAfterMs;
  const reschedule = plan.spec.onNodeLost === 'reschedule';
  // A sticky service's replicas stay on draining and no longer matching nodes (see mustLeave).
  const constrained = plan.constraints.length > 0 && !plan.sticky;
  for (const nodeId of summary.countByNodeId.keys()) {
    const state = ctx.statesById.get(nodeId);
    if (!state || (constrained && !matchesAll(state.node, plan.constraints))) return false;
    if (state.node.scheduling === 'draining' && !plan.sticky) return false;
    if (refusesDemand(state.node, plan.demand)) return false;
    const downForMs = state.node.downForMs;
    if (reschedule && downForMs !== null && downForMs >= lostAfterMs) return false;
  }
  return true;
}

/** What a list of placements says without any node: whether all are placed, and how many per node. */
interface PlacementSummary {
  /** Every one has a node and is neither pending nor handing over. */
  allPlaced: boolean;
  countByNodeId: Map<string, number>;
}

/**
 * Remembered per placements array: the hub replaces a service's record (and its array) on every
 * change and never edits one in place, so an unchanged service's summary is computed once, not
 * once per pass. The planner never mutates its input either.
 */
const summaries = new WeakMap<readonly Placement[], PlacementSummary>();

export function summaryOf(placements: readonly Placement[]): PlacementSummary {
  let summary = summaries.get(placements);
  if (summary) return summary;
  summary = summarize(placements);
  summaries.set(placements, summary);
  return summary;
}

/**
 * Remembers the summary of a replicated service's new list from what the pass counted while making
 * it (`countByNodeId`: its placed replicas per node, none handing over): after a pass that changed
 * a large service, the next pass and the loop's settled check would otherwise walk it again.
 */
export function rememberSummary(placements: readonly Placement[], countByNodeId: Map<string, number>): void {
  let placed = 0;
  for (const count of countByNodeId.values()) placed += count;
  // Every placement counted on a node is every one placed (a pending or waiting one is not counted).
  summaries.set(placements, { allPlaced: placed === placements.length, countByNodeId });
}

/** A list's summary, from its placements. */
export function summarize(placements: readonly Placement[]): PlacementSummary {
  const summary: PlacementSummary = { allPlaced: true, countByNodeId: new Map() };
  for (const p of placements) {
    if (p.nodeId === null || p.pendingReason !== null || p.replacedBy) {
      summary.allPlaced = false;
      continue;
    }
    summary.countByNodeId.set(p.nodeId, (summary.countByNodeId.get(p.nodeId) ?? 0) + 1);
  }
  return summary;
}

/** A fresh copy, without optional fields that are unset (so equal placements compare equal). */
function copyPlacement(p: Placement): Placement {
  const out: Placement = { replicaId: p.replicaId, nodeId: p.nodeId, pendingReason: p.pendingReason };
  if (p.movedFrom) out.movedFrom = p.movedFrom;
  if (p.movedOnRequest) out.movedOnRequest = true;
  if (p.replacedBy) out.replacedBy = p.replacedBy;
  if (p.revision !== undefined) out.revision = p.revision;
  return out;
}

/**
 * Scale-down removes the replicas that cost least to lose: pending ones first (the newest first),
 * then, in turn, those on nodes that are down, those reported failing (failed, crash-looping or
 * unhealthy), those on nodes that take no new replicas (cordoned, draining, or no longer
 * matching: they would have to move anyway), and last the rest. Within each of these, always from
 * the node holding most of the service's replicas, and of equally crowded nodes, the newest
 * replica: evenness first, because what remains should survive the loss of any one node; age
 * then, because the newest replica has proved least (placing is spread, so a service's newest
 * replicas are mostly on its least crowded nodes, and "newest first" alone would undo the spread).
 *
 * Replica ids are random, so they say nothing of age: a list's order does. A pass keeps what it
 * keeps in order and appends what it places (replacements included), so a later position was
 * placed later (a pending replica placed late keeps the position it had).
 */
function chooseRemovals(
  kept: readonly Placement[],
  pendingCount: number,
  excess: number,
  statesById: NodeStateLookup,
  plan: ServicePlan,
  ctx: KeepContext,
): Set<Placement> {
  const removed = new Set<Placement>();
  const age = new Map<Placement, number>();
  kept.forEach((p, i) => age.set(p, i));
  for (let i = kept.length - 1; i >= 0 && removed.size < Math.min(excess, pendingCount); i--) {
    const p = kept[i] as Placement;
    if (p.nodeId === null) removed.add(p);
  }
  let left = excess - removed.size;
  if (left === 0) return removed;
  const onDown: Placement[] = [];
  const failing: Placement[] = [];
  const held: Placement[] = [];
  const rest: Placement[] = [];
  for (const p of kept) {
    if (p.nodeId === null) continue;
    const node = (statesById.get(p.nodeId) as NodeState).node;
    // A replica on a node that is down is not doing its job anyway.
    if (node.downForMs !== null || (!node.schedulable && node.scheduling === undefined)) onDown.push(p);
    else if (ctx.isUnhealthy(p.replicaId)) failing.push(p);
    else if (node.scheduling !== undefined || mustLeave(node, plan)) held.push(p);
    else rest.push(p);
  }
  for (const group of [onDown, failing, held, rest]) left = removeFromMostCrowded(group, left, removed, age);
  return removed;
}

/**
 * Removes up to `count` replicas, always from the node holding most of them (ties: the one whose
 * newest replica is newest), its newest, so that what remains stays spread. Returns how many are
 * left to remove. `placed` is in list order, so each node's list is oldest first.
 */
function removeFromMostCrowded(placed: readonly Placement[], count: number, removed: Set<Placement>, age: ReadonlyMap<Placement, number>): number {
  if (count <= 0 || placed.length === 0) return count;
  const byNode = new Map<string, Placement[]>();
  for (const p of placed) {
    const list = byNode.get(p.nodeId as string);
    if (list) list.push(p);
    else byNode.set(p.nodeId as string, [p]);
  }
  const newest = (list: Placement[]): number => age.get(list[list.length - 1] as Placement) as number;
  const heap = new MinHeap<Placement[]>((a, b) => b.length - a.length || newest(b) - newest(a), byNode.values());
  let left = count;
  while (left > 0) {
    const list = heap.pop();
    if (!list) break;
    removed.add(list.pop() as Placement);
    left--;
    if (list.length > 0) heap.push(list);
  }
  return left;
}

export function keepGlobal(plan: ServicePlan, statesById: NodeStateLookup, seenReplicaIds: Set<string>): void {
  // One replica per node; should an older list hold two, keep the running one, then the lower id.
  const byNode = new Map<string, Placement>();
  for (const old of plan.service.placements) {
    if (seenReplicaIds.has(old.replicaId)) continue;
    seenReplicaIds.add(old.replicaId);
    if (old.nodeId === null) continue;
    const state = statesById.get(old.nodeId);
    // A drained node's replica just goes: a global service runs one per node, none elsewhere.
    if (!state || !matchesAll(state.node, plan.constraints) || state.node.scheduling === 'draining') continue;
    const current = byNode.get(old.nodeId);
    if (current && !globalPreferred(old, current)) continue;
    byNode.set(old.nodeId, old);
  }
  const keptOld = new Set(byNode.values());
  for (const old of plan.service.placements) {
    if (!keptOld.has(old)) continue;
    // On an agent known to be too old, a placed replica becomes pending (out of its node's target)
    // rather than dropped: a new one there would get a new id every pass. placeGlobal judges it
    // again and writes the whole reason when the node is schedulable.
    const node = (statesById.get(old.nodeId as string) as NodeState).node;
    const pendingReason = old.pendingReason ?? (refusesDemand(node, plan.demand) ? protocolMisfitText(plan.spec, node.protocolVersion ?? null) : null);
    plan.placements.push({ replicaId: old.replicaId, nodeId: old.nodeId, pendingReason, ...(old.revision !== undefined ? { revision: old.revision } : {}) });
  }
}

function globalPreferred(a: Placement, b: Placement): boolean {
  if ((a.pendingReason === null) !== (b.pendingReason === null)) return a.pendingReason === null;
  return a.replicaId < b.replicaId;
}
