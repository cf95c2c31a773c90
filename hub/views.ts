import type { ContainerSpec } from '../shared/container-spec.js';
import type { CrashLoop, PullProgress, ReplicaHealth, ReplicaState } from '../shared/protocol.js';
import { redactSpec, type NormalizedSpec } from './spec/service-spec.js';
import type { FailureDetector, NodeState } from './failure-detector.js';
import { conditionWarnings, engineUnavailableText, type NodeConditionsEntry } from './node-conditions.js';
import type { ObservedState } from './observed-state.js';
import type { RolloutState } from './rollout/rollout-record.js';
import type { Placement } from './scheduler/types.js';
import type { NodeRecord, ServiceRecord } from './store/store.js';

/**
 * A replica's state as the hub knows it: what its agent reported, or `unknown` while its node's
 * engine is unavailable (the agent cannot see the container, so its last report may be untrue),
 * or `crash-looping` while its restart policy keeps starting a container that keeps stopping
 * (whatever the container does between two starts: see `crashLoop`).
 */
export type ReplicaViewState = ReplicaState | 'unknown' | 'crash-looping';

/**
 * A crash-looping replica, or one its restart policy gave up on (`nextRestartAt` null: it stays
 * down, its state `failed` or `stopped`).
 */
export interface CrashLoopView {
  /** Restarts in a row, since the last stretch of `resetAfter` running. */
  restarts: number;
  /** Its last run's exit code; null when it was restarted for failing its health check. */
  lastExitCode: number | null;
  /** The last lines of its output (at most 1 KiB), null when the engine kept none. */
  outputTail: string | null;
  /** When its agent starts it again (the agent's clock); null: never, its policy gave up. */
  nextRestartAt: string | null;
}

export interface ReplicaView {
  replicaId: string;
  nodeId: string | null;
  state: ReplicaViewState;
  containerId: string | null;
  /** Why it is pending, or the last error its agent reported. */
  error: string | null;
  restarts: number;
  /** State of its node; a replica on an unreachable node shows what its agent last said. */
  nodeState: NodeState | null;
  /** The node this replica replaced a replica of (lost, drained, or no longer matching). */
  movedFrom: string | null;
  /**
   * Set while this replica waits for its replacement to serve (its node lost or drained, its
   * constraints no longer met, or a start-first update); not counted.
   */
  replacedBy: string | null;
  /** The revision whose container it runs while a rolling update has not reached it; null: the current one. */
  revision: number | null;
  /**
   * Null unless it runs. Without a health check: `healthy` once running. With one: what its
   * agent's checks say, `starting` until the agent reports a result.
   */
  health: ReplicaHealthStatus | null;
  /** The tail of the last failing check's output (null once a check passes, or without a check). */
  healthOutput: string | null;
  /** Set while it crash-loops, or once its restart policy gave up on it; null otherwise. */
  crashLoop: CrashLoopView | null;
  /** Set while its node pulls the image it is to run (an older container may serve meanwhile); null otherwise. */
  pull: PullView | null;
}

/** How far a node's pull of a replica's image got, as its agent last said (every few seconds). */
export interface PullView extends PullProgress {
  /** Of the bytes to download, the share done (0-100, rounded down); null while some layer's size is unknown. */
  percent: number | null;
}

/** An agent's word, shown as consistent: never more done than there is. */
function pullView(p: PullProgress): PullView {
  const bytesDone = p.bytesTotal === null ? p.bytesDone : Math.min(p.bytesDone, p.bytesTotal);
  const percent = p.bytesTotal === null ? null : p.bytesTotal === 0 ? 100 : Math.floor((bytesDone * 100) / p.bytesTotal);
  return { bytesDone, bytesTotal: p.bytesTotal, layersDone: Math.min(p.layersDone, p.layersTotal), layersTotal: p.layersTotal, percent };
}

export type ReplicaHealthStatus = ReplicaHealth['status'];

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
  states: Partial<Record<ReplicaViewState, number>>;
  /**
   * Replicas (not handing over) whose node is not ready, unreachable or lost: they show what their
   * agent last said, or `unknown` on a node whose engine is unavailable.
   */
  onDownNodes: number;
  /** Replicas that wait for their replacements to serve (see ReplicaView.replacedBy). */
  handingOver: number;
  /** Replicas (not handing over) per health; those that do not run count in none. */
  health: Record<ReplicaHealthStatus, number>;
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
  expected: ExpectedContainer,
  stateOfNode: (nodeId: string) => NodeState,
  page: ReplicaPage,
): ServiceView {
  const placements = record.placements;
  // Once per node, not per replica: a service of 100,000 replicas has them on a tenth as many nodes.
  const nodeStates = new Map<string, NodeState>();
  const nodeState = (nodeId: string): NodeState => {
    let state = nodeStates.get(nodeId);
    if (state === undefined) nodeStates.set(nodeId, (state = stateOfNode(nodeId)));
    return state;
  };
  const states: Partial<Record<ReplicaViewState, number>> = {};
  let running = 0;
  let active = 0;
  let onDownNodes = 0;
  let handingOver = 0;
  const health: Record<ReplicaHealthStatus, number> = { healthy: 0, unhealthy: 0, starting: 0 };
  for (const p of placements) {
    if (p.replacedBy) {
      handingOver++;
      continue;
    }
    active++;
    const ofNode = p.nodeId === null ? null : nodeState(p.nodeId);
    const status = replicaStatus(p, observed, expected(p.replicaId), ofNode);
    const { state } = status;
    states[state] = (states[state] ?? 0) + 1;
    if (status.health !== null) health[status.health]++;
    if (ofNode !== null && ofNode !== 'ready') onDownNodes++;
    else if (state === 'running' && ofNode === 'ready') running++;
  }
  const replicas = placements.slice(page.offset, page.offset + page.limit).map((p): ReplicaView => {
    const ofNode = p.nodeId === null ? null : nodeState(p.nodeId);
    const { state, containerId, error, restarts, health, healthOutput, crashLoop, pull } = replicaStatus(p, observed, expected(p.replicaId), ofNode);
    return {
      replicaId: p.replicaId,
      nodeId: p.nodeId,
      state,
      containerId,
      error,
      restarts,
      nodeState: ofNode,
      movedFrom: p.movedFrom ?? null,
      replacedBy: p.replacedBy ?? null,
      revision: p.revision ?? null,
      health,
      healthOutput,
      crashLoop,
      pull,
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
      health,
      replicas,
      replicaPage: { offset: page.offset, limit: page.limit, total: placements.length },
    },
  };
}

/**
 * A service's state in one word, for lists to filter on: `updating` while a rolling update or
 * rollback runs, `paused` while one waits for an operator, else `ready` when every desired
 * replica runs and `degraded` when some do not.
 */
export const SERVICE_STATES = ['ready', 'degraded', 'updating', 'paused'] as const;
export type ServiceState = (typeof SERVICE_STATES)[number];

export function serviceStateOf(status: Pick<ServiceStatus, 'desired' | 'running'>, rollout: RolloutState | null): ServiceState {
  if (rollout === 'paused') return 'paused';
  if (rollout === 'updating' || rollout === 'rolling-back') return 'updating';
  return status.running >= status.desired ? 'ready' : 'degraded';
}

/** The container a replica should run: the one its agent's report is judged against. */
export interface ExpectedReplicaContainer {
  specHash: string;
  container: Pick<ContainerSpec, 'healthcheck'>;
}
/** Per replica id: its pinned revision's container during an update, else the service's current one. */
export type ExpectedContainer = (replicaId: string) => ExpectedReplicaContainer | undefined;

type ReplicaStatus = Pick<ReplicaView, 'state' | 'containerId' | 'error' | 'restarts' | 'health' | 'healthOutput' | 'crashLoop' | 'pull'>;

const NO_HEALTH = { health: null, healthOutput: null, crashLoop: null, pull: null } as const;

function crashLoopView(c: CrashLoop): CrashLoopView {
  return { restarts: c.restarts, lastExitCode: c.lastExitCode, outputTail: c.outputTail, nextRestartAt: iso(c.nextRestartAtMs) };
}

/** `expected`: the container the replica should run, of the revision it is pinned to or the current one. */
function replicaStatus(p: Placement, observed: ObservedState, expected: ExpectedReplicaContainer | undefined, ofNode: NodeState | null): ReplicaStatus {
  if (p.pendingReason !== null || p.nodeId === null) return { state: 'pending', containerId: null, error: p.pendingReason, restarts: 0, ...NO_HEALTH };
  const seen = observed.get(p.replicaId);
  if (ofNode === 'not_ready') {
    return {
      state: 'unknown',
      containerId: seen?.nodeId === p.nodeId ? seen.report.containerId : null,
      error: 'its node cannot reach its container engine',
      restarts: seen?.report.restarts ?? 0,
      ...NO_HEALTH,
    };
  }
  if (!seen || seen.nodeId !== p.nodeId) return { state: 'pending', containerId: null, error: null, restarts: 0, ...NO_HEALTH };
  const r = seen.report;
  if (r.state === 'removed') throw new Error('invariant: removed reports are not kept');
  // A report of another spec means the agent is still replacing the container, or, with an
  // error, that the replacement failed (a pull, create or start) while the old version serves.
  // A replica an update has not reached yet is judged against its own revision: it serves.
  const current = expected !== undefined && r.specHash === expected.specHash;
  const checked = expected?.container.healthcheck !== undefined;
  const reported = current ? r.state : r.error !== null ? 'failed' : 'starting';
  // Only the current spec's container says anything of this spec's check, or of its crashes.
  const running = current && reported === 'running';
  const crashLoop = current && r.crashLoop ? crashLoopView(r.crashLoop) : null;
  // Crash-looping whatever the moment finds its container doing, as long as a restart is due.
  const state = crashLoop?.nextRestartAt ? 'crash-looping' : reported;
  return {
    state,
    containerId: current ? r.containerId : null,
    error: r.error,
    restarts: r.restarts,
    health: !running ? null : !checked ? 'healthy' : (r.health?.status ?? 'starting'),
    healthOutput: running && checked ? (r.health?.output ?? null) : null,
    crashLoop,
    pull: r.pull ? pullView(r.pull) : null,
  };
}

/** What a node view says of the node's conditions; null fields: not reported (a version 1 agent). */
function conditionsView(entry: NodeConditionsEntry | undefined) {
  const c = entry?.conditions ?? null;
  return {
    /** When the node last reported them; kept while it is away. */
    reportedAt: iso(entry?.reportedAtMs),
    engine: c?.engine ?? null,
    targetCache: c?.targetCache ?? null,
    dataDisk: c?.dataDisk ?? null,
    engineDisk: c?.engineDisk ?? null,
  };
}

export function nodeView(
  node: NodeRecord,
  detector: FailureDetector,
  applied: { generation: number; pending: number | null } | null,
  conditions: NodeConditionsEntry | undefined,
  nowMs: number,
) {
  const live = detector.liveness(node.id);
  const downForMs = detector.downForMs(node.id, nowMs);
  const disruption = detector.disruption();
  const state = detector.state(node.id, nowMs);
  // Connected and not ready: unusable since its engine went, the time that counts toward lostAfter.
  const unusableForMs = state === 'not_ready' ? detector.unusableForMs(node.id, nowMs) : null;
  return {
    id: node.id,
    name: node.name,
    state,
    /** Why the node is not ready (its engine), null otherwise. */
    stateReason: state === 'not_ready' ? engineUnavailableText(conditions?.conditions.engine) : null,
    labels: node.labels,
    /** Another name or labels the device asked for; they apply once an operator accepts them. */
    requested: node.requested ?? null,
    facts: node.facts,
    advertiseAddress: node.advertiseAddress,
    lastSeenAt: iso(live?.lastSeenMs),
    connectedSince: iso(live?.connectedSinceMs),
    /** Since when the node counts as away (unreachable or lost), by the hub's clock; null while connected. */
    downSince: downForMs === null ? null : iso(nowMs - downForMs),
    /**
     * Since when a connected node is not ready (its engine unavailable): its replicas move once that
     * lasts lostAfter. If it goes away, downSince carries on from this time.
     */
    notReadySince: unusableForMs === null ? null : iso(nowMs - unusableForMs),
    reconnects: Math.max(0, live?.reconnects ?? 0),
    /** `pending`: replicas of the applied generation still waiting for their images (null: not said). */
    generation: { target: node.generation, applied: applied?.generation ?? null, pending: applied?.pending ?? null },
    conditions: conditionsView(conditions),
    /** Human-readable: what needs an operator's attention (an engine down, a stale cache, low disks). */
    warnings: conditionWarnings(conditions?.conditions ?? null),
    joinedAt: node.joinedAt,
    /**
     * Set while most of the fleet is away at once (the hub's network, more likely than the
     * devices): no node becomes lost, and away-time (downSince) is held until the fleet is back.
     */
    fleetDisruption:
      disruption === null ? null : { since: iso(disruption.sinceMs), awayNodes: disruption.awayNodes, countedNodes: disruption.countedNodes },
  };
}
