/**
 * What a failed engine call means: the engine's own words, its HTTP status, and whether the engine
 * is there at all. dockerode rejects with docker-modem's error, which this reads.
 */
import { EngineTimeoutError } from '../engine-deadlines.js';

/** An engine refusal with its HTTP status, so callers can tell "missing" from "broken". */
export class DockerEngineError extends Error {
  constructor(
    message: string,
    readonly statusCode: number | null,
    options?: { cause?: unknown },
  ) {
    super(message, options);
    this.name = 'DockerEngineError';
  }
}

/** What docker-modem rejects with when the engine answers a status the call does not accept. */
interface ModemError {
  statusCode?: number;
  json?: unknown;
  message?: string;
}

export function statusCodeOf(err: unknown): number | null {
  const code = (err as ModemError | null)?.statusCode;
  return typeof code === 'number' ? code : null;
}

export function isNotFound(err: unknown): boolean {
  return statusCodeOf(err) === 404;
}

/**
 * The engine's own words for a failure. docker-modem puts them in `json.message` for plain calls,
 * but for streaming calls (pull, events) only into its message, behind "(HTTP code 404) unexpected - ".
 */
export function engineMessage(err: unknown): string {
  const e = err as ModemError | null;
  const json = e?.json;
  if (json && typeof json === 'object' && typeof (json as { message?: unknown }).message === 'string') {
    return (json as { message: string }).message.trim();
  }
  if (typeof json === 'string' && json.trim() !== '') return json.trim();
  const text = typeof e?.message === 'string' ? e.message : String(err);
  return text.replace(/^\(HTTP code \d+\) [^-]*- /, '').trim();
}

/** Socket errors that mean no engine is there to answer (stopped, socket missing or refused). */
const UNREACHABLE_CODES: ReadonlySet<string> = new Set(['ENOENT', 'ECONNREFUSED', 'ECONNRESET', 'EPIPE', 'EACCES', 'ETIMEDOUT', 'ENOTCONN']);

/**
 * Whether a failed call says the engine itself is away: no connection, or no answer in time. An
 * HTTP answer, even a 500, came from an engine that is there.
 */
export function isEngineUnreachable(err: unknown): boolean {
  if (err instanceof EngineTimeoutError) return true;
  if (statusCodeOf(err) !== null) return false;
  const code = (err as { code?: unknown } | null)?.code;
  return typeof code === 'string' && UNREACHABLE_CODES.has(code);
}

/** A failed call as the runtime reports it: `what` and the engine's words, or the timeout as it is. */
export function engineError(what: string, err: unknown): DockerEngineError | EngineTimeoutError {
  if (err instanceof EngineTimeoutError) return err; // names its call already
  return new DockerEngineError(`${what}: ${engineMessage(err)}`, statusCodeOf(err), { cause: err });
}
