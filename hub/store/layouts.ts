import type { Placement } from '../scheduler/types.js';
import type { RecordLayout } from './record-layout.js';
import type { NodeRecord, ServiceRecord } from './store.js';

/**
 * A service on disk: the record without its placements under its name, and each placement as a
 * part record of its own (`<service>/<replicaId>`), so that a pass that moves a few replicas of a
 * large service writes those, not the whole list.
 */
export const serviceLayout: RecordLayout<ServiceRecord> = {
  main: ({ placements: _placements, ...main }) => main,
  items: (service) => service.placements,
  itemId: (item) => (item as Placement).replicaId,
  assemble: (main, items) => ({ ...(main as Omit<ServiceRecord, 'placements'>), placements: items as Placement[] }),
};

/** The part of a node that every publish of its target changes. */
interface NodeTarget {
  generation: number;
  targetHash: string;
}

/**
 * A node on disk: the record without its target's generation and hash, and those as a small part
 * record (`<id>/target`), so that publishing a target writes about a hundred bytes per node rather
 * than its whole record with its facts.
 */
export const nodeLayout: RecordLayout<NodeRecord> = {
  main: ({ generation: _generation, targetHash: _targetHash, ...main }) => main,
  items: (node): NodeTarget[] => [{ generation: node.generation, targetHash: node.targetHash }],
  itemId: () => 'target',
  assemble: (main, items) => {
    const target = (items[0] as NodeTarget | undefined) ?? { generation: 0, targetHash: '' };
    return { ...(main as Omit<NodeRecord, 'generation' | 'targetHash'>), generation: target.generation, targetHash: target.targetHash };
  },
};
