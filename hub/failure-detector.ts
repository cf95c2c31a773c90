import type { Clock } from '../shared/clock.js';
import { DEFAULT_DISRUPTION_SHARE, isFleetDisruption } from './fleet-disruption.js';
import { StallDetector, stallAfterMsFor, sweepIntervalMsFor } from './stall-detector.js';

/**
 * `not_ready`: connected, but its container engine does not answer (its agent says so): no new
 * work goes there, and once that lasts lostAfter its replicas move as a lost node's do.
 */
export type NodeState = 'ready' | 'not_ready' | 'unreachable' | 'lost';

export interface NodeLiveness {
  connected: boolean;
  /** Hub clock time of the last frame from the node (the device's own clock is never trusted). */
  lastSeenMs: number | null;
  connectedSinceMs: number | null;
  /** Since when the hub counts the node as away; null while connected. */
  downSinceMs: number | null;
  /** Times the node connected again after its first connection since the hub started. */
  reconnects: number;
  /**
   * Hub clock time since which the node's agent reports its engine unavailable; null while it
   * answers. Kept while the node is away: an outage does not start over at each reconnect.
   */
  engineDownSinceMs: number | null;
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
  /** More than this share of the nodes away at once is a fleet disruption (see fleet-disruption.ts). */
  disruptionShare?: number;
  /** How often the caller sweeps; `sweepIntervalMsFor(heartbeatGraceMs)` by default. */
  sweepIntervalMs?: number;
  /** A gap this long between two calls is a stall of the hub (default from the grace; Infinity: off). */
  stallAfterMs?: number;
  onStateChange: (nodeId: string, state: NodeState, previous: NodeState | null) => void;
  /** The fleet went into disruption mode (a value) or out of it (null). */
  onDisruptionChange?: (disruption: FleetDisruption | null) => void;
  /** The hub was stalled for `stallMs`; every node was given that time back, but for the usual sweep interval. */
  onStall?: (stallMs: number) => void;
}

/** Most of the fleet is away: away-time is held and no node becomes lost. */
export interface FleetDisruption {
  /** Hub clock time since which away-time is held. */
  sinceMs: number;
  /** Nodes away at the last sweep, and the nodes counted (nodes already lost are not). */
  awayNodes: number;
  countedNodes: number;
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
 * ready <--(engine unavailable / available again)--> not_ready
 * not_ready --(connection closed)--> unreachable, or lost at once if the outage lasted lostAfter
 *
 * A not_ready node is unusable, as an away one is: `unusableForMs` counts its engine outage the way
 * `downForMs` counts away-time, so that the scheduler moves its replicas through the same path as
 * a lost node's once the outage lasts lostAfter, and hands them back when the engine returns.
 *
 * Two things are not held against the nodes, as they say more about the hub than about them:
 * - a fleet disruption (more than disruptionShare of the nodes away at once): away-time stops
 *   accruing, and when the fleet is back the nodes still away count from that moment, so they get
 *   a full lostAfter again; nodes lost before it stay lost;
 * - a stall of the hub itself: every node's last-seen and away-since move forward by the stall,
 *   less the hub's usual pace (see stall-detector.ts).
 */
export class FailureDetector {
  private readonly nodes = new Map<string, NodeLiveness>();
  /** Where away-time starts for nodes not heard from since the hub started. */
  private awayFromMs: number;
  private lastSweepMs: number;
  private readonly stall: StallDetector;
  /** How often the caller should sweep (see sweepIntervalMsFor). */
  readonly sweepIntervalMs: number;
  private readonly disruptionShare: number;
  private disruptionNow: FleetDisruption | null = null;
  /** Away nodes over counted nodes at the last sweep. */
  private awayShareNow = 0;

  constructor(private readonly opts: FailureDetectorOptions) {
    const now = opts.clock.nowMs();
    // Nodes not heard from since the hub started count as away from the end of the startup grace.
    this.awayFromMs = now + opts.startupGraceMs;
    this.lastSweepMs = now;
    this.disruptionShare = opts.disruptionShare ?? DEFAULT_DISRUPTION_SHARE;
    this.sweepIntervalMs = opts.sweepIntervalMs ?? sweepIntervalMsFor(opts.heartbeatGraceMs);
    this.stall = new StallDetector(opts.clock, opts.stallAfterMs ?? stallAfterMsFor(opts.heartbeatGraceMs), this.sweepIntervalMs);
  }

  liveness(nodeId: string): NodeLiveness | undefined {
    return this.nodes.get(nodeId);
  }

  /** The fleet disruption in progress, or null. */
  disruption(): FleetDisruption | null {
    return this.disruptionNow;
  }

  /** Share of the counted nodes away at the last sweep, 0 to 1. */
  awayShare(): number {
    return this.awayShareNow;
  }

  /** The hub's own stalls noticed since it started. */
  stalls(): { count: number; totalMs: number } {
    return { count: this.stall.count, totalMs: this.stall.totalMs };
  }

  /** How long the node has been away, by the hub's clock and net of what is not held against it; null while connected. */
  downForMs(nodeId: string, nowMs = this.opts.clock.nowMs()): number | null {
    this.catchUp(nowMs);
    const entry = this.nodes.get(nodeId);
    if (entry?.connected) return null;
    return this.awayMs(entry, nowMs);
  }

  /**
   * How long the node has been unusable for its replicas: away (as downForMs), or connected with
   * its engine unavailable; null while ready. The scheduler's `downForMs`.
   */
  unusableForMs(nodeId: string, nowMs = this.opts.clock.nowMs()): number | null {
    this.catchUp(nowMs);
    const entry = this.nodes.get(nodeId);
    if (!entry?.connected) return this.awayMs(entry, nowMs);
    return entry.engineDownSinceMs === null ? null : Math.max(0, nowMs - entry.engineDownSinceMs);
  }

  state(nodeId: string, nowMs = this.opts.clock.nowMs()): NodeState {
    const downForMs = this.downForMs(nodeId, nowMs);
    if (downForMs === null) return this.nodes.get(nodeId)?.engineDownSinceMs == null ? 'ready' : 'not_ready';
    return downForMs >= this.opts.lostAfterMs ? 'lost' : 'unreachable';
  }

  /** `engineAvailable`: what the hello says of the engine (version 1 agents say nothing: available). */
  connected(nodeId: string, engineAvailable = true): NodeLiveness {
    const now = this.opts.clock.nowMs();
    this.catchUp(now);
    let entry = this.nodes.get(nodeId);
    const before = entry ? this.state(nodeId, now) : null;
    if (!entry) {
      entry = { connected: false, lastSeenMs: null, connectedSinceMs: null, downSinceMs: null, reconnects: -1, engineDownSinceMs: null };
      this.nodes.set(nodeId, entry);
    }
    entry.reconnects++;
    entry.lastSeenMs = now;
    entry.connectedSinceMs = now;
    entry.downSinceMs = null;
    entry.connected = true;
    // An outage that went on while the node was away goes on from when it began.
    entry.engineDownSinceMs = engineAvailable ? null : (entry.engineDownSinceMs ?? now);
    const after = connectedState(entry);
    if (before !== after) this.opts.onStateChange(nodeId, after, before);
    return entry;
  }

  /** The connected node's agent says its engine answers (true) or not; a change is a state change. */
  engineReported(nodeId: string, entry: NodeLiveness, available: boolean): void {
    if (!entry.connected || available === (entry.engineDownSinceMs === null)) return;
    const before = connectedState(entry);
    entry.engineDownSinceMs = available ? null : this.opts.clock.nowMs();
    this.opts.onStateChange(nodeId, connectedState(entry), before);
  }

  /** Any frame counts as a sign of life; callers keep the entry from connected() to skip the lookup. */
  seen(entry: NodeLiveness): void {
    entry.lastSeenMs = this.opts.clock.nowMs();
  }

  /** The node was removed: nothing of it is kept, and its connection's close changes no state. */
  forget(nodeId: string): void {
    this.nodes.delete(nodeId);
  }

  disconnected(nodeId: string): void {
    const entry = this.nodes.get(nodeId);
    if (!entry || !entry.connected) return;
    const now = this.opts.clock.nowMs();
    // After a stall, the closes queued meanwhile are often read before the next sweep.
    this.catchUp(now);
    const before = connectedState(entry);
    entry.connected = false;
    entry.connectedSinceMs = null;
    // Away since it was last heard from: a node that went silent was gone before we noticed. A
    // node whose engine was unavailable before has been unusable since then, and its lostAfter
    // runs on from there rather than starting over.
    entry.downSinceMs = Math.min(entry.lastSeenMs ?? now, entry.engineDownSinceMs ?? Number.POSITIVE_INFINITY);
    // Unusable past lostAfter by the last sweep already (an outage as long): no sweep sees that
    // crossing, so it is announced here; one since the last sweep is the next sweep's to announce.
    const lostBySweep = this.awayMs(entry, this.lastSweepMs) >= this.opts.lostAfterMs;
    this.opts.onStateChange(nodeId, lostBySweep ? 'lost' : 'unreachable', before);
  }

  /**
   * A node that was lost before the hub (re)started, away for `awayMs` by then: lost from the
   * start, as it was. Without this it would count as merely away once the startup grace ends, and
   * long-dead nodes could hold the fleet in a disruption for good.
   */
  restoreLost(nodeId: string, awayMs: number): void {
    if (this.nodes.has(nodeId)) return;
    const now = this.opts.clock.nowMs();
    this.nodes.set(nodeId, {
      connected: false,
      lastSeenMs: null,
      connectedSinceMs: null,
      downSinceMs: now - Math.max(this.opts.lostAfterMs, awayMs),
      reconnects: -1,
      engineDownSinceMs: null,
    });
  }

  /**
   * Called about once a second with every node id: finds silent connections, follows the fleet
   * disruption mode, and tells whether an away-time crossed a threshold (the hub's lostAfterMs or
   * a service's own), so the scheduler runs exactly when a replica becomes movable.
   * O(nodes x thresholds) per sweep, nothing per message.
   */
  sweep(nodeIds: Iterable<string>, thresholdsMs: readonly number[]): SweepResult {
    const now = this.opts.clock.nowMs();
    this.catchUp(now);
    const previous = this.lastSweepMs;
    this.lastSweepMs = now;
    const silentBefore = now - this.opts.heartbeatGraceMs;
    const silent: string[] = [];
    const away: string[] = [];
    let crossedThreshold = false;
    let counted = 0;
    let awayCounted = 0;
    for (const nodeId of nodeIds) {
      const entry = this.nodes.get(nodeId);
      if (entry?.connected) {
        counted++;
        if (entry.engineDownSinceMs !== null) {
          // An engine outage crosses the same thresholds as away-time (see unusableForMs).
          const downNow = now - entry.engineDownSinceMs;
          const downBefore = previous - entry.engineDownSinceMs;
          for (const t of thresholdsMs) if (downBefore < t && downNow >= t) crossedThreshold = true;
        }
        if (entry.lastSeenMs !== null && entry.lastSeenMs < silentBefore) {
          silent.push(nodeId);
          // Dropped right after this sweep: it counts as away already.
          awayCounted++;
        }
        continue;
      }
      away.push(nodeId);
      // Nodes not heard from since the start are not judged during the startup grace; nodes
      // already lost have had their replicas moved, and a long-dead node must not hold the fleet
      // in disruption for good.
      if (!entry && now < this.awayFromMs) continue;
      if (this.awayMs(entry, now) >= this.opts.lostAfterMs) continue;
      counted++;
      awayCounted++;
    }
    this.followDisruption(awayCounted, counted, previous, now);

    for (const nodeId of away) {
      const entry = this.nodes.get(nodeId);
      const downNow = this.awayMs(entry, now);
      const downBefore = this.awayMs(entry, previous);
      for (const t of thresholdsMs) {
        if (downBefore < t && downNow >= t) {
          crossedThreshold = true;
          if (t === this.opts.lostAfterMs) this.opts.onStateChange(nodeId, 'lost', 'unreachable');
        }
      }
    }
    return { silent, crossedThreshold };
  }

  private followDisruption(awayNodes: number, countedNodes: number, previousSweepMs: number, now: number): void {
    this.awayShareNow = countedNodes === 0 ? 0 : awayNodes / countedNodes;
    const disrupted = isFleetDisruption(awayNodes, countedNodes, this.disruptionShare);
    if (disrupted && this.disruptionNow === null) {
      // Held from the previous sweep: nodes that went away since then cross nothing in this one.
      this.disruptionNow = { sinceMs: previousSweepMs, awayNodes, countedNodes };
      this.opts.onDisruptionChange?.(this.disruptionNow);
    } else if (disrupted && this.disruptionNow !== null) {
      this.disruptionNow.awayNodes = awayNodes;
      this.disruptionNow.countedNodes = countedNodes;
    } else if (!disrupted && this.disruptionNow !== null) {
      const sinceMs = this.disruptionNow.sinceMs;
      this.disruptionNow = null;
      // Resume: nodes lost before keep their away-time (none accrued meanwhile); the others count
      // from now, with a full lostAfter ahead (Kubernetes resets its probe times the same way).
      const resume = (awaySinceMs: number) =>
        sinceMs - awaySinceMs >= this.opts.lostAfterMs ? awaySinceMs + (now - sinceMs) : Math.max(awaySinceMs, now);
      for (const entry of this.nodes.values()) if (!entry.connected && entry.downSinceMs !== null) entry.downSinceMs = resume(entry.downSinceMs);
      this.awayFromMs = resume(this.awayFromMs);
      this.opts.onDisruptionChange?.(null);
    }
  }

  /** Away-time of a node not connected, as of `atMs`: none accrues during a fleet disruption. */
  private awayMs(entry: NodeLiveness | undefined, atMs: number): number {
    const since = entry?.downSinceMs ?? this.awayFromMs;
    const until = this.disruptionNow === null ? atMs : Math.min(atMs, this.disruptionNow.sinceMs);
    return Math.max(0, until - since);
  }

  /**
   * After a stall of the hub, moves every node's last-seen and away-since forward by the time it
   * gives back: a stall of N seconds never makes a node silent or lost. Times set since the stall
   * ended (a frame read before this ran) stay at most `now`.
   */
  private catchUp(now: number): void {
    const stall = this.stall.tick(now);
    if (stall === null) return;
    const shift = (ms: number) => Math.min(now, ms + stall.creditMs);
    for (const entry of this.nodes.values()) {
      if (entry.lastSeenMs !== null) entry.lastSeenMs = shift(entry.lastSeenMs);
      if (entry.downSinceMs !== null) entry.downSinceMs = shift(entry.downSinceMs);
      if (entry.engineDownSinceMs !== null) entry.engineDownSinceMs = shift(entry.engineDownSinceMs);
    }
    this.awayFromMs += stall.creditMs;
    this.lastSweepMs = shift(this.lastSweepMs);
    if (this.disruptionNow !== null) this.disruptionNow.sinceMs = shift(this.disruptionNow.sinceMs);
    this.opts.onStall?.(stall.stallMs);
  }
}

function connectedState(entry: NodeLiveness): NodeState {
  return entry.engineDownSinceMs === null ? 'ready' : 'not_ready';
}
