/**
 * An operator's hold on a node: cordoned (no new replicas go there; what runs stays), draining
 * (cordoned, and every replica moves off, each kept until its replacement serves), or active. Kept
 * in the node's record (NodeRecord.scheduling), so that a hub restart finds it; the scheduler reads
 * it from each node's view (SchedNode.scheduling) and does the moving (hub/scheduler/keep.ts).
 */
import type { Logger } from '../shared/logger.js';
import { nextNodeRevision } from './node-revision.js';
import type { NodeRecord, Store } from './store/store.js';

export type NodeSchedulingState = 'active' | 'cordoned' | 'draining';

/** What a node's view says of its hold. */
export function schedulingOf(node: NodeRecord): NodeSchedulingState {
  return node.scheduling ?? 'active';
}

export class NodeScheduling {
  constructor(
    private readonly store: Store,
    private readonly logger: Pick<Logger, 'info'>,
    /** Where replicas belong may have changed. */
    private readonly placementInputsChanged: () => void,
  ) {}

  /**
   * Puts the node in `state`, durably before it answers; undefined for an unknown node. A node
   * already there is left as it is (no write). Any state may follow any other: cordoning a
   * draining node stops the drain as uncordoning does (replicas not yet moved stay, moves whose
   * replacement does not serve yet are called off) and keeps new replicas away.
   */
  async set(id: string, state: NodeSchedulingState): Promise<NodeRecord | undefined> {
    const node = this.store.getNode(id);
    if (!node) return undefined;
    const before = schedulingOf(node);
    if (before === state) return node;
    // Active is no key at all: most records never have one.
    const { scheduling: _before, ...rest } = node;
    const held: NodeRecord = { ...rest, revision: nextNodeRevision(node) };
    const updated: NodeRecord = state === 'active' ? held : { ...held, scheduling: state };
    await this.store.putNode(updated);
    this.logger.info({ nodeId: id, name: node.name, scheduling: state, before }, `node ${state === 'active' ? 'uncordoned' : state} by the operator`);
    this.placementInputsChanged();
    return updated;
  }
}
