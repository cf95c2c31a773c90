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
 * Told of each report kept, with the one it replaces (undefined: none held), and whether it came
 * in a hello (the node's whole picture, as after a hub restart); must not throw.
 */
export type ReportListener = (nodeId: string, report: ReplicaReport, previous: ReplicaReport | undefined, inHello: boolean) => void;

/**
 * What agents last reported about their replicas. Soft state: held in memory only, rebuilt from
 * each agent's hello after a hub restart, never written to the store. Work per report is O(1).
 */
export class ObservedState {
  private readonly byReplica = new Map<string, ObservedReplica>();
  private readonly byNode = new Map<string, Set<string>>();
  private readonly listeners = new Set<ReportListener>();

  /** Calls `listener` for every report kept from now on (events); returns the call that stops it. */
  subscribe(listener: ReportListener): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  get(replicaId: string): ObservedReplica | undefined {
    return this.byReplica.get(replicaId);
  }

  /** A hello carries the node's whole picture: whatever it no longer mentions is gone. */
  replaceNode(nodeId: string, reports: readonly ReplicaReport[], nowMs: number): void {
    const old = this.byNode.get(nodeId);
    // What it mentions again is replaced in keep, so that a reconnect is seen as no change.
    const mentioned = old && reports.length > 0 ? new Set(reports.map((r) => r.replicaId)) : null;
    if (old) for (const id of old) if (!mentioned?.has(id)) this.forget(nodeId, id);
    this.keep(nodeId, reports, nowMs, true);
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
    this.keep(nodeId, reports, nowMs, false);
  }

  private keep(nodeId: string, reports: readonly ReplicaReport[], nowMs: number, inHello: boolean): void {
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
      for (const listener of this.listeners) listener(nodeId, report, previous?.report, inHello);
      let set = this.byNode.get(nodeId);
      if (!set) this.byNode.set(nodeId, (set = new Set()));
      set.add(report.replicaId);
    }
  }
}
