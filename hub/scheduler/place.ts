/**
 * Placing: new replicas of replicated services go to the nodes that fit, in the order of the
 * service's strategy (a min-heap keeps the next node first; with spreadBy, one heap per label
 * value), and a replica of each global service on every matching node.
 */
import { matchesAll } from '../spec/constraints.js';
import { checkFit, type Misfit } from './feasibility.js';
import { describeNodeMisfits } from './pending-reasons.js';
import { MinHeap } from './min-heap.js';
import type { NodeStates } from './node-states.js';
import { addUnsettled, reserve, type NodeState } from './node-usage.js';
import type { ServicePlan } from './service-plan.js';
import { SpreadGroups } from './spread-groups.js';
import { candidateOrder, type Candidate } from './strategies.js';
import type { Placement } from './types.js';

/** `statesById`: every node's state is built only when there is something to place. */
export function placeReplicated(plan: ServicePlan, statesById: NodeStates, newId: (service: string) => string): void {
  const name = plan.service.name;
  for (let n = plan.placements.length; n < plan.spec.replicas; n++) {
    const p: Placement = { replicaId: newId(name), nodeId: null, pendingReason: null };
    plan.placements.push(p);
    plan.toPlace.push(p);
  }
  if (plan.toPlace.length === 0) return;
  const free = plan.sticky ? placePinned(plan, statesById) : plan.toPlace;
  if (free.length === 0) return;

  const candidates: Candidate[] = [];
  for (const state of statesById.all()) {
    if (!state.node.schedulable || !matchesAll(state.node, plan.constraints)) continue;
    candidates.push({ state, ownCount: plan.countByNodeId.get(state.node.id) ?? 0 });
  }
  const order = candidateOrder(plan);
  const spreadBy = plan.spec.spreadBy;
  const heap =
    spreadBy === undefined
      ? new MinHeap<Candidate>(order, candidates)
      : new SpreadGroups(spreadBy, order, candidates, plan.countByNodeId, (id) => (statesById.get(id) as NodeState).node);

  // A replica an operator moves never goes back to the node it leaves: that node is held aside
  // while it is placed, and offered to the next replica again.
  let next = 0;
  let heldAside: Candidate | null = null;
  const giveBack = () => {
    if (heldAside) heap.push(heldAside);
    heldAside = null;
  };
  while (next < free.length) {
    const p = free[next] as Placement;
    const best = heap.pop();
    if (!best) {
      if (!heldAside) break;
      giveBack();
      plan.unplaced.push(p);
      next++;
      continue;
    }
    // Reservations only grow during a pass, so a node that does not fit now never will: drop it.
    if (!checkFit(best.state, plan.demand, 'all')) continue;
    if (p.movedOnRequest && p.movedFrom === best.state.node.id) {
      heldAside = best;
      continue;
    }
    next++;
    p.nodeId = best.state.node.id;
    p.pendingReason = null;
    reserve(best.state, plan.demand);
    best.ownCount++;
    // Read by the heaps only when they are made: kept whole, it is the new list's count per node.
    plan.countByNodeId.set(best.state.node.id, best.ownCount);
    heap.push(best);
    giveBack();
  }
  for (let i = next; i < free.length; i++) plan.unplaced.push(free[i] as Placement);
}

/**
 * A sticky service's start-first update (a replacement with no `movedFrom`) starts the new
 * container on the node of the replica it replaces, where the data is, or waits for that node,
 * pending with why. Returns the replicas left to place as usual (scale-up, operators' moves).
 */
function placePinned(plan: ServicePlan, statesById: NodeStates): Placement[] {
  const nodeOf = new Map<string, string>();
  for (const old of plan.draining) if (old.replacedBy && old.nodeId !== null) nodeOf.set(old.replacedBy, old.nodeId);
  if (nodeOf.size === 0) return plan.toPlace;
  const free: Placement[] = [];
  for (const p of plan.toPlace) {
    const nodeId = p.movedFrom ? undefined : nodeOf.get(p.replicaId);
    if (nodeId === undefined) {
      free.push(p);
      continue;
    }
    const state = statesById.get(nodeId) as NodeState;
    const misfits: Misfit[] = [];
    if (state.node.downForMs === null && checkFit(state, plan.demand, 'all', misfits)) {
      p.nodeId = nodeId;
      p.pendingReason = null;
      reserve(state, plan.demand);
      plan.countByNodeId.set(nodeId, (plan.countByNodeId.get(nodeId) ?? 0) + 1);
      continue;
    }
    const why = state.node.downForMs !== null ? 'the node is not ready' : describeNodeMisfits(misfits, plan.spec);
    p.pendingReason = `waits for node ${state.node.name}, which holds its volumes' data: ${why}`;
  }
  return free;
}

export function placeGlobal(
  plan: ServicePlan,
  statesById: NodeStates,
  newId: (service: string) => string,
): void {
  const hasReplica = new Set<string>();
  for (const p of plan.placements) {
    // Kept global placements always have a node that exists.
    const state = statesById.get(p.nodeId as string) as NodeState;
    hasReplica.add(state.node.id);
    if (p.pendingReason === null) continue;
    // Judged before its own claim is settled, so that the claim does not count against itself.
    // A pending replica on a node that is down waits for the node, keeping its reason.
    if (state.node.schedulable) {
      if (checkFit(state, plan.demand, 'settled')) p.pendingReason = null;
      else plan.unplaced.push(p);
    }
    addUnsettled(state, plan.demand, -1);
  }
  for (const state of statesById.all()) {
    if (hasReplica.has(state.node.id) || !state.node.schedulable || !matchesAll(state.node, plan.constraints)) continue;
    const fits = checkFit(state, plan.demand, 'settled');
    // Placed or pending, the replica belongs to this node and holds its share of it.
    const p: Placement = { replicaId: newId(plan.service.name), nodeId: state.node.id, pendingReason: null };
    reserve(state, plan.demand);
    plan.placements.push(p);
    if (!fits) plan.unplaced.push(p);
  }
}
