/**
 * Capped exponential backoff with full jitter: the delay is uniform in [0, min(cap, base * 2^n)].
 * Full jitter spreads a fleet that lost its hub at the same moment over the whole window, so
 * their reconnects do not arrive as one wave.
 */
export interface BackoffOptions {
  baseMs: number;
  capMs: number;
  random?: () => number;
}

export class Backoff {
  private attempt = 0;
  constructor(private readonly opts: BackoffOptions) {}

  nextDelayMs(): number {
    const ceiling = Math.min(this.opts.capMs, this.opts.baseMs * 2 ** Math.min(this.attempt, 30));
    this.attempt++;
    return Math.floor((this.opts.random ?? Math.random)() * ceiling);
  }

  reset(): void {
    this.attempt = 0;
  }

  get attempts(): number {
    return this.attempt;
  }
}
