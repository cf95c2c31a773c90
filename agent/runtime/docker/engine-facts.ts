/** What the engine says of itself: its version, where it keeps its data, whether it answers at all. */
import { NODE_FACT_MAX_LENGTH } from '../../../shared/protocol.js';
import type { EngineClient } from './engine-client.js';
import { engineError } from './engine-errors.js';

export async function engineVersion(engine: EngineClient): Promise<string> {
  try {
    const v = await engine.call('docker version', engine.deadlines.queryMs, (abortSignal) => engine.signalled.version({ abortSignal }));
    return `docker ${v.Version}`.slice(0, NODE_FACT_MAX_LENGTH.runtime);
  } catch (err) {
    throw engineError('docker version', err);
  }
}

/** The engine's DockerRootDir; null when it gives none, or one that is not an absolute path. */
export async function engineStorageDir(engine: EngineClient): Promise<string | null> {
  let info: { DockerRootDir?: unknown };
  try {
    info = await engine.call('docker info', engine.deadlines.queryMs, (abortSignal) => engine.signalled.info({ abortSignal }));
  } catch (err) {
    throw engineError('docker info', err);
  }
  return typeof info.DockerRootDir === 'string' && info.DockerRootDir.startsWith('/') ? info.DockerRootDir : null;
}

export async function pingEngine(engine: EngineClient): Promise<void> {
  try {
    await engine.call('docker ping', engine.deadlines.pingMs, (abortSignal) => engine.signalled.ping({ abortSignal }));
  } catch (err) {
    throw engineError('docker ping', err);
  }
}
