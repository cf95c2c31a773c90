/** Feasibility: whether one more replica fits on a node, and if not, every reason why. */
import type { Demand, NodeState } from './node-usage.js';

/**
 * Which reservations a fit check counts: all of them (replicated placement), all but unsettled
 * global claims (judging a global replica in its service's turn), or all but the replica's own
 * (explaining, after the pass, why a global replica stays pending).
 */
export type UsageView = 'all' | 'settled' | 'all-but-own';

export type Misfit = { kind: 'capacity-unknown' } | { kind: 'cpu' } | { kind: 'memory' } | { kind: 'host-port'; key: string };

/**
 * Whether one more replica with `demand` fits on the node. With `misfits` given, collects every
 * reason it does not; without, stops at the first (the hot path of placement).
 */
export function checkFit(state: NodeState, demand: Demand, view: UsageView, misfits?: Misfit[]): boolean {
  const settled = view === 'settled';
  const own = view === 'all-but-own';
  let fits = true;
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
