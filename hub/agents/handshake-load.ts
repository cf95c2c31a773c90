/** The admission rate assumed when fewer handshakes were admitted: a hub takes at least this many a second. */
const MIN_ADMITTED_PER_S = 100;
/** The longest wait a refused agent is told. */
const MAX_RETRY_AFTER_S = 30;
const WINDOW_MS = 1000;

/**
 * Handshakes refused and admitted in the current and the last second, to tell a refused agent
 * how long to wait (Retry-After): about the time the agents turned away in the last second need
 * to get in at the rate handshakes were admitted, so that retries arrive spread at roughly the
 * rate the hub takes them instead of hammering it every second. One for the hub's pool, one per
 * address holding handshakes: each queue is sized by its own refusals.
 */
export class HandshakeLoad {
  private startMs = -Infinity;
  private refused = 0;
  private admitted = 0;
  private lastRefused = 0;
  private lastAdmitted = 0;

  count(what: 'refused' | 'admitted', nowMs: number): void {
    this.roll(nowMs);
    if (what === 'refused') this.refused++;
    else this.admitted++;
  }

  /** Seconds a refused agent should wait, 1 to 30. */
  retryAfterS(nowMs: number): number {
    this.roll(nowMs);
    const refused = Math.max(this.refused, this.lastRefused);
    const admittedPerS = Math.max(MIN_ADMITTED_PER_S, this.lastAdmitted, this.admitted);
    return Math.min(MAX_RETRY_AFTER_S, Math.max(1, Math.ceil(refused / admittedPerS)));
  }

  private roll(nowMs: number): void {
    if (nowMs - this.startMs < WINDOW_MS) return;
    // A window more than a second old says nothing about now.
    const fresh = nowMs - this.startMs < 2 * WINDOW_MS;
    this.lastRefused = fresh ? this.refused : 0;
    this.lastAdmitted = fresh ? this.admitted : 0;
    this.startMs = nowMs;
    this.refused = 0;
    this.admitted = 0;
  }
}
