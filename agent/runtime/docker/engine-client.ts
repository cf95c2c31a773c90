/**
 * The connection to the Docker engine: dockerode over the API socket, every call bounded by a
 * deadline (engine-deadlines.ts) and abandoned past it, and failures that say the engine is away
 * told to whoever watches. Each concern of the runtime (listing, lifecycle, images, pulls, events,
 * logs) makes its calls through here.
 */
import type { IncomingMessage } from 'node:http';
import { performance } from 'node:perf_hooks';
import Dockerode from 'dockerode';
import type { Logger } from '../../../shared/logger.js';
import { DEFAULT_ENGINE_DEADLINES, EngineTimeoutError, type EngineDeadlines } from '../engine-deadlines.js';
import { isEngineUnreachable } from './engine-errors.js';

/** What dockerode needs of a connection (docker-modem's dial): tests give a fake one to play an engine exactly. */
export type EngineModem = Pick<Dockerode['modem'], 'dial'>;
/** The options of one raw call, as docker-modem's dial takes them. */
export type DialOptions = Parameters<EngineModem['dial']>[0];

export interface EngineClientOptions {
  socketPath?: string;
  modem?: EngineModem;
  deadlines?: Partial<EngineDeadlines>;
  logger?: Pick<Logger, 'warn'>;
  monotonicNowMs?: () => number;
}

/**
 * dockerode calls that take an abortSignal in the library (5.0.1) but not in its typings (4.0.2),
 * typed as the library takes them.
 */
export interface SignalledCalls {
  version(opts: { abortSignal: AbortSignal }): Promise<{ Version?: string }>;
  info(opts: { abortSignal: AbortSignal }): Promise<{ DockerRootDir?: unknown }>;
  ping(opts: { abortSignal: AbortSignal }): Promise<unknown>;
  getEvents(opts: { filters: Record<string, string[]>; abortSignal: AbortSignal }): Promise<IncomingMessage>;
  /** Answers with the progress stream; auth goes into the X-Registry-Auth header. */
  pull(image: string, opts: { abortSignal: AbortSignal }, callback: undefined, auth?: { username: string; password: string; serveraddress: string }): Promise<IncomingMessage>;
}

/** Statuses a raw call accepts (see dial); any other rejects with docker-modem's error. */
export const OK = { 200: true } as const;

export class EngineClient {
  readonly docker: Dockerode;
  /** The same dockerode, for the calls SignalledCalls types. */
  readonly signalled: SignalledCalls;
  readonly deadlines: Readonly<EngineDeadlines>;
  readonly logger: Pick<Logger, 'warn'> | undefined;
  /** Monotonic: a device without a real-time clock jumps years when it first syncs. */
  readonly nowMs: () => number;
  private readonly unreachableListeners = new Set<(error: Error) => void>();

  constructor(opts: EngineClientOptions = {}) {
    // dockerode takes a ready connection as `modem` (its typings do not say so).
    const dockerOptions = opts.modem ? ({ modem: opts.modem } as Dockerode.DockerOptions) : { socketPath: opts.socketPath ?? '/var/run/docker.sock' };
    this.docker = new Dockerode(dockerOptions);
    this.signalled = this.docker as unknown as SignalledCalls;
    this.deadlines = { ...DEFAULT_ENGINE_DEADLINES, ...opts.deadlines };
    this.logger = opts.logger;
    this.nowMs = opts.monotonicNowMs ?? (() => performance.now());
  }

  /**
   * One engine call: `run` makes it through dockerode with the abortSignal it is given. Past
   * deadlineMs (null: none) the request is destroyed and the call rejects with an
   * EngineTimeoutError naming `what`; the caller's signal, if any, also settles it at once,
   * whatever the connection does. For a stream the deadline covers the answer's start, and the
   * caller's signal stays linked for the stream's whole life (its abort ends the stream too).
   */
  call<T>(what: string, deadlineMs: number | null, run: (abortSignal: AbortSignal) => Promise<T>, callerSignal?: AbortSignal): Promise<T> {
    return new Promise<T>((resolve, reject) => {
      const controller = new AbortController();
      let settled = false;
      let timer: NodeJS.Timeout | null = null;
      const settle = (err: unknown, result?: T, byCaller = false): void => {
        if (settled) return;
        settled = true;
        if (timer !== null) clearTimeout(timer);
        if (err) reject(err);
        else resolve(result as T);
        // Every call passes here: a failure that says the engine is away is told to those watching
        // (a caller's own abort is no news about the engine).
        if (err && !byCaller && isEngineUnreachable(err)) this.reportUnreachable(err as Error);
      };
      // Destroys the request (and its socket): an abandoned call holds nothing open.
      const abandon = (reason: unknown, byCaller = false): void => {
        if (!controller.signal.aborted) controller.abort(reason);
        settle(reason, undefined, byCaller);
      };
      if (deadlineMs !== null) timer = setTimeout(() => abandon(new EngineTimeoutError(what, deadlineMs)), deadlineMs);
      const onCallerAbort = (): void => abandon(callerSignal?.reason ?? new Error(`${what} aborted`), true);
      if (callerSignal?.aborted) return onCallerAbort();
      callerSignal?.addEventListener('abort', onCallerAbort, { once: true });
      let running: Promise<T>;
      try {
        running = run(controller.signal);
      } catch (err) {
        return settle(err);
      }
      running.then(
        (result) => settle(null, result),
        (err: unknown) => settle(err ?? new Error(`${what} failed`)),
      );
    });
  }

  /**
   * A call straight through dockerode's own modem, for the few that dockerode makes in a way that
   * does not fit (each caller says why). Same options as docker-modem's dial.
   */
  dial<T>(options: DialOptions, abortSignal: AbortSignal): Promise<T> {
    const modem = this.docker.modem as EngineModem;
    return new Promise<T>((resolve, reject) => {
      modem.dial({ ...options, abortSignal }, (err, result) => (err ? reject(err) : resolve(result as T)));
    });
  }

  /** Calls `listener` whenever a call fails in a way that says the engine itself may be away. */
  onUnreachable(listener: (error: Error) => void): () => void {
    this.unreachableListeners.add(listener);
    return () => this.unreachableListeners.delete(listener);
  }

  reportUnreachable(error: Error): void {
    for (const listener of this.unreachableListeners) {
      try {
        listener(error);
      } catch (err) {
        this.logger?.warn({ err }, 'engine availability listener threw');
      }
    }
  }
}
