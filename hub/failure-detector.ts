import type { Clock } from '../shared/clock.js';

export type NodeState = 'ready' | 'unreachable' | 'lost';

export interface NodeLiveness {
  connected: boolean;
  /** Hub clock time of the last frame from the node (the device's own clock is never trusted). */
  lastSeenMs: number | null;
  connectedSinceMs: number | null;
  /** Since when the hub counts the node as away; null while connected. */
  downSinceMs: number | null;
  /** Times the node connected again after its first connection since the hub started. */
  reconnects: number;
}

export interface FailureDetectorOptions {
  clock: Clock;
  /** A connected node silent for longer than this is unreachable and its connection dropped. */
  heartbeatGraceMs: number;
  /** A node away for this long is lost (a service may set its own threshold for its replicas). */
  lostAfterMs: number;
  /**
   * After the hub starts, nodes get this long to reconnect before their away-time starts to count:
   * a hub that was down itself must not declare the fleet lost.
   */
  startupGraceMs: number;
  onStateChange: (nodeId: string, state: NodeState) => void;
}

export interface SweepResult {
  /** Connected nodes silent past the grace period: the caller drops their connections. */
  silent: string[];
  /** Whether any node's away-time crossed one of the given thresholds since the last sweep. */
  crossedThreshold: boolean;
}

/**
 * Judges node liveness by the hub's own clock only (devices without a real-time clock are
 * common). Soft state: a heartbeat costs one number write, never a store write.
 *
 * ready --(connection closed, or silent past heartbeatGraceMs)--> unreachable
 * unreachable --(away for lostAfterMs)--> lost;  any --(hello)--> ready
 */
export class FailureDetector {
  private readonly nodes = new Map<string, NodeLiveness>();
  private readonly awayFromMs: number;
  private lastSweepMs: number;

  constructor(private readonly opts: FailureDetectorOptions) {
    const now = opts.clock.nowMs();
    // Nodes not heard from since the hub started count as away from the end of the startup grace.
    this.awayFromMs = now + opts.startupGraceMs;
    this.lastSweepMs = now;
  }

  liveness(nodeId: string): NodeLiveness | undefined {
    return this.nodes.get(nodeId);
  }

  /** How long the node has been away, by the hub's clock; null while it is connected. */
  downForMs(nodeId: string, nowMs = this.opts.clock.nowMs()): number | null {
    const entry = this.nodes.get(nodeId);
    if (entry?.connected) return null;
    return Math.max(0, nowMs - (entry?.downSinceMs ?? this.awayFromMs));
  }

  state(nodeId: string, nowMs = this.opts.clock.nowMs()): NodeState {
    const downForMs = this.downForMs(nodeId, nowMs);
    if (downForMs === null) return 'ready';
    return downForMs >= this.opts.lostAfterMs ? 'lost' : 'unreachable';
  }

  connected(nodeId: string): NodeLiveness {
    const now = this.opts.clock.nowMs();
    let entry = this.nodes.get(nodeId);
    if (!entry) {
      entry = { connected: false, lastSeenMs: null, connectedSinceMs: null, downSinceMs: null, reconnects: -1 };
      this.nodes.set(nodeId, entry);
    }
    entry.reconnects++;
    entry.lastSeenMs = now;
    entry.connectedSinceMs = now;
    entry.downSinceMs = null;
    if (!entry.connected) {
      entry.connected = true;
      this.opts.onStateChange(nodeId, 'ready');
    }
    return entry;
  }

  /** Any frame counts as a sign of life; callers keep the entry from connected() to skip the lookup. */
  seen(entry: NodeLiveness): void {
    entry.lastSeenMs = this.opts.clock.nowMs();
  }

  disconnected(nodeId: string): void {
    const entry = this.nodes.get(nodeId);
    if (!entry || !entry.connected) return;
    entry.connected = false;
    entry.connectedSinceMs = null;
    // Away since it was last heard from: a node that went silent was gone before we noticed.
    entry.downSinceMs = entry.lastSeenMs ?? this.opts.clock.nowMs();
    this.opts.onStateChange(nodeId, 'unreachable');
  }

  forget(nodeId: string): void {
    this.nodes.delete(nodeId);
  }

  /**
   * Called about once a second with every node id: finds silent connections and tells whether an
   * away-time crossed a threshold (the hub's lostAfterMs or a service's own), so the scheduler runs
   * exactly when a replica becomes movable. O(nodes x thresholds) per sweep, nothing per message.
   */
  sweep(nodeIds: Iterable<string>, thresholdsMs: readonly number[]): SweepResult {
    const now = this.opts.clock.nowMs();
    const previous = this.lastSweepMs;
    this.lastSweepMs = now;
    const silentBefore = now - this.opts.heartbeatGraceMs;
    const silent: string[] = [];
    let crossedThreshold = false;
    for (const nodeId of nodeIds) {
      const entry = this.nodes.get(nodeId);
      if (entry?.connected) {
        if (entry.lastSeenMs !== null && entry.lastSeenMs < silentBefore) silent.push(nodeId);
        continue;
      }
      const downNow = this.downForMs(nodeId, now) as number;
      const downBefore = this.downForMs(nodeId, previous) as number;
      for (const t of thresholdsMs) {
        if (downBefore < t && downNow >= t) {
          crossedThreshold = true;
          if (t === this.opts.lostAfterMs) this.opts.onStateChange(nodeId, 'lost');
        }
      }
    }
    return { silent, crossedThreshold };
  }
}
