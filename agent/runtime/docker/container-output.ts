/** The last lines of a container's output, for a crash loop's report (DockerLogTail reads the engine's frames). */
import type { IncomingMessage } from 'node:http';
import { DockerLogTail } from './log-frames.js';
import { EngineTimeoutError } from '../engine-deadlines.js';
import { OK, type EngineClient } from './engine-client.js';
import { engineError } from './engine-errors.js';

export async function containerOutputTail(engine: EngineClient, id: string, lines: number, maxBytes: number): Promise<string | null> {
  const what = `logs of container ${id.slice(0, 12)}`;
  const deadlineMs = engine.deadlines.logsMs;
  let stream: IncomingMessage;
  try {
    // Through the modem, as a stream: dockerode reads an answer that is not followed whole into
    // memory, and a container's last lines may be one huge line. DockerLogTail keeps only the end.
    stream = await engine.call(what, deadlineMs, (abortSignal) =>
      engine.dial<IncomingMessage>(
        { path: `/containers/${id}/logs?`, method: 'GET', options: { stdout: true, stderr: true, tail: String(lines) }, isStream: true, statusCodes: OK },
        abortSignal,
      ),
    );
  } catch (err) {
    throw engineError(what, err);
  }
  const reader = new DockerLogTail();
  return new Promise<string | null>((resolve, reject) => {
    // The engine sends the last lines and ends; one that does not within the deadline is cut off.
    const timer = setTimeout(() => stream.destroy(new EngineTimeoutError(what, deadlineMs)), deadlineMs);
    stream.on('data', (chunk: Buffer) => reader.push(chunk));
    stream.on('error', (err) => {
      clearTimeout(timer);
      reject(engineError(what, err));
    });
    stream.on('end', () => {
      clearTimeout(timer);
      resolve(reader.tail(lines, maxBytes));
    });
    // Closed without an end: what came is all there is (a settled promise ignores the rest).
    stream.on('close', () => {
      clearTimeout(timer);
      resolve(reader.tail(lines, maxBytes));
    });
  });
}
