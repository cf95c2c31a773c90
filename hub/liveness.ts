/**
 * Liveness: the failure detector, the sweep that judges it on a timer, a line per change of a
 * node's state, and lost-ness remembered across hub restarts.
 */
import type { Clock } from '../shared/clock.js';
import type { Logger } from '../shared/logger.js';
import { CloseCode } from '../shared/protocol.js';
import { FailureDetector, type FleetDisruption, type NodeState } from './failure-detector.js';
import type { LivenessStats } from './hub-stats.js';
import type { NodeChangeLog } from './node-change-log.js';
import type { NodeConditionsTable } from './node-conditions.js';
import type { NodeSlots } from './node-slots.js';
import { RateLimitedLog } from './rate-limited-log.js';
import type { NodeRecord, Store } from './store/store.js';

/** At most one log line per this interval about the hub's own stalls. */
const STALL_LOG_INTERVAL_MS = 10_000;

export interface LivenessConfig {
  /** Silence after which a connected node is unreachable. */
  heartbeatGraceMs: number;
  /** Time away after which a node is lost and its replicas move (services may set their own). */
  lostAfterMs: number;
  /** After a hub start, time nodes get to reconnect before their absence starts to count. */
  startupGraceMs: number;
  /** More than this share of the nodes away at once holds lost declarations. */
  disruptionShare: number;
}

export interface LivenessDeps {
  store: Store;
  clock: Clock;
  logger: Logger;
  config: LivenessConfig;
  /** What nodes last said of their engines: a not-ready line says why. */
  conditions: NodeConditionsTable;
  /** The node slots the detector shares with the conditions (see node-slots.ts). */
  slots?: NodeSlots;
  nodeLog: NodeChangeLog;
  /** Drops a node's connection. */
  disconnect: (nodeId: string, code: number, reason: string) => void;
  /** A node became lost, or crossed a service's lost threshold: replicas move at the next pass. */
  markDirty: () => void;
  /** A node became ready or unreachable: a pass may be due (see HubReconcileLoop.nodesChanged). */
  nodesChanged: () => void;
}

/** Told of each change of a node's state (previous null: the first since the hub started); must not throw. */
export type NodeStateListener = (nodeId: string, state: NodeState, previous: NodeState | null) => void;

export class Liveness implements LivenessStats {
  readonly detector: FailureDetector;
  private sweepTimer: NodeJS.Timeout | null = null;
  private readonly stateListeners = new Set<NodeStateListener>();

  /** Calls `listener` for every change of a node's state from now on (events); returns the call that stops it. */
  subscribe(listener: NodeStateListener): () => void {
    this.stateListeners.add(listener);
    return () => this.stateListeners.delete(listener);
  }

  constructor(private readonly deps: LivenessDeps) {
    const { clock, config, logger } = deps;
    const stallLog = new RateLimitedLog((obj, msg) => logger.warn(obj, msg), { intervalMs: STALL_LOG_INTERVAL_MS });
    this.detector = new FailureDetector({
      clock,
      heartbeatGraceMs: config.heartbeatGraceMs,
      lostAfterMs: config.lostAfterMs,
      startupGraceMs: config.startupGraceMs,
      disruptionShare: config.disruptionShare,
      slots: deps.slots,
      onStateChange: (nodeId, state, previous) => {
        this.logStateChange(nodeId, state, previous);
        this.rememberLost(nodeId, state);
        for (const listener of this.stateListeners) listener(nodeId, state, previous);
        if (state === 'lost') deps.markDirty();
        else deps.nodesChanged();
      },
      onDisruptionChange: (d) => {
        if (d) logger.warn({ awayNodes: d.awayNodes, countedNodes: d.countedNodes }, 'most of the fleet is away at once: no node is declared lost until it is back (fleet disruption)');
        else logger.info({}, 'fleet disruption over: nodes still away count from now');
      },
      // A hub slow all the time notices a small stall every sweep or so: a line now and then is enough.
      onStall: (stallMs) => stallLog.log({ stallMs }, 'the hub did not run for a while (paused or blocked); that time is not held against any node'),
    });
  }

  /** Restores the nodes lost before the hub started, and starts sweeping. */
  start(): void {
    const wallNowMs = Date.now();
    for (const node of this.deps.store.listNodes()) {
      if (node.lostSince) this.detector.restoreLost(node.id, wallNowMs - Date.parse(node.lostSince) + this.deps.config.lostAfterMs);
    }
    // Judging liveness on a timer is O(nodes) per sweep (about a millisecond for 10,000 nodes),
    // never work per message. Every 250 ms (or a quarter of a short grace) keeps the delay in
    // noticing a silent or lost node small next to the grace and to the failover target.
    // The detector's stall detection knows this pace: one value for both.
    this.sweepTimer = setInterval(() => this.sweep(), this.detector.sweepIntervalMs);
    this.sweepTimer.unref();
  }

  stop(): void {
    if (this.sweepTimer) clearInterval(this.sweepTimer);
    this.sweepTimer = null;
  }

  /** Drops silent connections, and runs the scheduler when a node crosses a lost threshold. */
  sweep(): void {
    const { store, config, logger } = this.deps;
    const thresholds = new Set([config.lostAfterMs]);
    for (const s of store.listServices()) if (s.spec.lostAfterMs !== null) thresholds.add(s.spec.lostAfterMs);
    const nodeIds = (function* (nodes: Iterable<NodeRecord>) {
      for (const n of nodes) yield n.id;
    })(store.listNodes());
    const { silent, crossedThreshold } = this.detector.sweep(nodeIds, [...thresholds]);
    for (const nodeId of silent) {
      logger.warn({ nodeId, graceMs: config.heartbeatGraceMs }, 'node silent past its grace period; dropping its connection');
      this.deps.disconnect(nodeId, CloseCode.heartbeatTimeout, 'no heartbeat within the grace period');
    }
    if (crossedThreshold) this.deps.markDirty();
  }

  /** Nodes by state: O(nodes), at scrape time only. */
  nodeStateCounts(): Record<NodeState, number> {
    const counts: Record<NodeState, number> = { ready: 0, not_ready: 0, unreachable: 0, lost: 0 };
    for (const node of this.deps.store.listNodes()) counts[this.detector.state(node.id)]++;
    return counts;
  }

  disruption(): FleetDisruption | null {
    return this.detector.disruption();
  }

  awayShare(): number {
    return this.detector.awayShare();
  }

  stalls(): { count: number; totalMs: number } {
    return this.detector.stalls();
  }

  /**
   * Lost-ness outlives a hub restart (see FailureDetector.restoreLost). Written lazily: it changes
   * once per node failure, and a hub killed before the write only treats the node as away again.
   */
  private rememberLost(nodeId: string, state: NodeState): void {
    const { store, logger } = this.deps;
    const node = store.getNode(nodeId);
    if (!node) return;
    const lostSince = state === 'lost' ? (node.lostSince ?? new Date().toISOString()) : state === 'ready' ? null : (node.lostSince ?? null);
    if (lostSince === (node.lostSince ?? null)) return;
    void store.putNode({ ...node, lostSince }, { lazy: true }).catch((err: unknown) => logger.error({ err, nodeId }, 'could not store that the node is lost'));
  }

  /** One line per change of a node's state; an engine outage's lines say so, and say why. */
  private logStateChange(nodeId: string, state: NodeState, previous: NodeState | null): void {
    const { nodeLog } = this.deps;
    if (state === 'not_ready') {
      const error = this.deps.conditions.get(nodeId)?.conditions.engine.error ?? null;
      nodeLog.line('warn', nodeId, { error, previous }, 'node not ready: its container engine is unavailable; no new replicas go there, and its replicas move if that lasts lostAfter');
    } else if (state === 'ready' && previous === 'not_ready') {
      nodeLog.line('info', nodeId, {}, 'node ready: its container engine is available again');
    } else if (state === 'ready') {
      nodeLog.line('info', nodeId, {}, 'node ready');
    } else if (state === 'lost') {
      // Outside the budget: it comes at most once per lostAfter, and matters most.
      this.deps.logger.warn({ nodeId }, 'node lost');
    } else {
      nodeLog.line('warn', nodeId, {}, `node ${state}`);
    }
  }
}
