import type { ReplicaState } from '../shared/protocol.js';
import { redactSpec, type NormalizedSpec } from '../shared/spec.js';
import type { FailureDetector } from './failure-detector.js';
import type { ObservedState } from './observed-state.js';
import type { NodeRecord, ServiceRecord } from './store/store.js';

export interface ReplicaView {
  replicaId: string;
  nodeId: string | null;
  state: ReplicaState;
  containerId: string | null;
  /** Why it is pending, or the last error its agent reported. */
  error: string | null;
  restarts: number;
}

export interface ServiceView {
  name: string;
  revision: number;
  createdAt: string;
  updatedAt: string;
  spec: NormalizedSpec;
  status: { desired: number; running: number; replicas: ReplicaView[] };
}

const iso = (ms: number | null | undefined) => (ms == null ? null : new Date(ms).toISOString());

export function serviceView(record: ServiceRecord, observed: ObservedState, specHash: string | undefined): ServiceView {
  const replicas = record.placements.map((p): ReplicaView => {
    if (p.pendingReason !== null || p.nodeId === null) {
      return { replicaId: p.replicaId, nodeId: p.nodeId, state: 'pending', containerId: null, error: p.pendingReason, restarts: 0 };
    }
    const seen = observed.get(p.replicaId);
    if (!seen || seen.nodeId !== p.nodeId) {
      return { replicaId: p.replicaId, nodeId: p.nodeId, state: 'pending', containerId: null, error: null, restarts: 0 };
    }
    const r = seen.report;
    if (r.state === 'removed') throw new Error('invariant: removed reports are not kept');
    // A report of an older spec means the agent is still replacing the container.
    const current = r.specHash === specHash;
    return {
      replicaId: p.replicaId,
      nodeId: p.nodeId,
      state: current ? r.state : 'starting',
      containerId: current ? r.containerId : null,
      error: r.error,
      restarts: r.restarts,
    };
  });
  return {
    name: record.name,
    revision: record.revision,
    createdAt: record.createdAt,
    updatedAt: record.updatedAt,
    spec: redactSpec(record.spec),
    status: {
      desired: record.spec.mode === 'global' ? record.placements.length : record.spec.replicas,
      running: replicas.filter((r) => r.state === 'running').length,
      replicas,
    },
  };
}

export function nodeView(node: NodeRecord, detector: FailureDetector, appliedGeneration: number | null) {
  const live = detector.liveness(node.id);
  return {
    id: node.id,
    name: node.name,
    state: detector.state(node.id),
    labels: node.labels,
    facts: node.facts,
    advertiseAddress: node.advertiseAddress,
    lastSeenAt: iso(live?.lastSeenMs),
    connectedSince: iso(live?.connectedSinceMs),
    reconnects: Math.max(0, live?.reconnects ?? 0),
    generation: { target: node.generation, applied: appliedGeneration },
    joinedAt: node.joinedAt,
  };
}
