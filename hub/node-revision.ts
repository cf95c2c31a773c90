/**
 * A node's revision: 1 at join, one more at each change an operator makes to it (name, labels,
 * accepting what the device asked for, cordon, drain, uncordon). Kept in the node's record, so it
 * survives a restart; what the device and the hub change (facts, generations) leaves it alone:
 * If-Match guards operators against each other, not against the fleet's own motion.
 */
import type { NodeRecord } from './store/store.js';

/** Records from before revisions, and those never changed since their join, are at 1. */
export const nodeRevisionOf = (node: Pick<NodeRecord, 'revision'>): number => node.revision ?? 1;

/** The revision an operator's change of `node` gives it. */
export const nextNodeRevision = (node: Pick<NodeRecord, 'revision'>): number => nodeRevisionOf(node) + 1;
