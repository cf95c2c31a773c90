/**
 * spreadBy: a service's replicas spread evenly over the values of a node label first, then by
 * the service's strategy among the nodes of a value, as Swarm's placement preferences do. Nodes
 * without the label form one group of their own. Each replica goes to the group with fewest of
 * the service's replicas (ties: value order, the unlabelled group last), so a scale-up or the
 * replacements of a lost node go where the service is thinnest. Replicas already placed are not
 * moved to even things out.
 *
 * Two levels of heap, so that a replica costs O(log groups + log nodes), as without spreadBy.
 */
import { MinHeap } from './min-heap.js';
import { compareStrings } from './order.js';
import type { Candidate, CandidateOrder } from './strategies.js';
import type { SchedNode } from './types.js';

/** A node's value of the label, or null when it has none (own properties only: labels come from JSON). */
export function labelValueOf(node: SchedNode, key: string): string | null {
  return Object.hasOwn(node.labels, key) ? (node.labels[key] as string) : null;
}

interface Group {
  value: string | null;
  /** Replicas of the service on the group's nodes, candidates or not (a node down but not lost). */
  count: number;
  candidates: MinHeap<Candidate>;
}

const groupOrder = (a: Group, b: Group): number =>
  a.count - b.count ||
  (a.value === b.value ? 0 : a.value === null ? 1 : b.value === null ? -1 : compareStrings(a.value, b.value));

/**
 * The candidates of one service's placing, in the order replicas go to them. Used as the plain
 * heap is: `pop` the next candidate; `push` it back once a replica is placed on it; a candidate
 * not pushed back (it does not fit) is dropped. A group whose candidates are all dropped is
 * dropped too: reservations only grow during a pass, so it would never fit again.
 */
export class SpreadGroups {
  private readonly groups: MinHeap<Group>;
  /** The group the last popped candidate came from: it stays on top of `groups` until pushed. */
  private current: Group | null = null;

  /** `countByNodeId`: the service's placed replicas per node, on any node of `nodeOf`. */
  constructor(
    key: string,
    order: CandidateOrder,
    candidates: readonly Candidate[],
    countByNodeId: ReadonlyMap<string, number>,
    nodeOf: (nodeId: string) => SchedNode,
  ) {
    const byValue = new Map<string | null, Group>();
    for (const c of candidates) {
      const value = labelValueOf(c.state.node, key);
      let group = byValue.get(value);
      if (!group) byValue.set(value, (group = { value, count: 0, candidates: new MinHeap(order) }));
      group.candidates.push(c);
    }
    // Groups without a candidate cannot take a replica; their counts do not matter.
    for (const [nodeId, count] of countByNodeId) {
      const group = byValue.get(labelValueOf(nodeOf(nodeId), key));
      if (group) group.count += count;
    }
    this.groups = new MinHeap(groupOrder, byValue.values());
  }

  pop(): Candidate | undefined {
    for (;;) {
      const group = this.groups.peek();
      if (!group) return undefined;
      const candidate = group.candidates.pop();
      if (candidate) {
        this.current = group;
        return candidate;
      }
      this.groups.pop();
    }
  }

  /** `candidate`, the one last popped, has one more replica now. */
  push(candidate: Candidate): void {
    const group = this.current;
    if (group === null || this.groups.peek() !== group) throw new Error('invariant: SpreadGroups.push without its pop');
    group.candidates.push(candidate);
    group.count++;
    this.groups.pop();
    this.groups.push(group);
    this.current = null;
  }
}
