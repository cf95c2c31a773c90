/**
 * What the hub's metrics read, and nothing more: each part of the hub implements its slice, so
 * that metrics need neither the hub nor its parts.
 */
import type { AuthKind } from './auth/auth-failures.js';
import type { FleetDisruption, NodeState } from './failure-detector.js';
import type { ConditionName } from './node-conditions.js';
import type { StoreHealth } from './store/store-write-error.js';

export interface LivenessStats {
  /** Nodes by state: O(nodes), at scrape time only. */
  nodeStateCounts(): Record<NodeState, number>;
  disruption(): FleetDisruption | null;
  awayShare(): number;
  stalls(): { count: number; totalMs: number };
}

export interface NodeStats {
  conditionCounts(): Record<ConditionName, number>;
  readonly refusedReports: number;
  readonly refusedReportsBeforeAck: number;
  readonly observedReplicas: number;
}

/** The agent gateway's counters. */
export interface AgentStats {
  readonly connectedCount: number;
  readonly pendingHandshakeCount: number;
  readonly refusedBusy: number;
  readonly refusedAddressBusy: number;
  readonly refusedUnauthorized: number;
  readonly refusedNotFound: number;
  readonly socketFaults: { readonly byCode: ReadonlyMap<string, number> };
  readonly acksRefused: number;
  readonly helloGenerationsAhead: number;
  readonly conditionsHeld: number;
  readonly handshakesSuperseded: number;
  readonly sessionsReplaced: number;
}

/** Failed authentications, by what was refused (see auth/auth-failures.ts). */
export interface AuthStats {
  readonly failuresByKind: Readonly<Record<AuthKind, number>>;
  /** Of those, the ones refused (429) because their address had failed too often. */
  readonly refusedByKind: Readonly<Record<AuthKind, number>>;
}

export interface SchedulerStats {
  readonly passes: number;
  /** Calls `listener` with each pass's planning time, until the returned function is called. */
  onPlan(listener: (ms: number) => void): () => void;
}

export interface StoreStats {
  health(): StoreHealth;
  stats(): { writes: number; bytesWritten: number };
}

export interface ServiceStats {
  count(): number;
}

export interface HubStats {
  liveness: LivenessStats;
  nodes: NodeStats;
  agents: AgentStats;
  scheduler: SchedulerStats;
  store: StoreStats;
  services: ServiceStats;
  auth: AuthStats;
}
