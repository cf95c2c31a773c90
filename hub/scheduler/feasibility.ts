/** Feasibility: whether one more replica fits on a node, and if not, every reason why. */
import type { ContainerSpec } from '../../shared/container-spec.js';
import { MIN_PROTOCOL_VERSION } from '../../shared/protocol.js';
import type { Demand, NodeState } from './node-usage.js';
import type { SchedNode } from './types.js';

/** The first protocol version whose agents read a container's health check (older ones refuse the container). */
export const HEALTH_CHECK_PROTOCOL_VERSION = 3;

/**
 * The first protocol version whose agents apply a container's restart policy (older ones refuse
 * the container: left to one, it would run under the engine's policy, never the operator's).
 */
export const RESTART_POLICY_PROTOCOL_VERSION = 4;

/**
 * The first protocol version whose agents mount what a container needs besides its image (configs
 * and secrets, volumes, tmpfs, host paths) and take a target's values (older ones refuse them).
 */
export const MOUNTS_PROTOCOL_VERSION = 6;

/** The protocol versions that each made some containers unreadable to older agents, oldest first. */
export const FEATURE_PROTOCOL_VERSIONS = [HEALTH_CHECK_PROTOCOL_VERSION, RESTART_POLICY_PROTOCOL_VERSION, MOUNTS_PROTOCOL_VERSION] as const;

/** The protocol version an agent must speak to run a container of `spec`. */
export function minProtocolVersionOf(spec: ContainerSpec): number {
  if (spec.files || spec.envFrom || spec.volumes || spec.tmpfs || spec.binds) return MOUNTS_PROTOCOL_VERSION;
  if (spec.restart) return RESTART_POLICY_PROTOCOL_VERSION;
  return spec.healthcheck ? HEALTH_CHECK_PROTOCOL_VERSION : MIN_PROTOCOL_VERSION;
}

/**
 * Whether new replicas may go to the node as far as its agent's protocol goes: only to an agent
 * known to speak it. A node whose version is unknown is not connected, so not schedulable anyway.
 */
export function speaksEnough(node: SchedNode, demand: Demand): boolean {
  return demand.minProtocolVersion <= MIN_PROTOCOL_VERSION || (node.protocolVersion ?? 0) >= demand.minProtocolVersion;
}

/**
 * Whether replicas already on the node must leave it: its agent is known to be too old (it came
 * back older, or the spec gained a health check or a restart policy), and would refuse its whole target. An unknown
 * version (the node is away, or the hub just started) keeps them: the node's hello tells.
 */
export function refusesDemand(node: SchedNode, demand: Demand): boolean {
  return node.protocolVersion !== undefined && node.protocolVersion !== null && node.protocolVersion < demand.minProtocolVersion;
}

/**
 * Which reservations a fit check counts: all of them (replicated placement), all but unsettled
 * global claims (judging a global replica in its service's turn), or all but the replica's own
 * (explaining, after the pass, why a global replica stays pending).
 */
export type UsageView = 'all' | 'settled' | 'all-but-own';

export type Misfit =
  | { kind: 'protocol'; speaks: number | null }
  | { kind: 'capacity-unknown' }
  | { kind: 'cpu' }
  | { kind: 'memory' }
  | { kind: 'host-port'; key: string };

/**
 * Whether one more replica with `demand` fits on the node. With `misfits` given, collects every
 * reason it does not; without, stops at the first (the hot path of placement).
 */
export function checkFit(state: NodeState, demand: Demand, view: UsageView, misfits?: Misfit[]): boolean {
  const settled = view === 'settled';
  const own = view === 'all-but-own';
  let fits = true;
  if (!speaksEnough(state.node, demand)) {
    if (!misfits) return false;
    misfits.push({ kind: 'protocol', speaks: state.node.protocolVersion ?? null });
    fits = false;
  }
  if (demand.cpuMillis > 0 || demand.memoryBytes > 0) {
    if (state.capacity === null) {
      if (!misfits) return false;
      misfits.push({ kind: 'capacity-unknown' });
      fits = false;
    } else {
      if (demand.cpuMillis > 0) {
        const usedCpuMillis =
          state.usedCpuMillis - (settled ? state.unsettledCpuMillis : 0) - (own ? demand.cpuMillis : 0);
        if (usedCpuMillis + demand.cpuMillis > state.capacity.cpuMillis) {
          if (!misfits) return false;
          misfits.push({ kind: 'cpu' });
          fits = false;
        }
      }
      if (demand.memoryBytes > 0) {
        const usedMemoryBytes =
          state.usedMemoryBytes - (settled ? state.unsettledMemoryBytes : 0) - (own ? demand.memoryBytes : 0);
        if (usedMemoryBytes + demand.memoryBytes > state.capacity.memoryBytes) {
          if (!misfits) return false;
          misfits.push({ kind: 'memory' });
          fits = false;
        }
      }
    }
  }
  for (const key of demand.hostPorts) {
    const uses =
      (state.hostPortUses?.get(key) ?? 0) - (settled ? (state.unsettledHostPorts?.get(key) ?? 0) : 0) - (own ? 1 : 0);
    if (uses > 0) {
      if (!misfits) return false;
      misfits.push({ kind: 'host-port', key });
      fits = false;
    }
  }
  return fits;
}
