/**
 * Node usage: what each replica takes from a node, and what is reserved on each node so far in a
 * pass. Every stage reads it; only reservations change it.
 */
import type { SchedNode } from './types.js';

export const BYTES_PER_MB = 1024 * 1024;
export const MILLICPUS_PER_CPU = 1000;

/** What one replica of a service takes from a node. */
export interface Demand {
  /** Integer millicpus, so that sums of fractional cpus compare exactly. */
  cpuMillis: number;
  memoryBytes: number;
  /** `tcp/8080` keys of the host ports it binds. */
  hostPorts: string[];
  /** The protocol version an agent must speak to run it (see minProtocolVersionOf). */
  minProtocolVersion: number;
}

/** What replicas reserve on one node. */
export interface NodeUsage {
  usedCpuMillis: number;
  usedMemoryBytes: number;
  /** Null until a replica with host ports is counted here (most nodes never need the map). */
  hostPortUses: Map<string, number> | null;
  /** Placements of any service with this node, pending ones included. */
  placementCount: number;
}

/** A node and everything reserved on it so far in this pass. */
export interface NodeState extends NodeUsage {
  node: SchedNode;
  /** Null while the node has not reported facts: only resource-free replicas fit then. */
  capacity: { cpuMillis: number; memoryBytes: number } | null;
  /**
   * The part of the above held by pending global replicas whose service this pass has not reached
   * yet. Such a replica is judged without them, so two pending replicas on a full node cannot
   * block each other forever; everyone else respects them.
   */
  unsettledCpuMillis: number;
  unsettledMemoryBytes: number;
  unsettledHostPorts: Map<string, number> | null;
}

/** A node's state at the start of a pass: `base` is what is already reserved (copied, never changed). */
export function newNodeState(node: SchedNode, base?: Readonly<NodeUsage>): NodeState {
  return {
    node,
    capacity: node.facts
      ? { cpuMillis: Math.round(node.facts.cpus * MILLICPUS_PER_CPU), memoryBytes: node.facts.memoryBytes }
      : null,
    usedCpuMillis: base?.usedCpuMillis ?? 0,
    usedMemoryBytes: base?.usedMemoryBytes ?? 0,
    hostPortUses: base?.hostPortUses ? new Map(base.hostPortUses) : null,
    placementCount: base?.placementCount ?? 0,
    unsettledCpuMillis: 0,
    unsettledMemoryBytes: 0,
    unsettledHostPorts: null,
  };
}

// ---------------------------------------------------------------------------------------------
// Reservations

export function reserve(state: NodeUsage, demand: Demand, count = 1): void {
  state.usedCpuMillis += demand.cpuMillis * count;
  state.usedMemoryBytes += demand.memoryBytes * count;
  if (demand.hostPorts.length > 0) {
    const uses = (state.hostPortUses ??= new Map());
    for (const key of demand.hostPorts) uses.set(key, (uses.get(key) ?? 0) + count);
  }
  state.placementCount += count;
}

/** `sign` 1 marks a pending global claim as not yet judged in this pass, -1 settles it. */
export function addUnsettled(state: NodeState, demand: Demand, sign: 1 | -1): void {
  state.unsettledCpuMillis += sign * demand.cpuMillis;
  state.unsettledMemoryBytes += sign * demand.memoryBytes;
  if (demand.hostPorts.length === 0) return;
  const uses = (state.unsettledHostPorts ??= new Map());
  for (const key of demand.hostPorts) uses.set(key, (uses.get(key) ?? 0) + sign);
}
