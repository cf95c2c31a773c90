/**
 * Whether the container engine answers. Checked by a ping (its own short deadline) at start, at
 * once when any engine call fails for want of an engine (no connection, no answer in time), every
 * retryIntervalMs while it is away, and every checkIntervalMs while it answers: an engine that
 * hangs fails no call until one reaches its deadline (10 s for a listing, and only at the loop's
 * next pass), while a ping notices within its own 3 s: a hang is seen within 8 s. It is back at the first ping that answers.
 * Only watches:
 * the reconcile loop retries its own passes, and nothing is removed or restarted for an outage.
 */
import type { EngineProbe } from './runtime/container-runtime.js';
import type { Logger } from '../shared/logger.js';

/** Pings while the engine is away: its return is noticed within this long. */
export const ENGINE_RETRY_INTERVAL_MS = 2_000;
/** Pings while the engine answers: bounds how long a hung engine goes unnoticed. */
export const ENGINE_CHECK_INTERVAL_MS = 5_000;

export interface EngineAvailabilityOptions {
  probe: EngineProbe;
  /** Called on each change (and after the first check), with the error while the engine is away. */
  onChange: (available: boolean, error: string | null) => void;
  logger: Pick<Logger, 'info' | 'warn'>;
  retryIntervalMs?: number;
  checkIntervalMs?: number;
}

export class EngineAvailability {
  private available: boolean | null = null;
  private checking: Promise<void> | null = null;
  private retryTimer: NodeJS.Timeout | null = null;
  private unsubscribe: (() => void) | null = null;
  private stopped = false;
  private readonly retryIntervalMs: number;
  private readonly checkIntervalMs: number;

  constructor(private readonly opts: EngineAvailabilityOptions) {
    this.retryIntervalMs = opts.retryIntervalMs ?? ENGINE_RETRY_INTERVAL_MS;
    this.checkIntervalMs = opts.checkIntervalMs ?? ENGINE_CHECK_INTERVAL_MS;
  }

  /** Known once start() resolves; null before. */
  get isAvailable(): boolean | null {
    return this.available;
  }

  /** Watches the engine's calls and checks once; resolves when that first check is done. */
  async start(): Promise<void> {
    this.stopped = false;
    // While it is away, the retry timer already checks: more failures add nothing.
    this.unsubscribe = this.opts.probe.onUnreachable(() => {
      if (this.available !== false) void this.check();
    });
    await this.check();
  }

  stop(): void {
    this.stopped = true;
    this.unsubscribe?.();
    this.unsubscribe = null;
    if (this.retryTimer) clearTimeout(this.retryTimer);
    this.retryTimer = null;
  }

  /** One ping, unless one is in flight already (then that one's outcome). */
  check(): Promise<void> {
    // Claimed before the ping starts: a failure it reports at once finds this one in flight.
    this.checking ??= Promise.resolve()
      .then(() => this.ping())
      .finally(() => {
        this.checking = null;
      });
    return this.checking;
  }

  private async ping(): Promise<void> {
    if (this.retryTimer) clearTimeout(this.retryTimer);
    this.retryTimer = null;
    try {
      await this.opts.probe.ping();
      if (this.stopped) return;
      if (this.available === false) this.opts.logger.info({}, 'the container engine answers again');
      this.set(true, null);
      this.checkAgainIn(this.checkIntervalMs);
    } catch (err) {
      if (this.stopped) return;
      const error = err instanceof Error ? err.message : String(err);
      if (this.available !== false) {
        this.opts.logger.warn({ err: error, retryInMs: this.retryIntervalMs }, 'the container engine is unavailable; containers are left as they are; checking again');
      }
      this.set(false, error);
      this.checkAgainIn(this.retryIntervalMs);
    }
  }

  private checkAgainIn(delayMs: number): void {
    this.retryTimer = setTimeout(() => {
      this.retryTimer = null;
      void this.check();
    }, delayMs);
    this.retryTimer.unref();
  }

  private set(available: boolean, error: string | null): void {
    const changed = this.available !== available;
    this.available = available;
    // An engine still away is told only once: the tracker keeps the newest error either way.
    if (changed) this.opts.onChange(available, error);
  }
}
