import type { Clock } from '../shared/clock.js';

/** How long the pace of the hub is remembered: the longest gap in the last one to two windows. */
const PACE_WINDOW_MS = 10_000;

/**
 * Notices the hub's own pauses: a long GC, a suspended VM, SIGSTOP, a blocked event loop. The hub
 * calls the failure detector at least every sweep (a timer, every `sweepIntervalMsFor(grace)`); a
 * longer gap between two calls by the monotonic clock means the hub ran nothing in between: it
 * read no frame, so no node's silence in that time is evidence against the node.
 *
 * What is given back (the credit) is the part of the gap beyond the hub's usual pace, not the
 * whole gap: the pace is the longest gap of the last few seconds, at least the sweep interval and
 * at most the stall threshold. So a hub that stops (SIGSTOP, a suspended VM) gives the nodes back
 * all but one sweep interval, while a hub that is slow all the time (calls 1.1 s apart, on a
 * starved CPU or behind a heavy pass every second) gives back little: a frame waits at most one
 * gap to be read, so crediting every gap in full would add up, and a dead node would never be
 * found silent. Each stall costs the nodes at most the stall threshold.
 *
 * Rejected: treating a gap in which frames were read as no stall. After a stop the queued frames
 * are read right before the late sweep, so it would need a tick per frame, and a hub slow with no
 * traffic (or frames read in a burst just after each sweep) would still credit every gap.
 */
export class StallDetector {
  private lastTickMs: number;
  /** The longest gap seen in the current pace window and in the one before it. */
  private paceWindowStartMs: number;
  private longestGapMs = 0;
  private longestGapBeforeMs = 0;
  /** Stalls noticed, and their whole length (the credit given back is a little less). */
  count = 0;
  totalMs = 0;

  /**
   * `stallAfterMs`: a gap longer than this is a stall; Infinity turns detection off.
   * `expectedIntervalMs`: the usual gap between calls (the sweep interval), never given back.
   */
  constructor(
    clock: Clock,
    private readonly stallAfterMs: number,
    private readonly expectedIntervalMs: number,
  ) {
    this.lastTickMs = clock.nowMs();
    this.paceWindowStartMs = this.lastTickMs;
  }

  /**
   * Records that the hub runs at `nowMs`. Returns null, or the stall that ended just now: its
   * length and the time to give back to the nodes, in ms.
   */
  tick(nowMs: number): { stallMs: number; creditMs: number } | null {
    const gapMs = nowMs - this.lastTickMs;
    // An earlier time than the last tick (a caller's own "now" taken a moment ago) is no gap.
    if (gapMs <= 0) return null;
    this.lastTickMs = nowMs;
    const paceMs = Math.min(this.stallAfterMs, Math.max(this.expectedIntervalMs, this.longestGapMs, this.longestGapBeforeMs));
    this.recordGap(nowMs, gapMs);
    if (gapMs <= this.stallAfterMs) return null;
    this.count++;
    this.totalMs += gapMs;
    return { stallMs: gapMs, creditMs: gapMs - paceMs };
  }

  private recordGap(nowMs: number, gapMs: number): void {
    if (nowMs - this.paceWindowStartMs >= PACE_WINDOW_MS) {
      // A window older than one window says nothing about the pace now.
      this.longestGapBeforeMs = nowMs - this.paceWindowStartMs < 2 * PACE_WINDOW_MS ? this.longestGapMs : 0;
      this.longestGapMs = 0;
      this.paceWindowStartMs = nowMs;
    }
    this.longestGapMs = Math.max(this.longestGapMs, gapMs);
  }
}

/**
 * How often the hub sweeps (calls the failure detector on a timer): a quarter of the grace, so
 * that noticing a silent node takes little of it, at most 250 ms (plenty next to any failover
 * target) and at least 50 ms (a sweep is O(nodes)).
 */
export function sweepIntervalMsFor(heartbeatGraceMs: number): number {
  return Math.max(50, Math.min(250, Math.floor(heartbeatGraceMs / 4)));
}

/**
 * The gap that counts as a stall for a heartbeat grace: half the grace (a node that heartbeats on
 * time, at most every half grace as the hub's settings require, then looks silent only after a
 * longer pause), but at most a second (each stall costs the nodes at most that much), and at
 * least twice the sweep interval (a timer a little late is not a stall). For a grace of 200 ms
 * or more that is half the grace or a second; under 200 ms (tests only) the sweep interval's
 * 50 ms floor makes it 100 ms, more than half the grace.
 */
export function stallAfterMsFor(heartbeatGraceMs: number): number {
  return Math.max(2 * sweepIntervalMsFor(heartbeatGraceMs), Math.min(1000, heartbeatGraceMs / 2));
}
