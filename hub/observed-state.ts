import type { ReplicaReport } from '../shared/protocol.js';

export interface ObservedReplica {
  nodeId: string;
  /**
   * The replica's last report, whole: a report replaces the one before, its health (protocol 3)
   * included, so a replica whose check was removed shows none left over.
   */
  report: ReplicaReport;
  updatedAtMs: number;
}

/**
 * What agents last reported about their replicas. Soft state: held in memory only, rebuilt from
 * each agent's hello after a hub restart, never written to the store. Work per report is O(1).
 */
export class ObservedState {
  private readonly byReplica = new Map<string, ObservedReplica>();
  private readonly byNode = new Map<string, Set<string>>();

  get(replicaId: string): ObservedReplica | undefined {
    return this.byReplica.get(replicaId);
  }

  /** A hello carries the node's whole picture: whatever it no longer mentions is gone. */
  replaceNode(nodeId: string, reports: readonly ReplicaReport[], nowMs: number): void {
    const old = this.byNode.get(nodeId);
    if (old) for (const id of old) this.byReplica.delete(id);
    this.byNode.delete(nodeId);
    this.apply(nodeId, reports, nowMs);
  }

  /** The replica no longer belongs to the node: what the node said of it no longer applies. */
  forget(nodeId: string, replicaId: string): void {
    if (this.byReplica.get(replicaId)?.nodeId !== nodeId) return;
    this.byReplica.delete(replicaId);
    const set = this.byNode.get(nodeId);
    set?.delete(replicaId);
    if (set?.size === 0) this.byNode.delete(nodeId);
  }

  /** Replicas with a report held: bounded by the replicas assigned to nodes, whatever nodes send. */
  get size(): number {
    return this.byReplica.size;
  }

  /**
   * A status frame carries changes only. The caller passes only reports about replicas assigned
   * to the node, so what is kept per node is bounded by its target.
   */
  apply(nodeId: string, reports: readonly ReplicaReport[], nowMs: number): void {
    for (const report of reports) {
      const previous = this.byReplica.get(report.replicaId);
      if (report.state === 'removed') {
        // Only the node that holds the replica may remove it (a moved replica's old node may
        // report its old container gone after the new node reported the new one).
        this.forget(nodeId, report.replicaId);
        continue;
      }
      if (previous && previous.nodeId !== nodeId) this.byNode.get(previous.nodeId)?.delete(report.replicaId);
      this.byReplica.set(report.replicaId, { nodeId, report, updatedAtMs: nowMs });
      let set = this.byNode.get(nodeId);
      if (!set) this.byNode.set(nodeId, (set = new Set()));
      set.add(report.replicaId);
    }
  }
}
