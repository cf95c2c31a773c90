import type { Clock } from '../shared/clock.js';

export type NodeState = 'ready' | 'down';

export interface NodeLiveness {
  connected: boolean;
  /** Hub clock time of the last frame from the node (the device's own clock is never trusted). */
  lastSeenMs: number | null;
  connectedSinceMs: number | null;
  /** Times the node connected again after its first connection since the hub started. */
  reconnects: number;
}

export interface FailureDetectorOptions {
  clock: Clock;
  /** A connected node silent for longer than this is declared down and its connection dropped. */
  heartbeatGraceMs: number;
  onStateChange: (nodeId: string, state: NodeState) => void;
}

/**
 * Judges node liveness by the hub's own clock. Soft state only: a heartbeat costs one map lookup
 * and one number write, never a store write.
 */
export class FailureDetector {
  private readonly nodes = new Map<string, NodeLiveness>();

  constructor(private readonly opts: FailureDetectorOptions) {}

  liveness(nodeId: string): NodeLiveness | undefined {
    return this.nodes.get(nodeId);
  }

  state(nodeId: string): NodeState {
    return this.nodes.get(nodeId)?.connected ? 'ready' : 'down';
  }

  connected(nodeId: string): NodeLiveness {
    const now = this.opts.clock.nowMs();
    let entry = this.nodes.get(nodeId);
    if (!entry) {
      entry = { connected: false, lastSeenMs: null, connectedSinceMs: null, reconnects: -1 };
      this.nodes.set(nodeId, entry);
    }
    entry.reconnects++;
    entry.lastSeenMs = now;
    entry.connectedSinceMs = now;
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
    this.opts.onStateChange(nodeId, 'down');
  }

  forget(nodeId: string): void {
    this.nodes.delete(nodeId);
  }

  /** Connected nodes silent past the grace period: the caller drops their connections. */
  silentNodes(): string[] {
    const deadline = this.opts.clock.nowMs() - this.opts.heartbeatGraceMs;
    const out: string[] = [];
    for (const [nodeId, entry] of this.nodes) {
      if (entry.connected && entry.lastSeenMs !== null && entry.lastSeenMs < deadline) out.push(nodeId);
    }
    return out;
  }
}
