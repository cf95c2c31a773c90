/** Starting, stopping and removing a container: each tolerant of the state the engine already has. */
import type { StartResult } from '../container-runtime.js';
import type { EngineClient } from './engine-client.js';
import { engineError, engineMessage, isNotFound, statusCodeOf } from './engine-errors.js';

/** 'already-running' when the engine had it running (its 304): this call started nothing. */
export async function startContainer(engine: EngineClient, id: string): Promise<StartResult> {
  const what = `start container ${id.slice(0, 12)}`;
  try {
    await engine.call(what, engine.deadlines.startMs, (abortSignal) => engine.docker.getContainer(id).start({ abortSignal }));
    return 'started';
  } catch (err) {
    if (statusCodeOf(err) === 304) return 'already-running';
    throw engineError(what, err);
  }
}

/** SIGTERM, then SIGKILL after timeoutS; a container already stopped, or gone, is fine. */
export async function stopContainer(engine: EngineClient, id: string, timeoutS: number): Promise<void> {
  const what = `stop container ${id.slice(0, 12)}`;
  const stopS = Math.max(0, Math.round(timeoutS));
  try {
    // The engine waits stopS for the process before it kills it: the deadline starts after that.
    await engine.call(what, stopS * 1000 + engine.deadlines.stopMarginMs, (abortSignal) => engine.docker.getContainer(id).stop({ t: stopS, abortSignal }));
  } catch (err) {
    const code = statusCodeOf(err);
    if (code === 304 || code === 404) return;
    throw engineError(what, err);
  }
}

/** Removes it, forcibly, with its anonymous volumes; a missing container is fine. */
export async function removeContainer(engine: EngineClient, id: string): Promise<void> {
  const what = `remove container ${id.slice(0, 12)}`;
  try {
    // v: anonymous volumes from the image's VOLUME lines would otherwise pile up on the disk.
    await engine.call(what, engine.deadlines.removeMs, (abortSignal) => engine.docker.getContainer(id).remove({ force: true, v: true, abortSignal }));
  } catch (err) {
    if (isNotFound(err)) return;
    // "removal already in progress": the engine finishes it; nothing more to do here.
    if (statusCodeOf(err) === 409 && /already in progress/i.test(engineMessage(err))) return;
    throw engineError(what, err);
  }
}
