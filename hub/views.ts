import type { ReplicaState } from '../shared/protocol.js';
import { redactSpec, type NormalizedSpec } from '../shared/spec.js';
import type { FailureDetector, NodeState } from './failure-detector.js';
import type { ObservedState } from './observed-state.js';
import type { Placement } from './scheduler/types.js';
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
  status: ServiceStatus;
}

export interface ServiceStatus {
  desired: number;
  /** Reported running, on a connected node, with the current spec. */
  running: number;
  /** Replicas per state; replicas handing over to a replacement are not counted here. */
  states: Partial<Record<ReplicaState, number>>;
  /** Replicas (not handing over) whose node is unreachable or lost: they show what their agent last said. */
  onDownNodes: number;
  /** Replicas of lost nodes that wait for their replacements to run. */
  handingOver: number;
  /** One page of the replica list, in placement order; `replicaPage.total` counts them all. */
  replicas: ReplicaView[];
  replicaPage: { offset: number; limit: number; total: number };
}

/** Which replicas a view lists; the counts always cover every replica. */
export interface ReplicaPage {
  offset: number;
  limit: number;
}

const iso = (ms: number | null | undefined) => (ms == null ? null : new Date(ms).toISOString());

/**
 * A service's spec and status. Counting walks every placement without building anything; only
 * the replicas of the requested page become objects, so that a summary of a service with
 * 100,000 replicas costs milliseconds and never holds up the agents' frames.
 */
export function serviceView(
  record: ServiceRecord,
  observed: ObservedState,
  specHash: string | undefined,
  nodeState: (nodeId: string) => NodeState,
  page: ReplicaPage,
): ServiceView {
  const placements = record.placements;
  const states: Partial<Record<ReplicaState, number>> = {};
  let running = 0;
  let active = 0;
  let onDownNodes = 0;
  let handingOver = 0;
  for (const p of placements) {
    if (p.replacedBy) {
      handingOver++;
      continue;
    }
    active++;
    const ofNode = p.nodeId === null ? null : nodeState(p.nodeId);
    const { state } = replicaStatus(p, observed, specHash);
    states[state] = (states[state] ?? 0) + 1;
    if (ofNode !== null && ofNode !== 'ready') onDownNodes++;
    else if (state === 'running' && ofNode === 'ready') running++;
  }
  const replicas = placements.slice(page.offset, page.offset + page.limit).map((p): ReplicaView => {
    const { state, containerId, error, restarts } = replicaStatus(p, observed, specHash);
    return {
      replicaId: p.replicaId,
      nodeId: p.nodeId,
      state,
      containerId,
      error,
      restarts,
      nodeState: p.nodeId === null ? null : nodeState(p.nodeId),
      movedFrom: p.movedFrom ?? null,
      replacedBy: p.replacedBy ?? null,
    };
  });
  return {
    name: record.name,
    revision: record.revision,
    createdAt: record.createdAt,
    updatedAt: record.updatedAt,
    spec: redactSpec(record.spec),
    status: {
      desired: record.spec.mode === 'global' ? active : record.spec.replicas,
      running,
      states,
      onDownNodes,
      handingOver,
      replicas,
      replicaPage: { offset: page.offset, limit: page.limit, total: placements.length },
    },
  };
}

type ReplicaStatus = Pick<ReplicaView, 'state' | 'containerId' | 'error' | 'restarts'>;

function replicaStatus(p: Placement, observed: ObservedState, specHash: string | undefined): ReplicaStatus {
  if (p.pendingReason !== null || p.nodeId === null) return { state: 'pending', containerId: null, error: p.pendingReason, restarts: 0 };
  const seen = observed.get(p.replicaId);
  if (!seen || seen.nodeId !== p.nodeId) return { state: 'pending', containerId: null, error: null, restarts: 0 };
  const r = seen.report;
  if (r.state === 'removed') throw new Error('invariant: removed reports are not kept');
  // A report of an older spec means the agent is still replacing the container, or, with an
  // error, that the replacement failed (a pull, create or start) while the old version serves.
  const current = r.specHash === specHash;
  const state = current ? r.state : r.error !== null ? 'failed' : 'starting';
  return { state, containerId: current ? r.containerId : null, error: r.error, restarts: r.restarts };
}

export function nodeView(node: NodeRecord, detector: FailureDetector, appliedGeneration: number | null, nowMs: number) {
  const live = detector.liveness(node.id);
  const downForMs = detector.downForMs(node.id, nowMs);
  const disruption = detector.disruption();
  return {
    id: node.id,
    name: node.name,
    state: detector.state(node.id, nowMs),
    labels: node.labels,
    /** Another name or labels the device asked for; they apply once an operator accepts them. */
    requested: node.requested ?? null,
    facts: node.facts,
    advertiseAddress: node.advertiseAddress,
    lastSeenAt: iso(live?.lastSeenMs),
    connectedSince: iso(live?.connectedSinceMs),
    downSince: downForMs === null ? null : iso(nowMs - downForMs),
    reconnects: Math.max(0, live?.reconnects ?? 0),
    generation: { target: node.generation, applied: appliedGeneration },
    joinedAt: node.joinedAt,
    /**
     * Set while most of the fleet is away at once (the hub's network, more likely than the
     * devices): no node becomes lost, and away-time (downSince) is held until the fleet is back.
     */
    fleetDisruption:
      disruption === null ? null : { since: iso(disruption.sinceMs), awayNodes: disruption.awayNodes, countedNodes: disruption.countedNodes },
  };
}
