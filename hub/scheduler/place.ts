/**
 * Placing: new replicas of replicated services go to the nodes that fit, in the order of the
 * service's strategy (a min-heap keeps the next node first; with spreadBy, one heap per label
 * value), and a replica of each global service on every matching node.
 */
import { matchesAll } from '../spec/constraints.js';
import { checkFit } from './feasibility.js';
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

  let next = 0;
  while (next < plan.toPlace.length) {
    const best = heap.pop();
    if (!best) break;
    // Reservations only grow during a pass, so a node that does not fit now never will: drop it.
    if (!checkFit(best.state, plan.demand, 'all')) continue;
    const p = plan.toPlace[next++] as Placement;
    p.nodeId = best.state.node.id;
    p.pendingReason = null;
    reserve(best.state, plan.demand);
    best.ownCount++;
    heap.push(best);
  }
  for (let i = next; i < plan.toPlace.length; i++) plan.unplaced.push(plan.toPlace[i] as Placement);
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
