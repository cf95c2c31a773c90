/**
 * Facts travel only in a hello (the runtime version, learnt when the engine first answers, may
 * come after it): when what the hub was told is stale, the link says hello again on a new
 * connection. Rate-limited: an engine that flaps must not have the node reconnect at each return;
 * a renewal held back goes when the interval is up, if the hub still has stale facts by then.
 */

/** At most one renewal per this long. */
export const HELLO_RENEW_MIN_INTERVAL_MS = 60_000;

export interface HelloRenewalOptions {
  /** Whether the hub was told facts other than the current ones (false with no hello on the wire). */
  isStale: () => boolean;
  /** Says hello again; false when there was no connection to renew. */
  renew: () => boolean;
  minIntervalMs?: number;
  nowMs?: () => number;
}

export class HelloRenewal {
  private lastAtMs = Number.NEGATIVE_INFINITY;
  private timer: NodeJS.Timeout | null = null;
  private stopped = false;
  private readonly minIntervalMs: number;
  private readonly nowMs: () => number;

  constructor(private readonly opts: HelloRenewalOptions) {
    this.minIntervalMs = opts.minIntervalMs ?? HELLO_RENEW_MIN_INTERVAL_MS;
    this.nowMs = opts.nowMs ?? (() => performance.now());
  }

  /** The facts may have changed: renews now, or when the interval allows. */
  request(): void {
    if (this.stopped || this.timer !== null || !this.opts.isStale()) return;
    const waitMs = this.lastAtMs + this.minIntervalMs - this.nowMs();
    if (waitMs > 0) {
      this.timer = setTimeout(() => {
        this.timer = null;
        this.request();
      }, waitMs);
      this.timer.unref();
      return;
    }
    if (this.opts.renew()) this.lastAtMs = this.nowMs();
  }

  stop(): void {
    this.stopped = true;
    if (this.timer !== null) clearTimeout(this.timer);
    this.timer = null;
  }
}
