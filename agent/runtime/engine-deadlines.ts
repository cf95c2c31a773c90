/**
 * How long the agent waits for its container engine. An engine that accepts a request and never
 * answers (a wedged dockerd, a full disk under its state directory) must cost one failed call,
 * never a stalled agent: every call has a deadline, and a call past it is abandoned.
 */

export interface EngineDeadlines {
  /** version, list, inspect, info: answers the engine gives from memory. */
  queryMs: number;
  /**
   * The availability check: the cheapest call there is, so a short deadline; it decides how soon
   * a hung engine is reported unavailable once a call has failed.
   */
  pingMs: number;
  /** Create sets up the container's filesystem layer: slower on an SD card. */
  createMs: number;
  /** Start sets up networking and runs the process: slower still on a small device. */
  startMs: number;
  /** Added to a stop's own timeout, which the engine waits out before it kills. */
  stopMarginMs: number;
  /** A forced remove kills, then deletes the container's filesystem. */
  removeMs: number;
  /**
   * A pull is abandoned after this long without a progress line from the engine, however long it
   * has run in all: a large image over a slow uplink keeps reporting, a hung registry does not.
   */
  pullStallMs: number;
  /** An event stream silent this long is checked with a ping; one that goes unanswered is reconnected. */
  eventsIdleMs: number;
  /**
   * The last lines of a container's output, for a crash loop's report: read within a pass, which
   * must not wait long for what only decorates a report (it goes without).
   */
  logsMs: number;
}

export const DEFAULT_ENGINE_DEADLINES: Readonly<EngineDeadlines> = {
  queryMs: 10_000,
  pingMs: 3_000,
  createMs: 30_000,
  startMs: 60_000,
  stopMarginMs: 15_000,
  removeMs: 60_000,
  pullStallMs: 60_000,
  eventsIdleMs: 60_000,
  logsMs: 3_000,
};

/** A call to the engine that got no answer within its deadline; the request was abandoned. */
export class EngineTimeoutError extends Error {
  readonly code = 'engine_timeout';
  /** Never an HTTP status: the engine did not answer at all. */
  readonly statusCode = null;

  constructor(
    /** The call, as it names itself in messages ("inspect container 0123456789ab"). */
    readonly operation: string,
    readonly deadlineMs: number,
    detail = `the engine did not answer within ${formatSeconds(deadlineMs)}`,
  ) {
    super(`${operation}: ${detail}`);
    this.name = 'EngineTimeoutError';
  }
}

function formatSeconds(ms: number): string {
  return `${Number((ms / 1000).toFixed(3))} s`;
}

export function isEngineTimeout(err: unknown): err is EngineTimeoutError {
  return err instanceof EngineTimeoutError;
}
