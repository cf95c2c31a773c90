import type { ReplicaState } from '../shared/protocol.js';
import { redactSpec, type NormalizedSpec } from '../shared/spec.js';
import type { FailureDetector, NodeState } from './failure-detector.js';
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
  /** State of its node; a replica on an unreachable node shows what its agent last said. */
  nodeState: NodeState | null;
  /** The lost node this replica replaced a replica of. */
  movedFrom: string | null;
  /** Set while this replica of a lost node waits for its replacement to run; not counted. */
  replacedBy: string | null;
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

export function serviceView(
  record: ServiceRecord,
  observed: ObservedState,
  specHash: string | undefined,
  nodeState: (nodeId: string) => NodeState,
): ServiceView {
  const replicas = record.placements.map((p): ReplicaView => {
    const base = {
      replicaId: p.replicaId,
      nodeId: p.nodeId,
      nodeState: p.nodeId === null ? null : nodeState(p.nodeId),
      movedFrom: p.movedFrom ?? null,
      replacedBy: p.replacedBy ?? null,
    };
    if (p.pendingReason !== null || p.nodeId === null) {
      return { ...base, state: 'pending', containerId: null, error: p.pendingReason, restarts: 0 };
    }
    const seen = observed.get(p.replicaId);
    if (!seen || seen.nodeId !== p.nodeId) {
      return { ...base, state: 'pending', containerId: null, error: null, restarts: 0 };
    }
    const r = seen.report;
    if (r.state === 'removed') throw new Error('invariant: removed reports are not kept');
    // A report of an older spec means the agent is still replacing the container.
    const current = r.specHash === specHash;
    return {
      ...base,
      state: current ? r.state : 'starting',
      containerId: current ? r.containerId : null,
      error: r.error,
      restarts: r.restarts,
    };
  });
  const active = replicas.filter((r) => r.replacedBy === null);
  return {
    name: record.name,
    revision: record.revision,
    createdAt: record.createdAt,
    updatedAt: record.updatedAt,
    spec: redactSpec(record.spec),
    status: {
      desired: record.spec.mode === 'global' ? active.length : record.spec.replicas,
      // Running as far as the hub knows: reported running by a node that is connected now.
      running: active.filter((r) => r.state === 'running' && r.nodeState === 'ready').length,
      replicas,
    },
  };
}

export function nodeView(node: NodeRecord, detector: FailureDetector, appliedGeneration: number | null, nowMs: number) {
  const live = detector.liveness(node.id);
  const downForMs = detector.downForMs(node.id, nowMs);
  return {
    id: node.id,
    name: node.name,
    state: detector.state(node.id, nowMs),
    labels: node.labels,
    facts: node.facts,
    advertiseAddress: node.advertiseAddress,
    lastSeenAt: iso(live?.lastSeenMs),
    connectedSince: iso(live?.connectedSinceMs),
    downSince: downForMs === null ? null : iso(nowMs - downForMs),
    reconnects: Math.max(0, live?.reconnects ?? 0),
    generation: { target: node.generation, applied: appliedGeneration },
    joinedAt: node.joinedAt,
  };
}
