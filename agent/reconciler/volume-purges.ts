/**
 * Removing the volumes of services deleted with `purgeVolumes` (the target's `purgeVolumes`). A
 * service's volumes go only once none of its containers is left on the node and the target names
 * none of its replicas; the runtime removes only volumes labelled with this node and the service,
 * never one a container uses. A purge that is done is not asked of the engine again while the
 * agent runs (the hub keeps the name in the node's targets); after a restart it is asked once more,
 * which finds nothing.
 */
import type { AssignedReplica } from '../../shared/protocol.js';
import type { ContainerRuntime, ObservedContainer } from '../runtime/container-runtime.js';
import type { Logger } from '../../shared/logger.js';
import { messageOf } from './step-executors.js';

export interface VolumePurgesDeps {
  nodeId: string;
  runtime: Pick<ContainerRuntime, 'removeServiceVolumes'>;
  logger: Pick<Logger, 'info' | 'warn'>;
}

export class VolumePurges {
  /** Services whose volumes are gone; only names the latest target lists (at most MAX_VOLUME_PURGES). */
  private readonly done = new Set<string>();

  constructor(private readonly deps: VolumePurgesDeps) {}

  /** Purges what `services` asks for and is due; a failure is logged and tried again by a later pass. */
  async run(services: readonly string[], target: readonly AssignedReplica[], current: readonly ObservedContainer[], signal: AbortSignal): Promise<void> {
    const listed = new Set(services);
    for (const name of this.done) if (!listed.has(name)) this.done.delete(name);
    const remove = this.deps.runtime.removeServiceVolumes?.bind(this.deps.runtime);
    if (!remove || services.length === 0) return;
    const wanted = new Set(target.map((r) => r.service));
    const present = new Set(current.map((c) => c.service));
    for (const service of services) {
      if (signal.aborted) return;
      // A service of that name again (created anew) keeps its volumes; a container still there
      // (its removal failed) waits: the engine would refuse, and the next pass tries again.
      if (this.done.has(service) || wanted.has(service) || present.has(service)) continue;
      try {
        const { removed, inUse } = await remove(this.deps.nodeId, service);
        if (removed.length > 0) this.deps.logger.info({ service, volumes: removed }, 'removed the volumes of a deleted service');
        if (inUse.length > 0) this.deps.logger.warn({ service, volumes: inUse }, 'volumes of a deleted service are still used by a container; kept until it is gone');
        else this.done.add(service);
      } catch (err) {
        this.deps.logger.warn({ service, err: messageOf(err) }, 'could not remove the volumes of a deleted service; trying again later');
      }
    }
  }
}
