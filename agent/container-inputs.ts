import type { AssignedReplica } from '../shared/protocol.js';
import type { ContainerInputs } from './runtime/container-runtime.js';
import { specMountsOf } from './runtime/spec-mounts.js';

/**
 * What a new container of a replica is made with besides its spec: the mounts its spec asks for,
 * and its whole environment.
 */
export function containerInputsFor(nodeId: string): (replica: AssignedReplica) => Promise<ContainerInputs> {
  return async (replica) => ({
    mounts: specMountsOf(nodeId, replica.service, replica.container),
    env: { ...replica.container.env },
  });
}
