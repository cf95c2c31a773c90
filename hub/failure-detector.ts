import type { Clock } from '../shared/clock.js';
import { DEFAULT_DISRUPTION_SHARE, isFleetDisruption } from './fleet-disruption.js';
import { grownColumn, grownTimes, NodeSlots } from './node-slots.js';
import { StallDetector, stallAfterMsFor, sweepIntervalMsFor } from './stall-detector.js';

/**
 * `not_ready`: connected, but its container engine does not answer (its agent says so): no new
 * work goes there, and once that lasts lostAfter its replicas move as a lost node's do.
 */
export type NodeState = 'ready' | 'not_ready' | 'unreachable' | 'lost';

/** What the detector knows of one node, as `liveness()` reads it out (the detector keeps it in columns). */
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
  /** The node slots it shares with the hub's other per-node tables (its own when not given). */
  slots?: NodeSlots;
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
 * common). Soft state: a heartbeat costs one number write, never a store write. Each field of
 * NodeLiveness is a column indexed by the node's slot (see node-slots.ts).
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
  private readonly slots: NodeSlots;
  /** This table's bit in the shared slots. */
  private readonly bit: number;
  // One column per field of NodeLiveness, indexed by slot; NaN stands for null.
  private isConnected = new Uint8Array(0);
  private lastSeenMs = new Float64Array(0);
  private connectedSinceMs = new Float64Array(0);
  private downSinceMs = new Float64Array(0);
  private engineDownSinceMs = new Float64Array(0);
  private reconnects = new Int32Array(0);
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
    this.slots = opts.slots ?? new NodeSlots();
    this.bit = this.slots.register((capacity) => {
      this.isConnected = grownColumn(this.isConnected, capacity);
      this.reconnects = grownColumn(this.reconnects, capacity);
      this.lastSeenMs = grownTimes(this.lastSeenMs, capacity);
      this.connectedSinceMs = grownTimes(this.connectedSinceMs, capacity);
      this.downSinceMs = grownTimes(this.downSinceMs, capacity);
      this.engineDownSinceMs = grownTimes(this.engineDownSinceMs, capacity);
    });
  }

  /** A copy of what is known of the node (views), or undefined if nothing is. */
  liveness(nodeId: string): NodeLiveness | undefined {
    const slot = this.slotOf(nodeId);
    if (slot < 0) return undefined;
    return {
      connected: this.isConnected[slot] === 1,
      lastSeenMs: orNull(this.lastSeenMs[slot]!),
      connectedSinceMs: orNull(this.connectedSinceMs[slot]!),
      downSinceMs: orNull(this.downSinceMs[slot]!),
      reconnects: this.reconnects[slot]!,
      engineDownSinceMs: orNull(this.engineDownSinceMs[slot]!),
    };
  }

  /** The node's handle, as connected() gave it; -1 if nothing is known of the node. */
  handleOf(nodeId: string): number {
    return this.slotOf(nodeId);
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
    const slot = this.slotOf(nodeId);
    if (slot >= 0 && this.isConnected[slot] === 1) return null;
    return this.awayMs(slot, nowMs);
  }

  /**
   * How long the node has been unusable for its replicas: away (as downForMs), or connected with
   * its engine unavailable; null while ready. The scheduler's `downForMs`.
   */
  unusableForMs(nodeId: string, nowMs = this.opts.clock.nowMs()): number | null {
    this.catchUp(nowMs);
    const slot = this.slotOf(nodeId);
    if (slot < 0 || this.isConnected[slot] === 0) return this.awayMs(slot, nowMs);
    const engineDownSinceMs = this.engineDownSinceMs[slot]!;
    return Number.isNaN(engineDownSinceMs) ? null : Math.max(0, nowMs - engineDownSinceMs);
  }

  state(nodeId: string, nowMs = this.opts.clock.nowMs()): NodeState {
    const downForMs = this.downForMs(nodeId, nowMs);
    if (downForMs === null) return this.connectedState(this.slotOf(nodeId));
    return downForMs >= this.opts.lostAfterMs ? 'lost' : 'unreachable';
  }

  /**
   * `engineAvailable`: what the hello says of the engine (version 1 agents say nothing: available).
   * Returns the node's handle for `seen` and `engineReported`, which a connection keeps.
   */
  connected(nodeId: string, engineAvailable = true): number {
    const now = this.opts.clock.nowMs();
    this.catchUp(now);
    let slot = this.slotOf(nodeId);
    const before = slot >= 0 ? this.state(nodeId, now) : null;
    if (slot < 0) slot = this.take(nodeId);
    this.reconnects[slot]!++;
    this.lastSeenMs[slot] = now;
    this.connectedSinceMs[slot] = now;
    this.downSinceMs[slot] = Number.NaN;
    this.isConnected[slot] = 1;
    // An outage that went on while the node was away goes on from when it began.
    if (engineAvailable) this.engineDownSinceMs[slot] = Number.NaN;
    else if (Number.isNaN(this.engineDownSinceMs[slot]!)) this.engineDownSinceMs[slot] = now;
    const after = this.connectedState(slot);
    if (before !== after) this.opts.onStateChange(nodeId, after, before);
    return slot;
  }

  /** The connected node's agent says its engine answers (true) or not; a change is a state change. */
  engineReported(nodeId: string, handle: number, available: boolean): void {
    if (!this.owns(nodeId, handle) || this.isConnected[handle] === 0) return;
    if (available === Number.isNaN(this.engineDownSinceMs[handle]!)) return;
    const before = this.connectedState(handle);
    this.engineDownSinceMs[handle] = available ? Number.NaN : this.opts.clock.nowMs();
    this.opts.onStateChange(nodeId, this.connectedState(handle), before);
  }

  /**
   * Any frame counts as a sign of life; callers keep the handle from connected() to skip the
   * lookup. A handle the node no longer owns (it was forgotten meanwhile) changes nothing.
   */
  seen(nodeId: string, handle: number): void {
    if (this.owns(nodeId, handle)) this.lastSeenMs[handle] = this.opts.clock.nowMs();
  }

  /** The node was removed: nothing of it is kept, and its connection's close changes no state. */
  forget(nodeId: string): void {
    const slot = this.slotOf(nodeId);
    if (slot >= 0) this.slots.release(slot, this.bit);
  }

  disconnected(nodeId: string): void {
    const slot = this.slotOf(nodeId);
    if (slot < 0 || this.isConnected[slot] === 0) return;
    const now = this.opts.clock.nowMs();
    // After a stall, the closes queued meanwhile are often read before the next sweep.
    this.catchUp(now);
    const before = this.connectedState(slot);
    this.isConnected[slot] = 0;
    this.connectedSinceMs[slot] = Number.NaN;
    // Away since it was last heard from: a node that went silent was gone before we noticed. A
    // node whose engine was unavailable before has been unusable since then, and its lostAfter
    // runs on from there rather than starting over.
    const lastSeenMs = this.lastSeenMs[slot]!;
    const engineDownSinceMs = this.engineDownSinceMs[slot]!;
    this.downSinceMs[slot] = Math.min(Number.isNaN(lastSeenMs) ? now : lastSeenMs, Number.isNaN(engineDownSinceMs) ? Number.POSITIVE_INFINITY : engineDownSinceMs);
    // Unusable past lostAfter by the last sweep already (an outage as long): no sweep sees that
    // crossing, so it is announced here; one since the last sweep is the next sweep's to announce.
    const lostBySweep = this.awayMs(slot, this.lastSweepMs) >= this.opts.lostAfterMs;
    this.opts.onStateChange(nodeId, lostBySweep ? 'lost' : 'unreachable', before);
  }

  /**
   * A node that was lost before the hub (re)started, away for `awayMs` by then: lost from the
   * start, as it was. Without this it would count as merely away once the startup grace ends, and
   * long-dead nodes could hold the fleet in a disruption for good.
   */
  restoreLost(nodeId: string, awayMs: number): void {
    if (this.slotOf(nodeId) >= 0) return;
    const slot = this.take(nodeId);
    this.downSinceMs[slot] = this.opts.clock.nowMs() - Math.max(this.opts.lostAfterMs, awayMs);
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
      const slot = this.slotOf(nodeId);
      if (slot >= 0 && this.isConnected[slot] === 1) {
        counted++;
        const engineDownSinceMs = this.engineDownSinceMs[slot]!;
        if (!Number.isNaN(engineDownSinceMs)) {
          // An engine outage crosses the same thresholds as away-time (see unusableForMs).
          const downNow = now - engineDownSinceMs;
          const downBefore = previous - engineDownSinceMs;
          for (const t of thresholdsMs) if (downBefore < t && downNow >= t) crossedThreshold = true;
        }
        // NaN (never seen) compares false, as null did.
        if (this.lastSeenMs[slot]! < silentBefore) {
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
      if (slot < 0 && now < this.awayFromMs) continue;
      if (this.awayMs(slot, now) >= this.opts.lostAfterMs) continue;
      counted++;
      awayCounted++;
    }
    this.followDisruption(awayCounted, counted, previous, now);

    for (const nodeId of away) {
      const slot = this.slotOf(nodeId);
      const downNow = this.awayMs(slot, now);
      const downBefore = this.awayMs(slot, previous);
      for (const t of thresholdsMs) {
        if (downBefore < t && downNow >= t) {
          crossedThreshold = true;
          if (t === this.opts.lostAfterMs) this.opts.onStateChange(nodeId, 'lost', 'unreachable');
        }
      }
    }
    return { silent, crossedThreshold };
  }

  /** The node's slot if this table holds it, else -1. */
  private slotOf(nodeId: string): number {
    return this.slots.slotOf(nodeId, this.bit);
  }

  /** Whether `handle` is still the node's slot in this table. */
  private owns(nodeId: string, handle: number): boolean {
    return handle >= 0 && this.slots.idAt(handle) === nodeId && this.slots.holds(handle, this.bit);
  }

  /** A slot for a node this table knew nothing of: as a node never connected. */
  private take(nodeId: string): number {
    const slot = this.slots.hold(nodeId, this.bit);
    this.isConnected[slot] = 0;
    this.lastSeenMs[slot] = Number.NaN;
    this.connectedSinceMs[slot] = Number.NaN;
    this.downSinceMs[slot] = Number.NaN;
    this.engineDownSinceMs[slot] = Number.NaN;
    this.reconnects[slot] = -1;
    return slot;
  }

  private connectedState(slot: number): NodeState {
    return slot < 0 || Number.isNaN(this.engineDownSinceMs[slot]!) ? 'ready' : 'not_ready';
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
      for (let slot = 0; slot < this.slots.end; slot++) {
        if (!this.slots.holds(slot, this.bit) || this.isConnected[slot] === 1) continue;
        const downSinceMs = this.downSinceMs[slot]!;
        if (!Number.isNaN(downSinceMs)) this.downSinceMs[slot] = resume(downSinceMs);
      }
      this.awayFromMs = resume(this.awayFromMs);
      this.opts.onDisruptionChange?.(null);
    }
  }

  /** Away-time of a node not connected (slot -1: one never heard from), as of `atMs`: none accrues during a fleet disruption. */
  private awayMs(slot: number, atMs: number): number {
    const downSinceMs = slot < 0 ? Number.NaN : this.downSinceMs[slot]!;
    const since = Number.isNaN(downSinceMs) ? this.awayFromMs : downSinceMs;
    const until = this.disruptionNow === null ? atMs : Math.min(atMs, this.disruptionNow.sinceMs);
    return Math.max(0, until - since);
  }

  /**
   * After a stall of the hub, moves every node's last-seen and away-since forward by the time it
   * gives back: a stall of N seconds never makes a node silent or lost. Times set since the stall
   * ended (a frame read before this ran) stay at most `now`. (NaN, none, stays NaN.)
   */
  private catchUp(now: number): void {
    const stall = this.stall.tick(now);
    if (stall === null) return;
    const shift = (ms: number) => Math.min(now, ms + stall.creditMs);
    for (let slot = 0; slot < this.slots.end; slot++) {
      if (!this.slots.holds(slot, this.bit)) continue;
      this.lastSeenMs[slot] = shift(this.lastSeenMs[slot]!);
      this.downSinceMs[slot] = shift(this.downSinceMs[slot]!);
      this.engineDownSinceMs[slot] = shift(this.engineDownSinceMs[slot]!);
    }
    this.awayFromMs += stall.creditMs;
    this.lastSweepMs = shift(this.lastSweepMs);
    if (this.disruptionNow !== null) this.disruptionNow.sinceMs = shift(this.disruptionNow.sinceMs);
    this.opts.onStall?.(stall.stallMs);
  }
}

/** A column's value as the NodeLiveness field it stands for. */
function orNull(ms: number): number | null {
  return Number.isNaN(ms) ? null : ms;
}

