import type { NormalizedSpec } from '../../shared/spec.js';

/** A node as the scheduler sees it: an immutable snapshot, nothing it can change. */
export interface SchedNode {
  id: string;
  name: string;
  labels: Record<string, string>;
  /** Null until the node's agent has said hello once. */
  facts: { hostname: string; arch: string; os: string; cpus: number; memoryBytes: number } | null;
  /** True when new replicas may be placed here (the node is connected and ready). */
  schedulable: boolean;
}

/**
 * Where one replica belongs. `nodeId` set and `pendingReason` null: it runs (or should run) there.
 * `pendingReason` set: it cannot be placed now and says why; a replicated replica then has no node,
 * a global one keeps the node it belongs to.
 */
export interface Placement {
  replicaId: string;
  nodeId: string | null;
  pendingReason: string | null;
}

export interface SchedService {
  name: string;
  spec: NormalizedSpec;
  placements: readonly Placement[];
}

/** The new placements of one service whose placements changed. */
export interface ServicePlacementChange {
  service: string;
  placements: Placement[];
}
