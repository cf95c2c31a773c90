/** Scheduler nodes for placement tests: ample room, and the protocol version their agent speaks. */
import type { SchedNode } from '../../hub/scheduler/types.js';

const GB = 1024 * 1024 * 1024;

/** A node whose agent speaks `protocolVersion` (null: unknown); down for `downForMs` when set. */
export function versionedNode(id: string, protocolVersion: number | null, downForMs: number | null = null): SchedNode {
  return {
    id,
    name: `name-${id}`,
    labels: {},
    facts: { hostname: `host-${id}`, arch: 'amd64', os: 'linux', cpus: 4, memoryBytes: 8 * GB },
    schedulable: downForMs === null,
    downForMs,
    protocolVersion,
  };
}
