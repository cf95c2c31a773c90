export interface NodeLogBudgetOptions {
  /** Lines about one node written per window at most; the rest are counted, not written. */
  linesPerWindow: number;
  windowMs: number;
  /** A monotonic clock, in ms. */
  nowMs?: () => number;
}

interface NodeWindow {
  startMs: number;
  lines: number;
  /** Lines not written since the last one that was. */
  suppressed: number;
}

/**
 * A budget of log lines per node: a node flapping (its engine, its disks, its connection) gets a
 * few lines a window, however often it changes, so one device cannot flood the hub's log. A
 * budget rather than one line per interval: one change can take several lines at once (an engine
 * and two disks). One small entry per node that has logged in the last window: the next line after
 * a window has passed, or a timer a window after the last sweep (a fleet gone quiet writes no next
 * line), drops the entries of those that have nothing dropped to tell (an idle fleet holds none),
 * and a forgotten node's goes at once.
 *
 * Every node logs a line when it connects, so the entry of a node that wrote one line in its
 * window and had none dropped (nearly all of them) is only the window's start, a small integer: an
 * object per node would cost each of tens of thousands of connected nodes some 60 bytes more.
 */
/**
 * The largest of V8's small integers (31 bits on 64-bit builds, which compress pointers): a map
 * holds one in place, where any other number is an object of its own (16 bytes).
 */
const SMALL_INT_MAX = 2 ** 30 - 1;

export class NodeLogBudget {
  /**
   * A number: a window started then, with one line written and none dropped; whole ms since
   * `epochMs`, a small integer (a clock's own reading, fractional or large, would cost each node
   * a number object beside its entry).
   */
  private readonly byNode = new Map<string, number | NodeWindow>();
  private readonly nowMs: () => number;
  private epochMs: number;
  /** When take() next drops the entries that are as none (see sweep). */
  private sweepAtMs: number;
  /** Sweeps while any entry is held; one timer for all the nodes, not holding the process open. */
  private sweepTimer: NodeJS.Timeout | null = null;

  constructor(private readonly opts: NodeLogBudgetOptions) {
    if (!(opts.linesPerWindow >= 1) || !(opts.windowMs > 0)) throw new RangeError('a node log budget needs at least one line per positive window');
    this.nowMs = opts.nowMs ?? (() => performance.now());
    this.epochMs = Math.floor(this.nowMs());
    this.sweepAtMs = this.nowMs() + opts.windowMs;
  }

  /** Nodes with an entry. */
  get size(): number {
    return this.byNode.size;
  }

  /**
   * Drops the entries whose window has passed with no line dropped: take() treats them as none. At
   * most once a window, so that it costs a line O(1) on average.
   */
  private sweep(now: number): void {
    this.sweepAtMs = now + this.opts.windowMs;
    for (const [nodeId, w] of this.byNode) {
      const startMs = typeof w === 'number' ? this.epochMs + w : w.startMs;
      if (now - startMs >= this.opts.windowMs && (typeof w === 'number' || w.suppressed === 0)) this.byNode.delete(nodeId);
    }
  }

  private armSweep(): void {
    if (this.sweepTimer !== null || this.byNode.size === 0) return;
    this.sweepTimer = setTimeout(() => {
      this.sweepTimer = null;
      const now = this.nowMs();
      if (now >= this.sweepAtMs) this.sweep(now);
      this.armSweep();
    }, Math.max(1, this.sweepAtMs - this.nowMs()));
    this.sweepTimer.unref();
  }

  /** `now` as a window start of a number entry; the epoch moves up when it would be too far (once in some 12 days). */
  private sinceEpoch(now: number): number {
    if (Math.floor(now) - this.epochMs > SMALL_INT_MAX) this.moveEpoch(Math.floor(now));
    return Math.floor(now) - this.epochMs;
  }

  /** Restates every number entry from `epochMs`; an entry whose window has passed is as none, and goes. */
  private moveEpoch(epochMs: number): void {
    const shift = epochMs - this.epochMs;
    this.epochMs = epochMs;
    for (const [nodeId, w] of this.byNode) {
      if (typeof w !== 'number') continue;
      if (shift - w >= this.opts.windowMs) this.byNode.delete(nodeId);
      else this.byNode.set(nodeId, w - shift);
    }
  }

  /**
   * Takes a line from the node's budget: the count of its lines dropped before this one (to write
   * along with it), or null when the budget is spent (the line is counted as dropped).
   */
  take(nodeId: string): number | null {
    const now = this.nowMs();
    if (now >= this.sweepAtMs) this.sweep(now);
    let w = this.byNode.get(nodeId);
    if (typeof w === 'number') {
      const startMs = this.epochMs + w;
      if (now - startMs < this.opts.windowMs) this.byNode.set(nodeId, (w = { startMs, lines: 1, suppressed: 0 }));
      else w = undefined;
    }
    if (w !== undefined && now - w.startMs >= this.opts.windowMs) {
      if (w.suppressed === 0) w = undefined;
      else {
        w.startMs = now;
        w.lines = 0;
      }
    }
    if (w === undefined) {
      // A new window, nothing dropped in the one before.
      this.byNode.set(nodeId, this.sinceEpoch(now));
      this.armSweep();
      return 0;
    }
    if (w.lines >= this.opts.linesPerWindow) {
      w.suppressed++;
      return null;
    }
    w.lines++;
    const suppressed = w.suppressed;
    w.suppressed = 0;
    return suppressed;
  }

  forget(nodeId: string): void {
    this.byNode.delete(nodeId);
  }

  /** Stops the sweep's timer (its owner is closing); a later line starts it again. */
  close(): void {
    if (this.sweepTimer !== null) clearTimeout(this.sweepTimer);
    this.sweepTimer = null;
  }
}
