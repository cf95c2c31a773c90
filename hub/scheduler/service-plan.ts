/** One service's plan as a pass builds it: the stages fill it in turn. */
import type { Constraint } from '../spec/constraints.js';
import { parsedConstraints, type NormalizedSpec } from '../spec/service-spec.js';
import { minProtocolVersionOf } from './feasibility.js';
import { BYTES_PER_MB, MILLICPUS_PER_CPU, type Demand } from './node-usage.js';
import type { Placement, SchedService } from './types.js';

export interface ServicePlan {
  service: SchedService;
  spec: NormalizedSpec;
  constraints: readonly Constraint[];
  demand: Demand;
  /**
   * The new list: kept placements in their old order, new ones appended. Placed replicas kept
   * unchanged are the input's objects (never mutated); everything else is fresh.
   */
  placements: Placement[];
  /** Replicated: this service's replicas per node id. */
  countByNodeId: Map<string, number>;
  /** Replicated: entries of `placements` that need a node. */
  toPlace: Placement[];
  /** Entries of `placements` that this pass judged and could not place; reasons are written last. */
  unplaced: Placement[];
  /** Replicas of lost nodes waiting for their replacements; listed after `placements`. */
  draining: Placement[];
  /** Nothing to decide (see isSettled): its placements are only counted, and stay as they are. */
  settled: boolean;
  /** Settled in an earlier pass with nothing changed since: the node states already count it. */
  counted: boolean;
  /**
   * Its ids were not added to the pass's seen ids (its list is known to hold none twice, see
   * keepReplicated): a new id for it is checked against its own list instead.
   */
  idsUnseen: boolean;
  /**
   * Replicated with a named volume: each replica's data is on its node, so the scheduler never
   * moves one on its own (see keep.ts and place.ts); only an operator's move does.
   */
  sticky: boolean;
}

/** Whether the scheduler keeps each replica of `spec` on its node (see ServicePlan.sticky). */
export function isSticky(spec: NormalizedSpec): boolean {
  return spec.mode === 'replicated' && spec.volumes !== undefined && spec.volumes.length > 0;
}

export function newPlan(service: SchedService): ServicePlan {
  const spec = service.spec;
  const { cpus, memoryMB } = spec.resources;
  return {
    service,
    spec,
    constraints: parsedConstraints(spec),
    demand: {
      // At least 1 millicpu: a tiny but non-zero request still needs a node with known capacity.
      cpuMillis: cpus === null ? 0 : Math.max(1, Math.round(cpus * MILLICPUS_PER_CPU)),
      memoryBytes: memoryMB === null ? 0 : memoryMB * BYTES_PER_MB,
      hostPorts: spec.ports.filter((p) => p.hostPort !== null).map((p) => `${p.protocol}/${p.hostPort}`),
      minProtocolVersion: minProtocolVersionOf(spec),
    },
    placements: [],
    countByNodeId: new Map(),
    toPlace: [],
    unplaced: [],
    draining: [],
    settled: false,
    counted: false,
    idsUnseen: false,
    sticky: isSticky(spec),
  };
}
