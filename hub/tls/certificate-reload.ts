import type { Logger } from '../../shared/logger.js';
import type { HubTls } from './hub-certificates.js';

/** How often a running hub looks at its certificate: its own nears its end in days, an operator's file is replaced any time. */
export const CERTIFICATE_CHECK_INTERVAL_MS = 60 * 60 * 1000;

export type ReloadOutcome = 'unchanged' | 'reloaded' | 'refused' | 'failed';

export interface CertificateReloadOptions {
  /**
   * Reads the certificate and key to serve now: the hub's own (issued again when it nears its
   * end, see loadOrCreateHubTls) or the operator's files (`--tls-cert`, `--tls-key`), checked as at start.
   */
  load: () => Promise<HubTls>;
  /** Serves new connections with it (https.Server#setSecureContext); connections already open keep theirs. */
  apply: (tls: HubTls) => void;
  /** What the hub started with: agents pinned its CA. */
  current: HubTls;
  logger: Pick<Logger, 'info' | 'error'>;
  intervalMs?: number;
}

/**
 * Keeps a long-running hub's certificate fresh without a restart: the hub's own server
 * certificate is valid for a year and renewed 30 days before its end, and an operator renews
 * theirs by replacing the files. A certificate under another root CA is never served: every agent
 * pinned the one the hub started with, and would refuse the hub from then on.
 */
export class CertificateReload {
  private current: HubTls;
  private timer: NodeJS.Timeout | null = null;
  private checking: Promise<ReloadOutcome> | null = null;
  /** The last refusal or failure logged, so that a bad file is said once, not every hour. */
  private lastProblem: string | null = null;

  constructor(private readonly opts: CertificateReloadOptions) {
    this.current = opts.current;
  }

  start(): void {
    if (this.timer) return;
    this.timer = setInterval(() => void this.check(), this.opts.intervalMs ?? CERTIFICATE_CHECK_INTERVAL_MS);
    // A timer must not keep a hub that is closing alive.
    this.timer.unref();
  }

  stop(): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = null;
  }

  /** One look; concurrent calls share it. */
  check(): Promise<ReloadOutcome> {
    this.checking ??= this.checkOnce().finally(() => {
      this.checking = null;
    });
    return this.checking;
  }

  private async checkOnce(): Promise<ReloadOutcome> {
    let next: HubTls;
    try {
      next = await this.opts.load();
    } catch (error) {
      return this.problem('failed', `cannot reload the TLS certificate, serving the current one: ${(error as Error).message}`);
    }
    if (next.caFingerprint !== this.current.caFingerprint) {
      return this.problem(
        'refused',
        `the new TLS certificate is under another root CA (${next.caFingerprint}) than agents pinned (${this.current.caFingerprint}): serving the current one; restart the hub to change CA, and have every agent join again`,
      );
    }
    this.lastProblem = null;
    if (next.cert === this.current.cert && next.key === this.current.key) return 'unchanged';
    try {
      this.opts.apply(next);
    } catch (error) {
      return this.problem('failed', `cannot serve the new TLS certificate, serving the current one: ${(error as Error).message}`);
    }
    this.current = next;
    this.opts.logger.info({ caFingerprint: next.caFingerprint }, 'serving a new TLS certificate from now on');
    return 'reloaded';
  }

  private problem(outcome: 'refused' | 'failed', message: string): ReloadOutcome {
    if (message !== this.lastProblem) this.opts.logger.error({}, message);
    this.lastProblem = message;
    return outcome;
  }
}
