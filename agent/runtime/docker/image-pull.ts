/**
 * Pulling an image: with the spec's credentials or the agent's own for the image's registry, given
 * up after pullStallMs without a word from the engine (never after a fixed total: a large image
 * over a slow uplink keeps reporting), its progress lines fed to a PullProgressTally.
 */
import type { Readable } from 'node:stream';
import type { RegistryAuth } from '../../../shared/container-spec.js';
import { EngineTimeoutError } from '../engine-deadlines.js';
import type { PullProgressTally } from '../pull-progress.js';
import type { EngineClient } from './engine-client.js';
import { DockerEngineError, engineMessage, statusCodeOf } from './engine-errors.js';
import { registryHostOf, serverAddressFor } from './image-refs.js';
import { JsonLineReader } from './json-lines.js';

/** The agent's own credentials, keyed by registry host[:port] as in an image reference. */
export type AgentRegistryAuth = ReadonlyMap<string, { username: string; password: string }>;

export async function pullImage(
  engine: EngineClient,
  agentAuth: AgentRegistryAuth,
  image: string,
  auth: RegistryAuth | null,
  signal?: AbortSignal,
  progress?: PullProgressTally,
): Promise<void> {
  const what = `pull ${image}`;
  if (signal?.aborted) throw new Error(`${what} aborted`);
  // One controller for the caller's signal and the stall deadline: aborting it destroys the
  // request and the progress stream alike.
  const controller = new AbortController();
  const onCallerAbort = (): void => controller.abort(new Error(`${what} aborted`));
  signal?.addEventListener('abort', onCallerAbort, { once: true });
  const stallMs = engine.deadlines.pullStallMs;
  let stallTimer: NodeJS.Timeout | null = null;
  const progressed = (): void => {
    if (stallTimer !== null) clearTimeout(stallTimer);
    stallTimer = setTimeout(
      () => controller.abort(new EngineTimeoutError(what, stallMs, `no progress from the engine for ${stallMs / 1000} s`)),
      stallMs,
    );
  };
  const abortReason = (): Error => (controller.signal.reason instanceof Error ? controller.signal.reason : new Error(`${what} aborted`));
  try {
    progressed(); // the answer's start counts as the first progress
    // The spec's credentials win; without them, the agent's own for the image's registry. Sent
    // in the X-Registry-Auth header.
    const credentials = auth ?? agentAuth.get(registryHostOf(image)) ?? null;
    const authconfig = credentials
      ? { username: credentials.username, password: credentials.password, serveraddress: auth?.serveraddress ?? serverAddressFor(image) }
      : undefined;
    let stream: Readable;
    try {
      // dockerode splits the reference into fromImage and tag (a last colon followed by a slash is a registry port).
      stream = await engine.call(
        what,
        null,
        (abortSignal) => engine.signalled.pull(image, { abortSignal }, undefined, authconfig),
        controller.signal,
      );
    } catch (err) {
      if (controller.signal.aborted) throw abortReason();
      throw new DockerEngineError(`${what} failed: ${engineMessage(err)}`, statusCodeOf(err), { cause: err });
    }
    progressed();
    await followPull(engine, what, stream, controller.signal, abortReason, progressed, progress);
  } finally {
    if (stallTimer !== null) clearTimeout(stallTimer);
    signal?.removeEventListener('abort', onCallerAbort);
  }
}

/**
 * Reads the pull's progress to its end. The engine answers 200 as soon as the pull starts, so a
 * registry failure after that (unknown layer, auth refused mid-way) arrives only as an `error`
 * line. Our own reader instead of modem.followProgress: that one throws from inside the data
 * handler on a bad line and reports success when the connection closes early.
 */
function followPull(
  engine: EngineClient,
  what: string,
  stream: Readable,
  signal: AbortSignal,
  abortReason: () => Error,
  onProgress: () => void,
  progress: PullProgressTally | undefined,
): Promise<void> {
  return new Promise<void>((resolve, reject) => {
    const reader = new JsonLineReader();
    let failure: string | null = null;
    let settled = false;
    const finish = (err: Error | null): void => {
      if (settled) return;
      settled = true;
      signal.removeEventListener('abort', onAbort);
      stream.destroy();
      if (err) reject(err);
      else resolve();
    };
    const onAbort = (): void => finish(abortReason());
    signal.addEventListener('abort', onAbort, { once: true });
    stream.setEncoding('utf8');
    stream.on('data', (chunk: string) => {
      onProgress();
      reader.push(
        chunk,
        (value) => {
          progress?.add(value);
          const v = value as { error?: unknown; errorDetail?: { message?: unknown } };
          if (failure === null && (v.error !== undefined || v.errorDetail !== undefined)) {
            failure = String(v.errorDetail?.message ?? v.error);
          }
        },
        (line) => engine.logger?.warn({ operation: what, line: line.slice(0, 200) }, 'unparseable pull progress line'),
      );
    });
    const failed = (reason: string): Error => new Error(`${what} failed: ${reason}`);
    stream.on('end', () => finish(failure !== null ? failed(failure) : null));
    stream.on('error', (err) => finish(signal.aborted ? abortReason() : failed(engineMessage(err))));
    // 'close' without 'end': the connection broke mid-pull, which is no success.
    stream.on('close', () => finish(signal.aborted ? abortReason() : failed(failure ?? 'the engine closed the connection before the pull finished')));
    if (signal.aborted) onAbort();
  });
}
