import type { ContainerSpec } from '../../shared/container-spec.js';
import { LABELS, type ContainerMount } from './container-runtime.js';

/** Label on the engine volumes the agent makes: which volume of the service's spec it is. */
export const VOLUME_LABEL = 'io.tether.volume';

/**
 * The engine's name of a service's named volume on this node. Per node and service, not per
 * replica: a replica of the service that comes back to the node (after an update, a rollback, a
 * restart of the agent or of the service itself) finds its data; two replicas of one service on
 * one node share it, as Swarm's do. The node id keeps agents that share one engine apart.
 */
export function engineVolumeName(nodeId: string, service: string, volume: string): string {
  return `tether-${nodeId.slice(0, 12)}-${service}-${volume}`.replace(/[^a-zA-Z0-9_.-]/g, '-');
}

/** The mounts a container's spec asks for that need nothing from the hub: volumes, tmpfs, host paths. */
export function specMountsOf(nodeId: string, service: string, spec: ContainerSpec): ContainerMount[] {
  const mounts: ContainerMount[] = [];
  for (const v of spec.volumes ?? []) {
    mounts.push({
      type: 'volume',
      source: engineVolumeName(nodeId, service, v.name),
      target: v.target,
      readOnly: v.readOnly,
      labels: { [LABELS.managed]: 'true', [LABELS.nodeId]: nodeId, [LABELS.service]: service, [VOLUME_LABEL]: v.name },
    });
  }
  for (const t of spec.tmpfs ?? []) mounts.push({ type: 'tmpfs', target: t.target, sizeBytes: t.sizeBytes, mode: t.mode });
  for (const b of spec.binds ?? []) mounts.push({ type: 'bind', source: b.hostPath, target: b.target, readOnly: b.readOnly });
  return mounts;
}
