/**
 * Whether an operator's move of one replica can be placed: onto the node asked for, or (none
 * asked for) onto any node but its own. Pure, as the rest of the scheduler: the hub checks a move
 * before it records it, so that a move nothing can take is a clear refusal, not a replica left
 * pending; the pass that places it judges it again against the newest state.
 */
import { matchesAll } from '../spec/constraints.js';
import { checkFit, type Misfit } from './feasibility.js';
import { newNodeState, reserve, type NodeState } from './node-usage.js';
import { describeNodeMisfits } from './pending-reasons.js';
import { newPlan } from './service-plan.js';
import type { Placement, SchedNode, SchedService } from './types.js';

export type MoveCheck = { ok: true; fromNodeId: string } | { ok: false; code: string; message: string };

/** Nodes a refusal names at most when no node can take the replica (the rest are counted). */
const MAX_NAMED_NODES = 5;

export function checkMove(service: SchedService, replica: Placement, toNodeId: string | null, nodes: readonly SchedNode[], services: readonly SchedService[]): MoveCheck {
  const id = replica.replicaId;
  if (service.spec.mode !== 'replicated') {
    return { ok: false, code: 'move_refused', message: `"${service.name}" is global: it runs one replica on every matching node, none can move` };
  }
  if (replica.replacedBy) return { ok: false, code: 'move_refused', message: `replica ${id} is already being replaced by ${replica.replacedBy}` };
  if (replica.nodeId === null || replica.pendingReason !== null) {
    return { ok: false, code: 'move_refused', message: `replica ${id} is not placed on a node (pending: ${replica.pendingReason ?? 'not placed yet'})` };
  }
  const from = replica.nodeId;
  const plan = newPlan(service);
  const candidates = toNodeId === null ? nodes.filter((n) => n.id !== from) : nodes.filter((n) => n.id === toNodeId);
  if (toNodeId !== null) {
    if (candidates.length === 0) return { ok: false, code: 'move_refused', message: `no node with id "${toNodeId}"` };
    if (toNodeId === from) return { ok: false, code: 'move_refused', message: `replica ${id} is already on node ${toNodeId}` };
  }
  const usage = usageOn(new Set(candidates.map((n) => n.id)), nodes, services);
  const refusals: string[] = [];
  for (const node of candidates) {
    const why = nodeRefusal(node, usage.get(node.id) as NodeState, plan);
    if (why === null) return { ok: true, fromNodeId: from };
    refusals.push(`node ${node.name} ${why}`);
  }
  if (toNodeId !== null) return { ok: false, code: 'move_refused', message: `replica ${id} cannot move to ${refusals[0]}` };
  if (refusals.length === 0) return { ok: false, code: 'move_refused', message: `replica ${id} cannot move: there is no other node` };
  const more = refusals.length > MAX_NAMED_NODES ? `, and ${refusals.length - MAX_NAMED_NODES} more` : '';
  return { ok: false, code: 'move_refused', message: `no other node can take replica ${id}: ${refusals.slice(0, MAX_NAMED_NODES).join('; ')}${more}` };
}

/** Why a new replica of the plan's service cannot go to the node, or null. */
function nodeRefusal(node: SchedNode, state: NodeState, plan: ReturnType<typeof newPlan>): string | null {
  if (!node.schedulable) {
    if (node.downForMs !== null) return 'is not ready';
    return node.scheduling === undefined ? 'takes no new replicas' : `is ${node.scheduling}`;
  }
  if (!matchesAll(node, plan.constraints)) return `does not match constraints [${plan.spec.constraints.join(', ')}]`;
  const misfits: Misfit[] = [];
  return checkFit(state, plan.demand, 'all', misfits) ? null : `does not fit: ${describeNodeMisfits(misfits, plan.spec)}`;
}

/** What every service's replicas (placed or claiming a node) reserve on each of these nodes. */
function usageOn(ids: ReadonlySet<string>, nodes: readonly SchedNode[], services: readonly SchedService[]): Map<string, NodeState> {
  const states = new Map<string, NodeState>();
  for (const node of nodes) if (ids.has(node.id)) states.set(node.id, newNodeState(node));
  for (const service of services) {
    const demand = newPlan(service).demand;
    for (const p of service.placements) {
      const state = p.nodeId === null ? undefined : states.get(p.nodeId);
      if (state) reserve(state, demand);
    }
  }
  return states;
}
