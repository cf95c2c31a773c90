/**
 * How the hub and the agent write their logs: JSON lines (pino's own) for a supervisor, a
 * journal or a log shipper to read, or readable lines for a person at a terminal.
 */
import type { DestinationStream } from 'pino';

export const LOG_FORMATS = ['json', 'pretty'] as const;
export type LogFormat = (typeof LOG_FORMATS)[number];

/** The environment variable that chooses the format when the flag does not. */
export const LOG_FORMAT_ENV = 'TETHER_LOG_FORMAT';

const isLogFormat = (text: string): text is LogFormat => (LOG_FORMATS as readonly string[]).includes(text);

/**
 * The `--log-format` flag, else TETHER_LOG_FORMAT, else readable lines on a terminal and JSON on
 * anything else (a pipe, a file, systemd's journal). Pure: the caller passes what it sees.
 */
export function chooseLogFormat(flag: string | undefined, env: string | undefined, stdoutIsTty: boolean): { ok: true; format: LogFormat } | { ok: false; error: string } {
  if (flag !== undefined) return isLogFormat(flag) ? { ok: true, format: flag } : { ok: false, error: `unknown --log-format "${flag}" (one of ${LOG_FORMATS.join(', ')})` };
  if (env !== undefined && env !== '') {
    return isLogFormat(env) ? { ok: true, format: env } : { ok: false, error: `unknown ${LOG_FORMAT_ENV}="${env}" (one of ${LOG_FORMATS.join(', ')})` };
  }
  return { ok: true, format: stdoutIsTty ? 'pretty' : 'json' };
}

/**
 * Where pino writes in a format: undefined for JSON (pino's own stdout), else pino-pretty as a
 * synchronous stream on stdout. A stream, not a worker transport: the hub and the agent are
 * bundled into single files, and a transport loads its module by name in a worker thread.
 * Synchronous, so that the last lines before a process.exit are written. Loaded only when asked
 * for: an agent under systemd logs JSON and never holds pino-pretty's code.
 */
export async function logDestination(
  format: LogFormat,
  { colorize, destination = 1 }: { colorize: boolean; /** stdout's descriptor, or a stream (tests). */ destination?: number | NodeJS.WritableStream },
): Promise<DestinationStream | undefined> {
  if (format === 'json') return undefined;
  const { default: pretty } = await import('pino-pretty');
  // One line a record (fields after the message), with the time of day and the program's name.
  return pretty({ sync: true, colorize, destination, singleLine: true, translateTime: 'SYS:HH:MM:ss.l', ignore: 'pid,hostname' });
}
