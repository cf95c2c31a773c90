import type { NormalizedSpec } from '../spec/service-spec.js';

/** A node as the scheduler sees it: an immutable snapshot, nothing it can change. */
export interface SchedNode {
  id: string;
  name: string;
  labels: Record<string, string>;
  /** Null until the node's agent has said hello once. */
  facts: { hostname: string; arch: string; os: string; cpus: number; memoryBytes: number } | null;
  /**
   * True when new replicas may be placed here: the node is connected, its engine answers, and its
   * operator has not cordoned or drained it.
   */
  schedulable: boolean;
  /**
   * The operator's hold on the node (NodeRecord.scheduling): `cordoned` takes no new replicas and
   * keeps what runs; `draining` also hands every replica over to one elsewhere (global ones just
   * leave). Absent: active.
   */
  scheduling?: 'cordoned' | 'draining';
  /**
   * How long the node has been unusable by the hub's clock: unreachable, or connected with its
   * engine unavailable (not_ready); null while ready. Its replicas move once this passes the
   * service's lostAfterMs, and come back as for a lost node when it is ready again.
   */
  downForMs: number | null;
  /**
   * The protocol version its agent spoke at hello, while connected; null or absent when not
   * connected (unknown: an agent may come back older or newer). A spec that needs a newer
   * protocol (a health check needs 3) is placed only where it is known to be spoken.
   */
  protocolVersion?: number | null;
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
  /** The lost node this replica replaces a replica of. */
  movedFrom?: string | null;
  /**
   * Set with `movedFrom` when an operator asked for the move (POST .../replicas/:id/move): it is
   * not called off because the node it leaves is fine, and never placed back on that node.
   */
  movedOnRequest?: true;
  /**
   * Set on a replica of a lost node once a replacement exists: it stays in its node's target (a
   * returning node keeps serving) until the replacement runs, and no longer counts as a replica.
   */
  replacedBy?: string | null;
  /**
   * The revision of the service's spec this replica's container is made of, while a rolling update
   * has not reached it yet (or rolls it back); absent: the service's current revision. Placing
   * never sets it: a replica placed anew (scale-up, a move off a lost node) runs the current spec.
   */
  revision?: number;
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
