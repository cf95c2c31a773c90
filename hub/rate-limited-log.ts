/** A logger method: pino's and the hub's loggers all have this shape. */
export type LogLine = (obj: object, msg: string) => void;

export interface RateLimitedLogOptions {
  /** At most one line per this interval; 1000 by default. */
  intervalMs?: number;
  /** A monotonic clock, in ms. */
  nowMs?: () => number;
}

/**
 * A log line that can come in floods (refused credentials, socket resets, refused reports): the
 * first is written, then at most one per interval, each carrying `suppressed`, the count of lines
 * dropped since the one before it. A flood costs a counter, never the log.
 */
export class RateLimitedLog {
  /** Lines dropped since the last one written. */
  suppressed = 0;
  private lastLineMs = -Infinity;
  private readonly intervalMs: number;
  private readonly nowMs: () => number;

  constructor(
    private readonly write: LogLine,
    opts: RateLimitedLogOptions = {},
  ) {
    this.intervalMs = opts.intervalMs ?? 1000;
    if (!(this.intervalMs > 0)) throw new RangeError(`intervalMs must be a positive number, got ${this.intervalMs}`);
    this.nowMs = opts.nowMs ?? (() => performance.now());
  }

  /** Writes `{ ...obj, suppressed }` if a line is due, otherwise counts it as suppressed. */
  log(obj: object, msg: string): void {
    const now = this.nowMs();
    if (now - this.lastLineMs < this.intervalMs) {
      this.suppressed++;
      return;
    }
    this.lastLineMs = now;
    const suppressed = this.suppressed;
    this.suppressed = 0;
    this.write({ ...obj, suppressed }, msg);
  }
}
