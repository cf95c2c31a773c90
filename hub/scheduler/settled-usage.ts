/**
 * Node usage kept between passes: what settled services reserve on each node, so that a pass
 * costs what changed, not what exists. A settled service of 100,000 replicas on 10,000 nodes is
 * counted once, when it settles, and then costs nothing until its placements, its spec or one of
 * its nodes change.
 *
 * Only a cache: every entry is keyed by the identity of immutable inputs (a service's placements
 * array and spec object, as summaryOf is) or checked against the node it was derived from, so a
 * pass given one answers exactly as a pass without it (the tests compare both over random
 * changes). Recomputing a service's reservations from its nodes every pass was the alternative;
 * it walks every node of every settled service, every pass.
 *
 * One per hub: a pass reads and updates it, so two planners must not share one.
 */
import type { NormalizedSpec } from '../../shared/spec.js';
import { reserve, type NodeUsage } from './node-usage.js';
import { compareStrings } from './order.js';
import type { ServicePlan } from './service-plan.js';
import type { Placement, SchedNode, SchedService } from './types.js';

/** A settled service whose reservations are in `usageByNodeId`. */
interface CountedService {
  placements: readonly Placement[];
  spec: NormalizedSpec;
  plan: Pick<ServicePlan, 'demand'>;
  countByNodeId: ReadonlyMap<string, number>;
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
  /** Names of the services whose reservations the last pass counted (tests watch the reuse). */
  recounted: string[] = [];

  /**
   * Starts a pass: forgets services that changed or went, and those on a node that changed (it may
   * have been lost, or stopped matching); returns the nodes in id order.
   */
  begin(services: readonly SchedService[], nodes: readonly SchedNode[], defaultLostAfterMs: number): SchedNode[] {
    this.recounted = [];
    // A pass that threw left these half done: they are found settled again.
    this.added = [];
    if (defaultLostAfterMs !== this.defaultLostAfterMs) {
      // Whether a node counts as lost depends on it: judge every service again.
      this.defaultLostAfterMs = defaultLostAfterMs;
      this.counted.clear();
      this.usageByNodeId.clear();
    }
    const changedNodeIds = new Set<string>();
    const nodesById = new Map<string, SchedNode>();
    for (const node of nodes) {
      nodesById.set(node.id, node);
      const before = this.nodesById.get(node.id);
      if (!before || !sameNode(before, node)) changedNodeIds.add(node.id);
    }
    let sameIds = nodesById.size === this.nodesById.size;
    for (const id of this.nodesById.keys()) {
      if (nodesById.has(id)) continue;
      changedNodeIds.add(id);
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
        touchesAny(entry.countByNodeId, changedNodeIds);
      if (stale) this.forget(name, entry);
    }
    return this.order;
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
    this.added.push([plan.service.name, { placements: plan.service.placements, spec: plan.service.spec, plan, countByNodeId }]);
    this.recounted.push(plan.service.name);
  }

  /** Ends a pass: the services it found settled count from the next one on. */
  end(): void {
    for (const [name, entry] of this.added) this.count(name, entry);
    this.added = [];
  }

  private count(name: string, entry: CountedService): void {
    this.counted.set(name, entry);
    for (const [nodeId, count] of entry.countByNodeId) {
      let usage = this.usageByNodeId.get(nodeId);
      if (!usage) {
        usage = { usedCpuMillis: 0, usedMemoryBytes: 0, hostPortUses: null, placementCount: 0 };
        this.usageByNodeId.set(nodeId, usage);
      }
      reserve(usage, entry.plan.demand, count);
    }
  }

  private forget(name: string, entry: CountedService): void {
    this.counted.delete(name);
    for (const [nodeId, count] of entry.countByNodeId) {
      const usage = this.usageByNodeId.get(nodeId) as NodeUsage;
      reserve(usage, entry.plan.demand, -count);
      // Bounded by the nodes in use: a node nothing settled holds has no entry.
      if (usage.placementCount === 0) this.usageByNodeId.delete(nodeId);
    }
  }
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

/** Everything placement reads from a node; facts and labels by value (the hub rebuilds nodes each pass). */
function sameNode(a: SchedNode, b: SchedNode): boolean {
  if (a.name !== b.name || a.schedulable !== b.schedulable || a.downForMs !== b.downForMs) return false;
  if (a.facts !== b.facts) {
    if (a.facts === null || b.facts === null) return false;
    const fa = a.facts;
    const fb = b.facts;
    if (fa.hostname !== fb.hostname || fa.arch !== fb.arch || fa.os !== fb.os || fa.cpus !== fb.cpus || fa.memoryBytes !== fb.memoryBytes) {
      return false;
    }
  }
  if (a.labels !== b.labels) {
    const ka = Object.keys(a.labels);
    if (ka.length !== Object.keys(b.labels).length) return false;
    for (const k of ka) if (a.labels[k] !== b.labels[k]) return false;
  }
  return true;
}
