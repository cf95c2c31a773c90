/**
 * Writing a followed stream's lines at the pace stdout takes them. Where stdout is an asynchronous
 * pipe (macOS, Windows: `tether logs -f web | less`), a write that returns false has queued the
 * text in memory; reading on from the hub meanwhile would grow that queue for as long as the
 * reader at the far end is away. Waiting for 'drain' stops reading from the hub instead, and the
 * hub's credit holds the rest back at the agent.
 */
import type { CliIo } from './io.js';

interface DrainableOutput {
  write(text: string): unknown;
  once?(event: string, listener: () => void): unknown;
  off?(event: string, listener: () => void): unknown;
}

/** Writes `text`; when the stream asks to wait, resolves at its 'drain' (or its end, or the signal's abort). */
export async function writePaced(out: CliIo['stdout'], text: string, signal?: AbortSignal): Promise<void> {
  const stream = out as DrainableOutput;
  if (stream.write(text) !== false || typeof stream.once !== 'function' || signal?.aborted) return;
  await new Promise<void>((resolve) => {
    const done = (): void => {
      for (const event of ['drain', 'close', 'error']) stream.off?.(event, done);
      signal?.removeEventListener('abort', done);
      resolve();
    };
    for (const event of ['drain', 'close', 'error']) stream.once!(event, done);
    signal?.addEventListener('abort', done, { once: true });
  });
}
