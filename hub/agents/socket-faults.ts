import type { Duplex } from 'node:stream';
import { RateLimitedLog } from '../rate-limited-log.js';
import type { Logger } from '../../shared/logger.js';

/** Distinct error codes remembered; anything past it is counted under "other". */
const MAX_CODES = 32;

/**
 * Errors on sockets of clients the hub does not control (a TCP reset, a write to a closed peer).
 * They are expected and cost the hub nothing but the socket: each is counted and the socket
 * destroyed. Without a listener, Node turns such an error into an uncaught exception that exits
 * the hub, so every socket gets one the moment the hub receives it. Logged at debug, at most once
 * a second, so that a storm of resets cannot flood the log either.
 */
export class SocketFaults {
  /** Errors seen, by code (ECONNRESET, EPIPE, ...). */
  readonly byCode = new Map<string, number>();
  total = 0;
  /** At most one line a second, however many sockets fail. */
  private readonly log: RateLimitedLog;

  constructor(logger: Pick<Logger, 'debug'>, nowMs: () => number = () => performance.now()) {
    this.log = new RateLimitedLog((obj, msg) => logger.debug(obj, msg), { intervalMs: 1000, nowMs });
  }

  /**
   * One listener per place sockets are watched from, shared by all of its sockets (it finds its
   * socket as `this`): a closure per socket would cost every connection the hub holds. The
   * places are the callers' constant names, so the map stays as small as the code.
   */
  private readonly listeners = new Map<string, (this: Duplex, error: Error & { code?: string }) => void>();

  /** Gives `socket` its error listener; call before anything is written to it. */
  watch(socket: Duplex, where: string): void {
    let listener = this.listeners.get(where);
    if (!listener) {
      const faults = this;
      listener = function (this: Duplex, error: Error & { code?: string }) {
        faults.record(error, where);
        this.destroy();
      };
      this.listeners.set(where, listener);
    }
    socket.on('error', listener);
  }

  record(error: Error & { code?: string }, where: string): void {
    this.total++;
    const code = typeof error.code === 'string' ? error.code : 'other';
    const key = this.byCode.has(code) || this.byCode.size < MAX_CODES ? code : 'other';
    this.byCode.set(key, (this.byCode.get(key) ?? 0) + 1);
    this.log.log({ where, code, err: error.message }, 'client socket error');
  }
}
