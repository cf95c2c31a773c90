import { Backoff } from '../shared/backoff.js';

/** How the last connection attempt ended, as far as the next delay cares. */
export type AttemptOutcome =
  /** Nothing listens (ECONNREFUSED): costs the hub nothing, so it may be tried again soon. */
  | { kind: 'refused' }
  /** A busy hub answered 503 with Retry-After (seconds): come back then, not sooner. */
  | { kind: 'retryAfter'; seconds: number }
  /** Anything else (timeout, reset, refused upgrade): the hub may be struggling, back off. */
  | { kind: 'failed' };

export interface ReconnectScheduleOptions {
  /** The exponential backoff (full jitter) used outside the fast phase. */
  baseMs: number;
  capMs: number;
  /** Mean delay between attempts in the fast phase, jittered to 0.5-1.5x (and at most capMs). */
  fastIntervalMs?: number;
  /** How long after losing a working connection the fast phase lasts. */
  fastWindowMs?: number;
  random?: () => number;
  nowMs?: () => number;
}

/** About the time a hub takes to restart on a big data dir, with room to spare. */
export const FAST_RECONNECT_WINDOW_MS = 20_000;
/** 10,000 agents at this pace knock 10,000 times a second on a closed port: cheap, and they are in within about a second of the listen. */
export const FAST_RECONNECT_INTERVAL_MS = 1_000;
/** A Retry-After beyond this is capped: a hub that says an hour is likely wrong. */
const RETRY_AFTER_CAP_S = 300;

/**
 * When the agent tries the hub again. As nats.js's reconnecting client does: a link that worked
 * and was lost most likely means a hub restarting, which refuses connections until it listens and
 * then takes them all; a refused connection costs it nothing, so for a bounded while after the
 * loss the agent knocks at a short jittered interval (without it, the exponential backoff leaves
 * most of a fleet waiting 10-20 s after the hub is back). Anything other than a refusal ends the
 * fast phase: the hub answers and may be overloaded, so the exponential backoff takes over, as it
 * does after the window. A busy hub's Retry-After is honoured either way, jittered so that the
 * agents it turned away do not come back in one wave. Behind a proxy a restarting hub shows as a
 * reset or a 502 rather than a refusal: the fast phase then ends at once and the backoff applies.
 */
export class ReconnectSchedule {
  private readonly backoff: Backoff;
  /** Until when refused attempts are retried at the fast pace; null outside the fast phase. */
  private fastUntilMs: number | null = null;
  private readonly random: () => number;
  private readonly nowMs: () => number;

  constructor(private readonly opts: ReconnectScheduleOptions) {
    this.random = opts.random ?? Math.random;
    this.nowMs = opts.nowMs ?? (() => performance.now());
    this.backoff = new Backoff({ baseMs: opts.baseMs, capMs: opts.capMs, random: this.random });
  }

  /** The hub welcomed us: the next loss starts from scratch. */
  connected(): void {
    this.backoff.reset();
    this.fastUntilMs = null;
  }

  /** A connection that had worked (welcomed) is lost: the fast phase starts. */
  lost(): void {
    this.backoff.reset();
    this.fastUntilMs = this.nowMs() + (this.opts.fastWindowMs ?? FAST_RECONNECT_WINDOW_MS);
  }

  /** Whether refused attempts are being retried at the fast pace now. */
  get fast(): boolean {
    return this.fastUntilMs !== null && this.nowMs() < this.fastUntilMs;
  }

  /** The delay before the next attempt, after the connection was lost (nothing tried yet) or an attempt ended so. */
  nextDelayMs(outcome: AttemptOutcome | null): number {
    if (outcome?.kind === 'retryAfter') {
      // A wait, not a failure: the backoff stays where it was.
      return Math.round(Math.min(outcome.seconds, RETRY_AFTER_CAP_S) * 1000 * (0.5 + this.random()));
    }
    if (outcome?.kind === 'failed') this.fastUntilMs = null;
    // Never slower than the backoff's own cap: the hub's startup grace is sized by it.
    if (this.fast) return Math.round(Math.min(this.opts.fastIntervalMs ?? FAST_RECONNECT_INTERVAL_MS, (2 * this.opts.capMs) / 3) * (0.5 + this.random()));
    this.fastUntilMs = null;
    return this.backoff.nextDelayMs();
  }
}
