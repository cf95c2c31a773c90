import type { AssignedReplica } from '../shared/protocol.js';
import type { ContainerInputs } from './runtime/container-runtime.js';
import { specMountsOf } from './runtime/spec-mounts.js';
import type { ValueDelivery } from './values/value-delivery.js';

/**
 * What a new container of a replica is made with besides its spec: the mounts its spec asks for
 * (volumes, tmpfs, host paths, and the files of its configs and secrets, read-only), and its
 * whole environment (plain values and those of configs and secrets). A value the node does not
 * hold, or a file it cannot write, rejects: the replica's create fails with that message.
 */
export function containerInputsFor(nodeId: string, values: ValueDelivery): (replica: AssignedReplica) => Promise<ContainerInputs> {
  return async (replica) => {
    const spec = replica.container;
    const env = values.envOf(spec);
    const mounts = [...specMountsOf(nodeId, replica.service, spec), ...(await values.fileMountsOf(spec))];
    return { mounts, env };
  };
}
