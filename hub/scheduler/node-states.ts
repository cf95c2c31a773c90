/**
 * The node states of one pass, each made when a stage first needs it: a pass that places nothing
 * new touches only the nodes of the services it judges, not every node of the fleet.
 */
import { newNodeState, type NodeState, type NodeUsage } from './node-usage.js';
import type { SchedNode } from './types.js';

/** What stages that look nodes up by id need. */
export interface NodeStateLookup {
  get(nodeId: string): NodeState | undefined;
}

export class NodeStates implements NodeStateLookup {
  private readonly byId = new Map<string, NodeState>();
  private every: NodeState[] | null = null;

  /**
   * `sorted`: the pass's nodes in id order; `baseOf`: what is reserved on a node before the pass
   * starts (settled services kept from earlier passes), copied into its state.
   */
  constructor(
    private readonly sorted: readonly SchedNode[],
    private readonly nodesById: ReadonlyMap<string, SchedNode>,
    private readonly baseOf: (nodeId: string) => Readonly<NodeUsage> | undefined = () => undefined,
  ) {}

  get(nodeId: string): NodeState | undefined {
    let state = this.byId.get(nodeId);
    if (state) return state;
    const node = this.nodesById.get(nodeId);
    if (!node) return undefined;
    state = newNodeState(node, this.baseOf(nodeId));
    this.byId.set(nodeId, state);
    return state;
  }

  /** Every node's state, in id order (placing and reasons look at them all). */
  all(): readonly NodeState[] {
    return (this.every ??= this.sorted.map((node) => this.get(node.id) as NodeState));
  }
}
