/**
 * The pure core of the hub's scheduler: given every service and every node, decide where each
 * replica belongs. No I/O, no clock, no randomness: the same input always gives the same answer,
 * and running it again on its own output changes nothing, so a hub restart never reshuffles.
 *
 * A pass runs in stages, as Nomad's scheduler does: what stays (keep.ts), then reservations of
 * what stays (node-usage.ts), then placing what is missing where it fits (place.ts, using
 * feasibility.ts), then the words for what could not be placed (pending-reasons.ts). The result is
 * a plan, one list per changed service, that the hub's reconcile loop checks against the records
 * it planned from before it commits any of it.
 */
import { keepGlobal, keepReplicated, isSettled, markIdsUnique, rememberSummary, summaryOf, type KeepContext } from './keep.js';
import { NodeStates } from './node-states.js';
import { addUnsettled, reserve, type NodeState } from './node-usage.js';
import { compareStrings } from './order.js';
import { placeGlobal, placeReplicated } from './place.js';
import { writePendingReasons } from './pending-reasons.js';
import { newPlan, type ServicePlan } from './service-plan.js';
import type { SettledUsage } from './settled-usage.js';
import type { Placement, SchedNode, SchedService, ServicePlacementChange } from './types.js';

export interface PlacementOptions {
  /**
   * A new replica id no other service can hold (the hub's start with the service's name); the
   * planner checks it against the service's own ids.
   */
  newReplicaId: (service: string) => string;
  /** How long a node may be unreachable before its replicas move (a service may set its own). */
  defaultLostAfterMs?: number;
  /**
   * Whether the replica serves: its agent reports it running its current spec, healthy when the
   * spec has a health check, on a ready node. It ends a hand-over (a move off a lost, draining or
   * no longer matching node).
   */
  isRunning?: (replicaId: string) => boolean;
  /** Whether the replica's agent reports it failed, crash-looping or unhealthy: a scale-down removes it before those that work. */
  isUnhealthy?: (replicaId: string) => boolean;
  /**
   * False judges settled services in full too, and sees every id of every list, the planner's
   * own included (see keepReplicated). The answer is the same (the tests check it) as long as no
   * replica id appears twice, which holds for the planner's own output; judging everything also
   * drops such duplicates (a hand-edited store), so the hub does that once after it starts.
   */
  skipSettled?: boolean;
  /**
   * The reservations of settled services kept from the last pass (one per hub; see
   * settled-usage.ts): with it, a pass costs what changed since, not what exists; without it,
   * everything may have changed and every settled service is counted again. The answer is the
   * same either way. Not used when skipSettled is false.
   */
  settledUsage?: SettledUsage;
}

export function planPlacements(
  services: readonly SchedService[],
  nodes: readonly SchedNode[],
  opts: PlacementOptions,
): ServicePlacementChange[] {
  const defaultLostAfterMs = opts.defaultLostAfterMs ?? Number.POSITIVE_INFINITY;
  const memory = opts.skipSettled === false ? undefined : opts.settledUsage;
  const statesById = memory
    ? new NodeStates(memory.begin(services, nodes, defaultLostAfterMs), memory.nodes, (id) => memory.usageOf(id))
    : new NodeStates(
        [...nodes].sort((a, b) => compareStrings(a.id, b.id)),
        new Map(nodes.map((n) => [n.id, n])),
      );
  const plans = [...services].sort((a, b) => compareStrings(a.name, b.name)).map(newPlan);

  // Decide what stays before anything new is placed, so that every kept placement's reservation
  // is known up front. Every replica id met in a list not known to be distinct counts as seen, kept
  // or not: a duplicate is dropped. A new id must not reuse one whose container may still be
  // running somewhere: it is checked against the ids seen and its own service's list.
  const seenReplicaIds = new Set<string>();
  // A service whose ids were not seen (see keepReplicated): its own ids, gathered when it first
  // wants a new one.
  const ownIds = new Map<string, { known: KnownIds; made: Set<string> }>();
  const planOf = new Map(plans.map((plan) => [plan.service.name, plan]));
  // New ids are only made for services this pass judges, whose ids are all seen (or gathered) by
  // the time it places them; ids of other services cannot collide (see newReplicaId).
  const newId = (service: string): string => {
    const id = opts.newReplicaId(service);
    const plan = planOf.get(service);
    let own = ownIds.get(service);
    if (own === undefined && plan?.idsUnseen) ownIds.set(service, (own = { known: knownIdsOf(plan.service.placements), made: new Set() }));
    if (seenReplicaIds.has(id) || own?.known.has(id)) throw new Error(`invariant: newReplicaId returned "${id}", which is already in use`);
    seenReplicaIds.add(id);
    own?.made.add(id);
    return id;
  };
  const keep: KeepContext = {
    statesById,
    seenReplicaIds,
    trustUniqueIds: opts.skipSettled !== false,
    newId,
    defaultLostAfterMs,
    isRunning: opts.isRunning ?? (() => false),
    isUnhealthy: opts.isUnhealthy ?? (() => false),
  };
  for (const plan of plans) {
    if (plan.spec.mode === 'global') keepGlobal(plan, statesById, seenReplicaIds);
    else if (memory?.has(plan.service)) plan.settled = plan.counted = true;
    else if (opts.skipSettled !== false && isSettled(plan, keep)) plan.settled = true;
    else keepReplicated(plan, keep);
  }
  for (const plan of plans) {
    if (plan.counted) continue;
    if (plan.settled) {
      // Per node, not per replica: a settled service of 100,000 replicas costs one step per node,
      // once: the memory counts it in later passes until it or one of its nodes changes.
      const { countByNodeId } = summaryOf(plan.service.placements);
      for (const [nodeId, count] of countByNodeId) reserve(statesById.get(nodeId) as NodeState, plan.demand, count);
      memory?.add(plan, countByNodeId);
      continue;
    }
    if (plan.spec.mode === 'replicated') {
      // What keepReplicated kept with a node is placed (it gives pending replicas no node), and
      // countByNodeId counts exactly those: one step per node, not one per replica, for a large
      // service judged pass after pass during a failover.
      for (const [nodeId, count] of plan.countByNodeId) reserve(statesById.get(nodeId) as NodeState, plan.demand, count);
      reservePlacements(plan, plan.draining, statesById);
      continue;
    }
    reservePlacements(plan, plan.placements, statesById);
    reservePlacements(plan, plan.draining, statesById);
  }

  // Name order, so that competition for resources and ports is decided the same way every time.
  for (const plan of plans) {
    if (plan.settled) continue;
    if (plan.spec.mode === 'global') placeGlobal(plan, statesById, newId);
    else placeReplicated(plan, statesById, newId);
  }

  writePendingReasons(plans, statesById);
  memory?.end();

  const changes: ServicePlacementChange[] = [];
  for (const plan of plans) {
    if (plan.settled) continue;
    const placements = plan.draining.length === 0 ? plan.placements : [...plan.placements, ...plan.draining];
    if (!samePlacements(plan.service.placements, placements)) {
      // Kept ids were distinct, and new ones were checked against them (globals: one per node).
      if (plan.spec.mode === 'replicated') {
        markIdsUnique(placements);
        // Counted while planned: only a list without hand-overs (which countByNodeId leaves out).
        if (plan.draining.length === 0) rememberSummary(placements, plan.countByNodeId);
      }
      // The new list's ids are the old list's, less some, plus those made now.
      const own = ownIds.get(plan.service.name);
      const known = own?.known.with(own.made, placements.length);
      if (known) knownIds.set(placements, known);
      changes.push({ service: plan.service.name, placements });
    }
  }
  return changes;
}

function reservePlacements(plan: ServicePlan, list: readonly Placement[], statesById: NodeStates): void {
  for (const p of list) {
    if (p.nodeId === null) continue;
    const state = statesById.get(p.nodeId) as NodeState;
    reserve(state, plan.demand);
    if (p.pendingReason !== null) addUnsettled(state, plan.demand, 1);
  }
}

/**
 * Ids known to include every replica id of a placements array: the planner's new list gets those
 * of the list it came from, plus the ids made for it, as a layer on top (never by changing the
 * old one, which a failed write makes current again). During a failover a large service wants new
 * ids pass after pass, and a set of its 100,000 ids built each time was a sixth of the pass. Ids a
 * list has dropped stay known, which only makes the check stricter: a dropped replica may still
 * run on a lost node, so its id is best not reused.
 */
class KnownIds {
  private constructor(
    private readonly ids: ReadonlySet<string>,
    private readonly below: KnownIds | null,
    private readonly depth: number,
    private readonly size: number,
  ) {}

  static of(placements: readonly Placement[]): KnownIds {
    const ids = new Set<string>();
    for (const p of placements) ids.add(p.replicaId);
    return new KnownIds(ids, null, 0, ids.size);
  }

  has(id: string): boolean {
    return this.ids.has(id) || (this.below?.has(id) ?? false);
  }

  /** These plus `made`, for a list of `length` ids; null when the layers have grown too deep or too large to be worth it. */
  with(made: ReadonlySet<string>, length: number): KnownIds | null {
    const size = this.size + made.size;
    if (this.depth >= MAX_KNOWN_ID_LAYERS || size > 2 * length + 1024) return null;
    return made.size === 0 ? this : new KnownIds(made, this, this.depth + 1, size);
  }
}

/** Layers a lookup walks at most: a failover of many passes rebuilds the set now and then. */
const MAX_KNOWN_ID_LAYERS = 16;

const knownIds = new WeakMap<readonly Placement[], KnownIds>();

function knownIdsOf(placements: readonly Placement[]): KnownIds {
  let known = knownIds.get(placements);
  if (!known) knownIds.set(placements, (known = KnownIds.of(placements)));
  return known;
}

function samePlacements(before: readonly Placement[], after: readonly Placement[]): boolean {
  if (before.length !== after.length) return false;
  for (let i = 0; i < before.length; i++) {
    const a = before[i] as Placement;
    const b = after[i] as Placement;
    if (a.replicaId !== b.replicaId || a.nodeId !== b.nodeId || a.pendingReason !== b.pendingReason) return false;
    if ((a.movedFrom ?? null) !== (b.movedFrom ?? null) || (a.replacedBy ?? null) !== (b.replacedBy ?? null)) return false;
    if (a.revision !== b.revision || a.movedOnRequest !== b.movedOnRequest) return false;
  }
  return true;
}
