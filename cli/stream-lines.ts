import { StringDecoder } from 'node:string_decoder';
import { Aborted } from './client.js';
import { CliError } from './cli-error.js';

/** A log line or an event is far below this; a line without end is not read into memory. */
export const MAX_LINE_BYTES = 1024 * 1024;

/**
 * The lines of a streamed answer (NDJSON, SSE), without their `\n` or `\r\n`. A stream cut by
 * the signal ends with Aborted; one cut by the network with a CliError.
 */
export async function* streamLines(stream: AsyncIterable<Buffer | string>, what: string, signal?: AbortSignal): AsyncGenerator<string> {
  const decoder = new StringDecoder('utf8');
  let pending = '';
  try {
    for await (const chunk of stream) {
      pending += typeof chunk === 'string' ? chunk : decoder.write(chunk);
      let newline = pending.indexOf('\n');
      while (newline !== -1) {
        yield pending.slice(0, newline).replace(/\r$/, '');
        pending = pending.slice(newline + 1);
        newline = pending.indexOf('\n');
      }
      if (pending.length > MAX_LINE_BYTES) throw new CliError(`${what}: a line longer than ${MAX_LINE_BYTES} bytes; stopped reading`);
    }
  } catch (error) {
    if (signal?.aborted) throw new Aborted();
    if (error instanceof CliError) throw error;
    throw new CliError(`${what} broke off: ${(error as Error).message}`);
  }
  pending += decoder.end();
  if (pending !== '') yield pending;
}
