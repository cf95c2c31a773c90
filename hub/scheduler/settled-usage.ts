/**
 * Node usage kept between passes: what settled services reserve on each node, so that a pass
 * costs what changed, not what exists. A settled service of 100,000 replicas on 10,000 nodes is
 * counted once, when it settles, and then costs nothing until its placements or its spec change,
 * or one of its nodes changes in a way that may unsettle it (see CountedService). A node that is
 * down but not yet lost, reported a little longer every pass, does not: a fleet almost always
 * has some device away.
 *
 * Only a cache: every entry is keyed by the identity of immutable inputs (a service's placements
 * array and spec object, as summaryOf is) or checked against what it depends on of its nodes, so a
 * pass given one answers exactly as a pass without it (the tests compare both over random
 * changes). Recomputing a service's reservations from its nodes every pass was the alternative;
 * it walks every node of every settled service, every pass.
 *
 * One per hub: a pass reads and updates it, so two planners must not share one.
 */
import { MIN_PROTOCOL_VERSION } from '../../shared/protocol.js';
import type { NormalizedSpec } from '../spec/service-spec.js';
import { FEATURE_PROTOCOL_VERSIONS } from './feasibility.js';
import { reserve, type Demand, type NodeUsage } from './node-usage.js';
import { compareStrings } from './order.js';
import type { ServicePlan } from './service-plan.js';
import type { Placement, SchedNode, SchedService } from './types.js';

/**
 * A settled service whose reservations are in `usageByNodeId`, with what its being settled
 * depends on (see isSettled): its nodes existing, their constraint fields when it has
 * constraints, and none of them down for its lostAfterMs when it reschedules. Nothing else about
 * a node matters to it: what it reserves is its demand times its replicas, whatever the node.
 */
interface CountedService {
  placements: readonly Placement[];
  spec: NormalizedSpec;
  demand: Demand;
  countByNodeId: ReadonlyMap<string, number>;
  constrained: boolean;
  /** Null when the service waits for a lost node rather than moving its replicas. */
  lostAfterMs: number | null;
}

/** How a node changed since the last pass, as far as a counted service may care. */
interface NodeChange {
  /** A field constraints read changed: unsettles constrained services. */
  constraintFields: boolean;
  /** The node started draining: unsettles every service on it (its replicas move off). */
  draining: boolean;
  /**
   * Down longer than at the last pass, across some counted service's lostAfterMs: from (exclusive)
   * the last pass's downForMs to (inclusive) this one's; empty (+inf, -inf) when it crosses none.
   */
  downFromMs: number;
  downToMs: number;
}

export class SettledUsage {
  /** The nodes of the last pass, as given: a node that differs since may unsettle a service. */
  private nodesById = new Map<string, SchedNode>();
  /** Services this pass found settled; counted in `usageByNodeId` when the pass ends. */
  private added: Array<[string, CountedService]> = [];
  /** The last pass's nodes in id order: reused while no node comes or goes. */
  private order: SchedNode[] = [];
  private defaultLostAfterMs: number | null = null;
  private counted = new Map<string, CountedService>();
  private usageByNodeId = new Map<string, NodeUsage>();
  /**
   * How many counted services reschedule after each lostAfterMs: a node that stays down costs
   * nothing until its downForMs crosses one of these (a handful: the default and a few overrides).
   */
  private lostAfterMsUses = new Map<number, number>();
  private recountedNames: string[] = [];
  /**
   * The last known protocol version of nodes whose version is unknown now (away, or the hub just
   * started): the version they come back with is judged against it. Bounded by the nodes.
   */
  private knownVersionById = new Map<string, number>();

  /** Names of the services whose reservations the last pass counted (tests watch the reuse). */
  get recounted(): readonly string[] {
    return this.recountedNames;
  }

  /**
   * Starts a pass: forgets services that changed or went, and those that one of their nodes may
   * have unsettled (gone, no longer matching, lost); returns the nodes in id order.
   */
  begin(services: readonly SchedService[], nodes: readonly SchedNode[], defaultLostAfterMs: number): SchedNode[] {
    this.recountedNames = [];
    // A pass that threw left these half done: they are found settled again.
    this.added = [];
    if (defaultLostAfterMs !== this.defaultLostAfterMs) {
      // Whether a node counts as lost depends on it: judge every service again.
      this.defaultLostAfterMs = defaultLostAfterMs;
      this.counted.clear();
      this.usageByNodeId.clear();
      this.lostAfterMsUses.clear();
    }
    const goneIds = new Set<string>();
    const changeById = new Map<string, NodeChange>();
    const nodesById = new Map<string, SchedNode>();
    for (const node of nodes) {
      nodesById.set(node.id, node);
      const before = this.nodesById.get(node.id);
      // A node new since the last pass holds no counted service; one given as the same object is
      // unchanged (the hub keeps the objects of usable nodes whose records did not change).
      if (!before || before === node) continue;
      const change = this.changeOf(before, node);
      if (change) changeById.set(node.id, change);
    }
    let sameIds = nodesById.size === this.nodesById.size;
    for (const id of this.nodesById.keys()) {
      if (nodesById.has(id)) continue;
      goneIds.add(id);
      this.knownVersionById.delete(id);
      sameIds = false;
    }
    this.order = sameIds
      ? this.order.map((n) => nodesById.get(n.id) as SchedNode)
      : [...nodes].sort((a, b) => compareStrings(a.id, b.id));
    this.nodesById = nodesById;

    const byName = new Map(services.map((s) => [s.name, s]));
    for (const [name, entry] of this.counted) {
      const service = byName.get(name);
      const stale =
        !service ||
        service.placements !== entry.placements ||
        service.spec !== entry.spec ||
        touchesAny(entry.countByNodeId, goneIds) ||
        unsettledBy(entry, changeById);
      if (stale) this.forget(name, entry);
    }
    return this.order;
  }

  /**
   * What of a node's change may unsettle a counted service, or null when nothing can: its
   * schedulable flag and resources never do, nor a cordon, nor a longer downForMs that crosses no
   * counted service's lostAfterMs; a drain does.
   */
  private changeOf(before: SchedNode, node: SchedNode): NodeChange | null {
    const constraintFields = !sameConstraintFields(before, node) || this.protocolTierChanged(before, node);
    const draining = node.scheduling === 'draining' && before.scheduling !== 'draining';
    let downFromMs = Number.POSITIVE_INFINITY;
    let downToMs = Number.NEGATIVE_INFINITY;
    if (node.downForMs !== null && (before.downForMs === null || node.downForMs > before.downForMs)) {
      const from = before.downForMs ?? Number.NEGATIVE_INFINITY;
      for (const lostAfterMs of this.lostAfterMsUses.keys()) {
        if (from < lostAfterMs && lostAfterMs <= node.downForMs) {
          downFromMs = from;
          downToMs = node.downForMs;
          break;
        }
      }
    }
    if (!constraintFields && !draining && downToMs === Number.NEGATIVE_INFINITY) return null;
    return { constraintFields, draining, downFromMs, downToMs };
  }

  /**
   * Whether the node's agent became known to be too old for something it was not before (a health
   * check, a restart policy), or the reverse: services that need a newer protocol depend on that
   * as on constraint fields (see refusesDemand). An unknown version (away) changes nothing: the
   * version it comes back with is compared with the last known one, so that an agent reconnecting
   * with its own version unsettles nothing, while one that comes back older does.
   */
  private protocolTierChanged(before: SchedNode, node: SchedNode): boolean {
    const last = before.protocolVersion ?? this.knownVersionById.get(node.id);
    const now = node.protocolVersion;
    if (now === undefined || now === null) {
      if (last !== undefined && last !== null) this.knownVersionById.set(node.id, last);
      return false;
    }
    this.knownVersionById.delete(node.id);
    return last !== undefined && last !== null && tooOldFor(last) !== tooOldFor(now);
  }

  /** The nodes of the pass begun, by id. */
  get nodes(): ReadonlyMap<string, SchedNode> {
    return this.nodesById;
  }

  /** Whether the service is settled and its reservations are already counted. */
  has(service: SchedService): boolean {
    const entry = this.counted.get(service.name);
    return entry !== undefined && entry.placements === service.placements && entry.spec === service.spec;
  }

  /** What settled services reserve on the node at the start of the pass, or undefined when nothing. */
  usageOf(nodeId: string): Readonly<NodeUsage> | undefined {
    return this.usageByNodeId.get(nodeId);
  }

  /**
   * Remembers a service this pass found settled (see isSettled) with its replicas per node. Counted
   * when the pass ends: node states made later in the pass start from usageOf, which must not
   * hold what the pass reserves itself.
   */
  add(plan: ServicePlan, countByNodeId: ReadonlyMap<string, number>): void {
    const { service, spec } = plan;
    this.added.push([
      service.name,
      {
        placements: service.placements,
        spec,
        demand: plan.demand,
        countByNodeId,
        // A service that needs a newer protocol depends on its nodes' versions as on constraint fields.
        constrained: plan.constraints.length > 0 || plan.demand.minProtocolVersion > MIN_PROTOCOL_VERSION,
        lostAfterMs: spec.onNodeLost === 'reschedule' ? (spec.lostAfterMs ?? (this.defaultLostAfterMs as number)) : null,
      },
    ]);
    this.recountedNames.push(service.name);
  }

  /** Ends a pass: the services it found settled count from the next one on. */
  end(): void {
    for (const [name, entry] of this.added) this.count(name, entry);
    this.added = [];
  }

  private count(name: string, entry: CountedService): void {
    // Names are unique in the hub's store; should one repeat, its earlier entry must not stay
    // counted under the later one.
    const earlier = this.counted.get(name);
    if (earlier) this.forget(name, earlier);
    this.counted.set(name, entry);
    if (entry.lostAfterMs !== null) this.lostAfterMsUses.set(entry.lostAfterMs, (this.lostAfterMsUses.get(entry.lostAfterMs) ?? 0) + 1);
    for (const [nodeId, count] of entry.countByNodeId) {
      let usage = this.usageByNodeId.get(nodeId);
      if (!usage) {
        usage = { usedCpuMillis: 0, usedMemoryBytes: 0, hostPortUses: null, placementCount: 0 };
        this.usageByNodeId.set(nodeId, usage);
      }
      reserve(usage, entry.demand, count);
    }
  }

  private forget(name: string, entry: CountedService): void {
    this.counted.delete(name);
    if (entry.lostAfterMs !== null) {
      const uses = (this.lostAfterMsUses.get(entry.lostAfterMs) as number) - 1;
      if (uses === 0) this.lostAfterMsUses.delete(entry.lostAfterMs);
      else this.lostAfterMsUses.set(entry.lostAfterMs, uses);
    }
    for (const [nodeId, count] of entry.countByNodeId) {
      const usage = this.usageByNodeId.get(nodeId) as NodeUsage;
      reserve(usage, entry.demand, -count);
      // Bounded by the nodes in use: a node nothing settled holds has no entry.
      if (usage.placementCount === 0) this.usageByNodeId.delete(nodeId);
    }
  }
}

/** Whether one of the entry's nodes changed in a way that may unsettle it (see isSettled). */
function unsettledBy(entry: CountedService, changeById: ReadonlyMap<string, NodeChange>): boolean {
  if (changeById.size === 0) return false;
  const hit = (change: NodeChange): boolean =>
    change.draining ||
    (entry.constrained && change.constraintFields) ||
    (entry.lostAfterMs !== null && change.downFromMs < entry.lostAfterMs && entry.lostAfterMs <= change.downToMs);
  if (changeById.size <= entry.countByNodeId.size) {
    for (const [id, change] of changeById) if (entry.countByNodeId.has(id) && hit(change)) return true;
    return false;
  }
  for (const id of entry.countByNodeId.keys()) {
    const change = changeById.get(id);
    if (change && hit(change)) return true;
  }
  return false;
}

/**
 * How many of the protocol's container features an agent of this version is too old for (health
 * checks, restart policies, mounts): a change of it changes which services the node can run.
 */
function tooOldFor(version: number): number {
  return FEATURE_PROTOCOL_VERSIONS.filter((v) => version < v).length;
}

function touchesAny(countByNodeId: ReadonlyMap<string, number>, nodeIds: ReadonlySet<string>): boolean {
  if (nodeIds.size === 0) return false;
  if (nodeIds.size <= countByNodeId.size) {
    for (const id of nodeIds) if (countByNodeId.has(id)) return true;
    return false;
  }
  for (const id of countByNodeId.keys()) if (nodeIds.has(id)) return true;
  return false;
}

/** What constraints read from a node (see ConstraintSubject); labels by value (the hub rebuilds nodes each pass). */
function sameConstraintFields(a: SchedNode, b: SchedNode): boolean {
  if (a.name !== b.name) return false;
  if (a.facts !== b.facts) {
    if (a.facts === null || b.facts === null) return false;
    const fa = a.facts;
    const fb = b.facts;
    if (fa.hostname !== fb.hostname || fa.arch !== fb.arch || fa.os !== fb.os) return false;
  }
  if (a.labels !== b.labels) {
    const ka = Object.keys(a.labels);
    if (ka.length !== Object.keys(b.labels).length) return false;
    for (const k of ka) if (a.labels[k] !== b.labels[k]) return false;
  }
  return true;
}
