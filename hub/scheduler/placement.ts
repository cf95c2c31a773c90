/**
 * The pure core of the hub's scheduler: given every service and every node, decide where each
 * replica belongs. No I/O, no clock, no randomness: the same input always gives the same answer,
 * and running it again on its own output changes nothing, so a hub restart never reshuffles.
 */
import { matchesAll, type Constraint } from '../../shared/constraints.js';
import { parsedConstraints, type NormalizedSpec } from '../../shared/spec.js';
import { MinHeap } from './min-heap.js';
import type { Placement, SchedNode, SchedService, ServicePlacementChange } from './types.js';

export interface PlacementOptions {
  /**
   * A new replica id no other service can hold (the hub's start with the service's name); the
   * planner checks it against the service's own ids.
   */
  newReplicaId: (service: string) => string;
  /** How long a node may be unreachable before its replicas move (a service may set its own). */
  defaultLostAfterMs?: number;
  /** Whether the replica's agent reports it running its current spec: ends a hand-over. */
  isRunning?: (replicaId: string) => boolean;
  /**
   * False judges settled services in full too. The answer is the same (the tests check it) as long
   * as no replica id appears twice, which holds for the planner's own output; judging everything
   * also drops such duplicates (a hand-edited store), so the hub does that once after it starts.
   */
  skipSettled?: boolean;
}

/** What keeping a replicated service's placements needs beyond the service itself. */
interface KeepContext {
  statesById: Map<string, NodeState>;
  seenReplicaIds: Set<string>;
  newId: (service: string) => string;
  defaultLostAfterMs: number;
  isRunning: (replicaId: string) => boolean;
}

const BYTES_PER_MB = 1024 * 1024;
const MILLICPUS_PER_CPU = 1000;

/** What one replica of a service takes from a node. */
interface Demand {
  /** Integer millicpus, so that sums of fractional cpus compare exactly. */
  cpuMillis: number;
  memoryBytes: number;
  /** `tcp/8080` keys of the host ports it binds. */
  hostPorts: string[];
}

/** A node and everything reserved on it so far in this pass. */
interface NodeState {
  node: SchedNode;
  /** Null while the node has not reported facts: only resource-free replicas fit then. */
  capacity: { cpuMillis: number; memoryBytes: number } | null;
  usedCpuMillis: number;
  usedMemoryBytes: number;
  /** Null until a replica with host ports is counted here (most nodes never need the map). */
  hostPortUses: Map<string, number> | null;
  /** Placements of any service with this node, pending ones included. */
  placementCount: number;
  /**
   * The part of the above held by pending global replicas whose service this pass has not reached
   * yet. Such a replica is judged without them, so two pending replicas on a full node cannot
   * block each other forever; everyone else respects them.
   */
  unsettledCpuMillis: number;
  unsettledMemoryBytes: number;
  unsettledHostPorts: Map<string, number> | null;
}

/**
 * Which reservations a fit check counts: all of them (replicated placement), all but unsettled
 * global claims (judging a global replica in its service's turn), or all but the replica's own
 * (explaining, after the pass, why a global replica stays pending).
 */
type UsageView = 'all' | 'settled' | 'all-but-own';

type Misfit = { kind: 'capacity-unknown' } | { kind: 'cpu' } | { kind: 'memory' } | { kind: 'host-port'; key: string };

interface ServicePlan {
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
}

const compareStrings = (a: string, b: string): number => (a < b ? -1 : a > b ? 1 : 0);

export function planPlacements(
  services: readonly SchedService[],
  nodes: readonly SchedNode[],
  opts: PlacementOptions,
): ServicePlacementChange[] {
  const states = [...nodes].sort((a, b) => compareStrings(a.id, b.id)).map(newNodeState);
  const statesById = new Map(states.map((s) => [s.node.id, s]));
  const plans = [...services].sort((a, b) => compareStrings(a.name, b.name)).map(newPlan);

  // Decide what stays before anything new is placed, so that every kept placement's reservation
  // is known up front. Every replica id met counts as seen, kept or not: a duplicate is dropped, and
  // a new id must not reuse one whose container may still be running somewhere.
  const seenReplicaIds = new Set<string>();
  // New ids are only made for services this pass judges, whose ids are all seen by the time it
  // places them; ids of other services cannot collide (see newReplicaId).
  const newId = (service: string): string => {
    const id = opts.newReplicaId(service);
    if (seenReplicaIds.has(id)) throw new Error(`invariant: newReplicaId returned "${id}", which is already in use`);
    seenReplicaIds.add(id);
    return id;
  };
  const keep: KeepContext = {
    statesById,
    seenReplicaIds,
    newId,
    defaultLostAfterMs: opts.defaultLostAfterMs ?? Number.POSITIVE_INFINITY,
    isRunning: opts.isRunning ?? (() => false),
  };
  for (const plan of plans) {
    if (plan.spec.mode === 'global') keepGlobal(plan, statesById, seenReplicaIds);
    else if (opts.skipSettled !== false && isSettled(plan, keep)) plan.settled = true;
    else keepReplicated(plan, keep);
  }
  for (const plan of plans) {
    if (plan.settled) {
      // Per node, not per replica: a settled service of 100,000 replicas costs one step per node.
      for (const [nodeId, count] of summaryOf(plan.service.placements).countByNodeId) {
        reserve(statesById.get(nodeId) as NodeState, plan.demand, count);
      }
      continue;
    }
    for (const list of [plan.placements, plan.draining]) {
      for (const p of list) {
        if (p.nodeId === null) continue;
        const state = statesById.get(p.nodeId) as NodeState;
        reserve(state, plan.demand);
        if (p.pendingReason !== null) addUnsettled(state, plan.demand, 1);
      }
    }
  }

  // Name order, so that competition for resources and ports is decided the same way every time.
  for (const plan of plans) {
    if (plan.settled) continue;
    if (plan.spec.mode === 'global') placeGlobal(plan, states, statesById, newId);
    else placeReplicated(plan, states, newId);
  }

  // Reasons are written against the final state of the pass: the state a second pass starts from,
  // so that it finds the same words and reports no change.
  for (const plan of plans) {
    if (plan.unplaced.length === 0) continue;
    if (plan.spec.mode === 'replicated') {
      const reason = describeReplicatedShortfall(plan, states);
      for (const p of plan.unplaced) p.pendingReason = reason;
      continue;
    }
    for (const p of plan.unplaced) {
      const misfits: Misfit[] = [];
      checkFit(statesById.get(p.nodeId as string) as NodeState, plan.demand, 'all-but-own', misfits);
      // No misfit cannot happen (reservations only grow during a pass); if it did, it fits.
      p.pendingReason = misfits.length === 0 ? null : describeNodeMisfits(misfits, plan.spec);
    }
  }

  const changes: ServicePlacementChange[] = [];
  for (const plan of plans) {
    if (plan.settled) continue;
    const placements = plan.draining.length === 0 ? plan.placements : [...plan.placements, ...plan.draining];
    if (!samePlacements(plan.service.placements, placements)) {
      changes.push({ service: plan.service.name, placements });
    }
  }
  return changes;
}

function newNodeState(node: SchedNode): NodeState {
  return {
    node,
    capacity: node.facts
      ? { cpuMillis: Math.round(node.facts.cpus * MILLICPUS_PER_CPU), memoryBytes: node.facts.memoryBytes }
      : null,
    usedCpuMillis: 0,
    usedMemoryBytes: 0,
    hostPortUses: null,
    placementCount: 0,
    unsettledCpuMillis: 0,
    unsettledMemoryBytes: 0,
    unsettledHostPorts: null,
  };
}

function newPlan(service: SchedService): ServicePlan {
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
    },
    placements: [],
    countByNodeId: new Map(),
    toPlace: [],
    unplaced: [],
    draining: [],
    settled: false,
  };
}

// ---------------------------------------------------------------------------------------------
// What stays

function keepReplicated(plan: ServicePlan, ctx: KeepContext): void {
  const { statesById } = ctx;
  const lostAfterMs = plan.spec.lostAfterMs ?? ctx.defaultLostAfterMs;
  const reschedule = plan.spec.onNodeLost === 'reschedule';
  const olds: Placement[] = [];
  for (const old of plan.service.placements) {
    if (ctx.seenReplicaIds.has(old.replicaId)) continue;
    ctx.seenReplicaIds.add(old.replicaId);
    olds.push(old);
  }
  // Only hand-overs look replicas up by id; most passes have none.
  const byId = olds.some((p) => p.replacedBy) ? new Map(olds.map((p) => [p.replicaId, p])) : new Map<string, Placement>();
  const onUsableNode = (p: Placement): NodeState | undefined => {
    const state = p.nodeId === null ? undefined : statesById.get(p.nodeId);
    return state && matchesAll(state.node, plan.constraints) ? state : undefined;
  };

  // Replicas of lost nodes that have a replacement: hand over, call the move off, or wait.
  const draining: Placement[] = [];
  const restored = new Set<Placement>();
  const cancelled = new Set<string>();
  for (const old of olds) {
    if (!old.replacedBy) continue;
    const state = onUsableNode(old);
    if (!state) continue;
    const replacement = byId.get(old.replacedBy);
    // The replacement runs: the old one may go (its node stops it when it comes back).
    if (replacement && ctx.isRunning(replacement.replicaId)) continue;
    if (state.node.schedulable) {
      // The node came back before its replacement ran: keep what already runs there.
      if (replacement) cancelled.add(replacement.replicaId);
      restored.add(old);
      continue;
    }
    if (replacement) draining.push(copyPlacement(old));
  }

  const kept: Placement[] = [];
  let pendingCount = 0;
  for (const old of olds) {
    if ((old.replacedBy && !restored.has(old)) || cancelled.has(old.replicaId)) continue;
    if (old.nodeId === null || old.pendingReason !== null) {
      // A replicated replica that is pending has no node (one may be left from global mode).
      const copy = copyPlacement(old);
      delete copy.replacedBy;
      kept.push({ ...copy, nodeId: null });
      pendingCount++;
      continue;
    }
    const state = onUsableNode(old);
    if (!state) continue;
    const downForMs = state.node.downForMs;
    if (reschedule && downForMs !== null && downForMs >= lostAfterMs) {
      // Lost: a replacement goes elsewhere; the original stays in its node's target meanwhile.
      const replacement: Placement = { replicaId: ctx.newId(plan.service.name), nodeId: null, pendingReason: null, movedFrom: old.nodeId };
      draining.push({ ...copyPlacement(old), replacedBy: replacement.replicaId });
      kept.push(replacement);
      pendingCount++;
      continue;
    }
    // A placed replica that stays as it was is kept as the same object: nothing mutates placed
    // replicas during a pass, and a large service would otherwise be copied whole on every change.
    if (old.replacedBy === undefined && old.movedFrom !== null) {
      kept.push(old);
      continue;
    }
    const copy = copyPlacement(old);
    delete copy.replacedBy;
    kept.push(copy);
  }

  const excess = kept.length - plan.spec.replicas;
  const removed = excess > 0 ? chooseRemovals(kept, pendingCount, excess, statesById) : null;
  const removedIds = new Set([...(removed ?? [])].map((p) => p.replicaId));
  for (const p of kept) {
    if (removed?.has(p)) continue;
    plan.placements.push(p);
    if (p.nodeId === null) plan.toPlace.push(p);
    else plan.countByNodeId.set(p.nodeId, (plan.countByNodeId.get(p.nodeId) ?? 0) + 1);
  }
  // A replacement scaled away leaves nothing to hand over to.
  for (const p of draining) if (!removedIds.has(p.replacedBy as string)) plan.draining.push(p);
}

/**
 * Whether a replicated service has nothing to decide: exactly its replicas, each on a node that
 * exists, still matches and is not lost, none pending or handing over. Keeping such a service
 * would copy it unchanged, so the pass only counts its reservations: most services are like this
 * most of the time, and that keeps a pass over a large fleet cheap.
 */
function isSettled(plan: ServicePlan, ctx: KeepContext): boolean {
  const placements = plan.service.placements;
  if (placements.length !== plan.spec.replicas) return false;
  const summary = summaryOf(placements);
  if (!summary.allPlaced) return false;
  const lostAfterMs = plan.spec.lostAfterMs ?? ctx.defaultLostAfterMs;
  const reschedule = plan.spec.onNodeLost === 'reschedule';
  const constrained = plan.constraints.length > 0;
  for (const nodeId of summary.countByNodeId.keys()) {
    const state = ctx.statesById.get(nodeId);
    if (!state || (constrained && !matchesAll(state.node, plan.constraints))) return false;
    const downForMs = state.node.downForMs;
    if (reschedule && downForMs !== null && downForMs >= lostAfterMs) return false;
  }
  return true;
}

/** What a list of placements says without any node: whether all are placed, and how many per node. */
interface PlacementSummary {
  /** Every one has a node and is neither pending nor handing over. */
  allPlaced: boolean;
  countByNodeId: Map<string, number>;
}

/**
 * Remembered per placements array: the hub replaces a service's record (and its array) on every
 * change and never edits one in place, so an unchanged service's summary is computed once, not
 * once per pass. The planner never mutates its input either.
 */
const summaries = new WeakMap<readonly Placement[], PlacementSummary>();

function summaryOf(placements: readonly Placement[]): PlacementSummary {
  let summary = summaries.get(placements);
  if (summary) return summary;
  summary = { allPlaced: true, countByNodeId: new Map() };
  for (const p of placements) {
    if (p.nodeId === null || p.pendingReason !== null || p.replacedBy) {
      summary.allPlaced = false;
      continue;
    }
    summary.countByNodeId.set(p.nodeId, (summary.countByNodeId.get(p.nodeId) ?? 0) + 1);
  }
  summaries.set(placements, summary);
  return summary;
}

/** A fresh copy, without optional fields that are unset (so equal placements compare equal). */
function copyPlacement(p: Placement): Placement {
  const out: Placement = { replicaId: p.replicaId, nodeId: p.nodeId, pendingReason: p.pendingReason };
  if (p.movedFrom) out.movedFrom = p.movedFrom;
  if (p.replacedBy) out.replacedBy = p.replacedBy;
  return out;
}

/** Scale-down: pending replicas first, then those on nodes that are down, then spread evenly. */
function chooseRemovals(
  kept: readonly Placement[],
  pendingCount: number,
  excess: number,
  statesById: Map<string, NodeState>,
): Set<Placement> {
  const removed = new Set<Placement>();
  const pendingByIdDesc = kept.filter((p) => p.nodeId === null).sort((a, b) => compareStrings(b.replicaId, a.replicaId));
  for (const p of pendingByIdDesc.slice(0, excess)) removed.add(p);
  let left = excess - Math.min(excess, pendingCount);
  if (left === 0) return removed;
  const onDown: Placement[] = [];
  const onUp: Placement[] = [];
  for (const p of kept) {
    if (p.nodeId === null) continue;
    // A replica on a node that is down is not doing its job anyway.
    if ((statesById.get(p.nodeId) as NodeState).node.schedulable) onUp.push(p);
    else onDown.push(p);
  }
  left = removeFromMostCrowded(onDown, left, removed);
  removeFromMostCrowded(onUp, left, removed);
  return removed;
}

/**
 * Removes up to `count` replicas, always from the node holding most of them (ties: the one whose
 * highest replica id is highest), so that what remains stays spread. Returns how many are left to
 * remove.
 */
function removeFromMostCrowded(placed: readonly Placement[], count: number, removed: Set<Placement>): number {
  if (count <= 0 || placed.length === 0) return count;
  const byNode = new Map<string, Placement[]>();
  for (const p of placed) {
    const list = byNode.get(p.nodeId as string);
    if (list) list.push(p);
    else byNode.set(p.nodeId as string, [p]);
  }
  for (const list of byNode.values()) list.sort((a, b) => compareStrings(a.replicaId, b.replicaId));
  const lastId = (list: Placement[]): string => (list[list.length - 1] as Placement).replicaId;
  const heap = new MinHeap<Placement[]>(
    (a, b) => b.length - a.length || compareStrings(lastId(b), lastId(a)),
    byNode.values(),
  );
  let left = count;
  while (left > 0) {
    const list = heap.pop();
    if (!list) break;
    removed.add(list.pop() as Placement);
    left--;
    if (list.length > 0) heap.push(list);
  }
  return left;
}

function keepGlobal(plan: ServicePlan, statesById: Map<string, NodeState>, seenReplicaIds: Set<string>): void {
  // One replica per node; should an older list hold two, keep the running one, then the lower id.
  const byNode = new Map<string, Placement>();
  for (const old of plan.service.placements) {
    if (seenReplicaIds.has(old.replicaId)) continue;
    seenReplicaIds.add(old.replicaId);
    if (old.nodeId === null) continue;
    const state = statesById.get(old.nodeId);
    if (!state || !matchesAll(state.node, plan.constraints)) continue;
    const current = byNode.get(old.nodeId);
    if (current && !globalPreferred(old, current)) continue;
    byNode.set(old.nodeId, old);
  }
  const keptOld = new Set(byNode.values());
  for (const old of plan.service.placements) {
    if (keptOld.has(old)) plan.placements.push({ replicaId: old.replicaId, nodeId: old.nodeId, pendingReason: old.pendingReason });
  }
}

function globalPreferred(a: Placement, b: Placement): boolean {
  if ((a.pendingReason === null) !== (b.pendingReason === null)) return a.pendingReason === null;
  return a.replicaId < b.replicaId;
}

// ---------------------------------------------------------------------------------------------
// Placing

function placeReplicated(plan: ServicePlan, states: readonly NodeState[], newId: (service: string) => string): void {
  const name = plan.service.name;
  for (let n = plan.placements.length; n < plan.spec.replicas; n++) {
    const p: Placement = { replicaId: newId(name), nodeId: null, pendingReason: null };
    plan.placements.push(p);
    plan.toPlace.push(p);
  }
  if (plan.toPlace.length === 0) return;

  interface Candidate {
    state: NodeState;
    ownCount: number;
  }
  const candidates: Candidate[] = [];
  for (const state of states) {
    if (!state.node.schedulable || !matchesAll(state.node, plan.constraints)) continue;
    candidates.push({ state, ownCount: plan.countByNodeId.get(state.node.id) ?? 0 });
  }
  // Fewest replicas of this service, then fewest placements overall, then node id.
  const heap = new MinHeap<Candidate>(
    (a, b) =>
      a.ownCount - b.ownCount ||
      a.state.placementCount - b.state.placementCount ||
      compareStrings(a.state.node.id, b.state.node.id),
    candidates,
  );

  let next = 0;
  while (next < plan.toPlace.length) {
    const best = heap.pop();
    if (!best) break;
    // Reservations only grow during a pass, so a node that does not fit now never will: drop it.
    if (!checkFit(best.state, plan.demand, 'all')) continue;
    const p = plan.toPlace[next++] as Placement;
    p.nodeId = best.state.node.id;
    p.pendingReason = null;
    reserve(best.state, plan.demand);
    best.ownCount++;
    heap.push(best);
  }
  for (let i = next; i < plan.toPlace.length; i++) plan.unplaced.push(plan.toPlace[i] as Placement);
}

function placeGlobal(
  plan: ServicePlan,
  states: readonly NodeState[],
  statesById: Map<string, NodeState>,
  newId: (service: string) => string,
): void {
  const hasReplica = new Set<string>();
  for (const p of plan.placements) {
    // Kept global placements always have a node that exists.
    const state = statesById.get(p.nodeId as string) as NodeState;
    hasReplica.add(state.node.id);
    if (p.pendingReason === null) continue;
    // Judged before its own claim is settled, so that the claim does not count against itself.
    // A pending replica on a node that is down waits for the node, keeping its reason.
    if (state.node.schedulable) {
      if (checkFit(state, plan.demand, 'settled')) p.pendingReason = null;
      else plan.unplaced.push(p);
    }
    addUnsettled(state, plan.demand, -1);
  }
  for (const state of states) {
    if (hasReplica.has(state.node.id) || !state.node.schedulable || !matchesAll(state.node, plan.constraints)) continue;
    const fits = checkFit(state, plan.demand, 'settled');
    // Placed or pending, the replica belongs to this node and holds its share of it.
    const p: Placement = { replicaId: newId(plan.service.name), nodeId: state.node.id, pendingReason: null };
    reserve(state, plan.demand);
    plan.placements.push(p);
    if (!fits) plan.unplaced.push(p);
  }
}

// ---------------------------------------------------------------------------------------------
// Reservations

function reserve(state: NodeState, demand: Demand, count = 1): void {
  state.usedCpuMillis += demand.cpuMillis * count;
  state.usedMemoryBytes += demand.memoryBytes * count;
  if (demand.hostPorts.length > 0) {
    const uses = (state.hostPortUses ??= new Map());
    for (const key of demand.hostPorts) uses.set(key, (uses.get(key) ?? 0) + count);
  }
  state.placementCount += count;
}

/** `sign` 1 marks a pending global claim as not yet judged in this pass, -1 settles it. */
function addUnsettled(state: NodeState, demand: Demand, sign: 1 | -1): void {
  state.unsettledCpuMillis += sign * demand.cpuMillis;
  state.unsettledMemoryBytes += sign * demand.memoryBytes;
  if (demand.hostPorts.length === 0) return;
  const uses = (state.unsettledHostPorts ??= new Map());
  for (const key of demand.hostPorts) uses.set(key, (uses.get(key) ?? 0) + sign);
}

/**
 * Whether one more replica with `demand` fits on the node. With `misfits` given, collects every
 * reason it does not; without, stops at the first (the hot path of placement).
 */
function checkFit(state: NodeState, demand: Demand, view: UsageView, misfits?: Misfit[]): boolean {
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

// ---------------------------------------------------------------------------------------------
// Reasons, for the operator who has to act on them

const counted = (n: number, one: string, many: string): string => `${n} ${n === 1 ? one : many}`;

function cpusText(spec: NormalizedSpec): string {
  return `need ${spec.resources.cpus} ${spec.resources.cpus === 1 ? 'cpu' : 'cpus'}`;
}

function memoryText(spec: NormalizedSpec): string {
  return `need ${spec.resources.memoryMB} MB`;
}

function describeReplicatedShortfall(plan: ServicePlan, states: readonly NodeState[]): string {
  const spec = plan.spec;
  const constraintsText = `[${spec.constraints.join(', ')}]`;
  let matching = 0;
  let notReady = 0;
  let fitting = 0;
  let capacityUnknown = 0;
  let lackCpu = 0;
  let lackMemory = 0;
  const portTaken = new Map(plan.demand.hostPorts.map((key) => [key, 0]));
  for (const state of states) {
    if (!matchesAll(state.node, plan.constraints)) continue;
    matching++;
    if (!state.node.schedulable) {
      notReady++;
      continue;
    }
    const misfits: Misfit[] = [];
    if (checkFit(state, plan.demand, 'all', misfits)) fitting++;
    for (const m of misfits) {
      if (m.kind === 'capacity-unknown') capacityUnknown++;
      else if (m.kind === 'cpu') lackCpu++;
      else if (m.kind === 'memory') lackMemory++;
      else portTaken.set(m.key, (portTaken.get(m.key) ?? 0) + 1);
    }
  }

  if (matching === 0) return spec.constraints.length > 0 ? `no node matches constraints ${constraintsText}` : 'no ready node';
  if (notReady === matching) {
    return spec.constraints.length > 0
      ? `no ready node matches constraints ${constraintsText} (${counted(notReady, 'matching node is', 'matching nodes are')} not ready)`
      : `no ready node (${counted(notReady, 'node is', 'nodes are')} not ready)`;
  }
  const parts: string[] = [];
  if (capacityUnknown > 0) parts.push(`${counted(capacityUnknown, 'has', 'have')} not reported capacity yet`);
  if (lackCpu > 0) parts.push(`${counted(lackCpu, 'lacks', 'lack')} cpu (${cpusText(spec)})`);
  if (lackMemory > 0) parts.push(`${counted(lackMemory, 'lacks', 'lack')} memory (${memoryText(spec)})`);
  for (const [key, n] of portTaken) if (n > 0) parts.push(`${counted(n, 'has', 'have')} host port ${key} taken`);
  if (notReady > 0) parts.push(`${counted(notReady, 'is', 'are')} not ready`);
  return `${fitting} of ${counted(matching, 'matching node fits', 'matching nodes fit')}: ${parts.join(', ')}`;
}

function describeNodeMisfits(misfits: readonly Misfit[], spec: NormalizedSpec): string {
  return misfits
    .map((m) => {
      switch (m.kind) {
        case 'capacity-unknown':
          return 'node has not reported capacity yet';
        case 'cpu':
          return `node lacks cpu (${cpusText(spec)})`;
        case 'memory':
          return `node lacks memory (${memoryText(spec)})`;
        case 'host-port':
          return `host port ${m.key} taken on node`;
      }
    })
    .join(', ');
}

function samePlacements(before: readonly Placement[], after: readonly Placement[]): boolean {
  if (before.length !== after.length) return false;
  for (let i = 0; i < before.length; i++) {
    const a = before[i] as Placement;
    const b = after[i] as Placement;
    if (a.replicaId !== b.replicaId || a.nodeId !== b.nodeId || a.pendingReason !== b.pendingReason) return false;
    if ((a.movedFrom ?? null) !== (b.movedFrom ?? null) || (a.replacedBy ?? null) !== (b.replacedBy ?? null)) return false;
  }
  return true;
}
