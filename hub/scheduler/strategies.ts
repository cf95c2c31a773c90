/**
 * Placement strategies: which feasible node a replicated service's next replica goes to first.
 * `spread` (the default) takes the node with fewest replicas of the service, so that losing a
 * node loses few of them; `binpack` takes the node with least room left that still fits it, so
 * that whole nodes stay free for large replicas (or can be switched off).
 */
import type { Demand, NodeState } from './node-usage.js';
import { compareStrings } from './order.js';
import type { ServicePlan } from './service-plan.js';

/** A node that may take replicas of the service being placed. */
export interface Candidate {
  state: NodeState;
  /** Replicas of this service on the node, those placed in this pass included. */
  ownCount: number;
}

/** Negative: `a` is tried first. Every order ends with the node id, so that it is total. */
export type CandidateOrder = (a: Candidate, b: Candidate) => number;

/** Fewest replicas of this service, then fewest placements overall, then node id. */
const spreadOrder: CandidateOrder = (a, b) =>
  a.ownCount - b.ownCount || a.state.placementCount - b.state.placementCount || compareStrings(a.state.node.id, b.state.node.id);

/** Most placements of any service first, then node id: binpack for replicas that ask for no resources. */
const busiestOrder: CandidateOrder = (a, b) =>
  b.state.placementCount - a.state.placementCount || compareStrings(a.state.node.id, b.state.node.id);

/**
 * How many more replicas of `demand` the node has room for, by the resource that runs out first
 * (a fraction: 2.5 is room for two). A node whose capacity is unknown fits none; it sorts last and
 * is dropped when reached. Unitless, so nodes of any size and both resources compare.
 */
function roomFor(state: NodeState, demand: Demand): number {
  const capacity = state.capacity;
  if (capacity === null) return Number.POSITIVE_INFINITY;
  let room = Number.POSITIVE_INFINITY;
  if (demand.cpuMillis > 0) room = (capacity.cpuMillis - state.usedCpuMillis) / demand.cpuMillis;
  if (demand.memoryBytes > 0) room = Math.min(room, (capacity.memoryBytes - state.usedMemoryBytes) / demand.memoryBytes);
  return room;
}

/** Least room left first (by what the service asks for), then as busiestOrder. */
function binpackOrder(demand: Demand): CandidateOrder {
  if (demand.cpuMillis === 0 && demand.memoryBytes === 0) return busiestOrder;
  return (a, b) => {
    const roomA = roomFor(a.state, demand);
    const roomB = roomFor(b.state, demand);
    return roomA < roomB ? -1 : roomA > roomB ? 1 : busiestOrder(a, b);
  };
}

/**
 * The order of the service's strategy. Only the node a replica was just placed on changes while
 * the service is placed, and it is out of the heap then: every order stays valid for a heap.
 */
export function candidateOrder(plan: ServicePlan): CandidateOrder {
  return plan.spec.strategy === 'binpack' ? binpackOrder(plan.demand) : spreadOrder;
}
