/** Removing the named volumes the agent made for a service on this node, and only those. */
import { LABELS, type VolumeRemoval } from '../container-runtime.js';
import { VOLUME_LABEL } from '../spec-mounts.js';
import type { EngineClient } from './engine-client.js';
import { engineError, isNotFound, statusCodeOf } from './engine-errors.js';

export async function removeServiceVolumes(engine: EngineClient, nodeId: string, service: string): Promise<VolumeRemoval> {
  let listed: { Volumes: Array<{ Name: string; Labels: Record<string, string> | null }> | null };
  try {
    listed = await engine.call('list volumes', engine.deadlines.queryMs, (abortSignal) =>
      engine.docker.listVolumes({
        filters: { label: [`${LABELS.managed}=true`, `${LABELS.nodeId}=${nodeId}`, `${LABELS.service}=${service}`, VOLUME_LABEL] },
        abortSignal,
      }),
    );
  } catch (err) {
    throw engineError('list volumes', err);
  }
  const result: VolumeRemoval = { removed: [], inUse: [] };
  for (const v of listed.Volumes ?? []) {
    // The engine filtered by label; checked again, since removing another's data cannot be undone.
    const labels = v.Labels ?? {};
    if (labels[LABELS.nodeId] !== nodeId || labels[LABELS.service] !== service || labels[VOLUME_LABEL] === undefined) continue;
    const what = `remove volume ${v.Name}`;
    try {
      // Never forced: the engine refuses (409) a volume any container uses, ours or not.
      await engine.call(what, engine.deadlines.removeMs, (abortSignal) => engine.docker.getVolume(encodeURIComponent(v.Name)).remove({ abortSignal }));
      result.removed.push(v.Name);
    } catch (err) {
      if (isNotFound(err)) result.removed.push(v.Name);
      else if (statusCodeOf(err) === 409) result.inUse.push(v.Name);
      else throw engineError(what, err);
    }
  }
  return result;
}
