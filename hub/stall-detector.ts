import type { Clock } from '../shared/clock.js';

/**
 * Notices the hub's own pauses: a long GC, a suspended VM, SIGSTOP, a blocked event loop. The hub
 * calls the failure detector at least every sweep (a timer, every 250 ms or less); a longer gap
 * between two calls by the monotonic clock means the hub ran nothing in between: it read no
 * frame, so no node's silence in that time is evidence against the node.
 */
export class StallDetector {
  private lastTickMs: number;
  count = 0;
  totalMs = 0;

  /** `stallAfterMs`: a gap longer than this is a stall; Infinity turns detection off. */
  constructor(
    clock: Clock,
    private readonly stallAfterMs: number,
  ) {
    this.lastTickMs = clock.nowMs();
  }

  /** Records that the hub runs at `nowMs`; returns the stall that ended just now, in ms, or 0. */
  tick(nowMs: number): number {
    const gapMs = nowMs - this.lastTickMs;
    // An earlier time than the last tick (a caller's own "now" taken a moment ago) is no gap.
    if (gapMs <= 0) return 0;
    this.lastTickMs = nowMs;
    if (gapMs <= this.stallAfterMs) return 0;
    this.count++;
    this.totalMs += gapMs;
    return gapMs;
  }
}

/**
 * The gap that counts as a stall for a heartbeat grace: at most half the grace (a shorter pause
 * cannot make a node that heartbeats on time look silent), at most a second (a pause counts
 * against lostAfter only that much), and so at least twice the sweep interval (a quarter of the
 * grace, at most 250 ms): a timer a little late is not a stall.
 */
export function stallAfterMsFor(heartbeatGraceMs: number): number {
  return Math.min(1000, heartbeatGraceMs / 2);
}
