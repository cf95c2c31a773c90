import { isDiskLow, LOW_DISK, type DiskUsage, type NodeConditions } from '../shared/protocol.js';
import { grownColumn, grownTimes, NodeSlots } from './node-slots.js';

/** The conditions that are worth a count, a warning and a log line; each a bit of a node's flags. */
export const CONDITION_NAMES = ['engine_unavailable', 'target_cache_stale', 'data_disk_low', 'engine_disk_low'] as const;
export type ConditionName = (typeof CONDITION_NAMES)[number];

const BIT: Record<ConditionName, number> = { engine_unavailable: 1, target_cache_stale: 2, data_disk_low: 4, engine_disk_low: 8 };

function flagsOf(c: NodeConditions | null): number {
  if (c === null) return 0;
  let flags = 0;
  if (!c.engine.available) flags |= BIT.engine_unavailable;
  if (!c.targetCache.current) flags |= BIT.target_cache_stale;
  if (isDiskLow(c.dataDisk)) flags |= BIT.data_disk_low;
  if (isDiskLow(c.engineDisk)) flags |= BIT.engine_disk_low;
  return flags;
}

/**
 * The engine and target-cache parts nearly every node reports (all well, no error), one object
 * each for all the nodes that report them: the decoded frame's own would cost every connected
 * node two more objects. Frozen, as they are shared.
 */
const ENGINE_AVAILABLE: NodeConditions['engine'] = Object.freeze({ available: true, error: null });
const TARGET_CACHE_CURRENT: NodeConditions['targetCache'] = Object.freeze({ current: true, error: null });

/** A report's engine and target-cache parts, the shared ones when usual (the frame's schema allows no other keys in them). */
const usualEngine = (e: NodeConditions['engine']) => (e.available && e.error === null ? ENGINE_AVAILABLE : e);
const usualTargetCache = (t: NodeConditions['targetCache']) => (t.current && t.error === null ? TARGET_CACHE_CURRENT : t);

/**
 * What a node last said of its conditions; kept while it is away, with when it said it. Made at
 * each read (views and state lines, never per frame) from the table's columns.
 */
export class NodeConditionsEntry {
  constructor(
    readonly engine: NodeConditions['engine'],
    readonly targetCache: NodeConditions['targetCache'],
    readonly dataDisk: NodeConditions['dataDisk'],
    readonly engineDisk: NodeConditions['engineDisk'],
    /** Hub clock time of the report. */
    readonly reportedAtMs: number,
    /** Which CONDITION_NAMES hold, as bits. */
    readonly flags: number,
  ) {}

  /** The conditions as the node said them. */
  get conditions(): NodeConditions {
    return { engine: this.engine, targetCache: this.targetCache, dataDisk: this.dataDisk, engineDisk: this.engineDisk };
  }
}

/** One condition that began (`active`) or ended with a report. */
export interface ConditionTransition {
  condition: ConditionName;
  active: boolean;
}

/**
 * Every node's last reported conditions. Soft state, like heartbeats: memory only, replaced whole
 * by each report (a hello or a `conditions` frame), O(1) per report; a version 1 agent reports
 * none. Held for each node that has reported, dropped when the node is forgotten; in columns by
 * node slot (see node-slots.ts), shared with the failure detector, rather than an object and a
 * map entry per node.
 */
export class NodeConditionsTable {
  private readonly slots: NodeSlots;
  private readonly bit: number;
  private engine: Array<NodeConditions['engine'] | undefined> = [];
  private targetCache: Array<NodeConditions['targetCache'] | undefined> = [];
  private dataDisk: Array<NodeConditions['dataDisk'] | undefined> = [];
  private engineDisk: Array<NodeConditions['engineDisk'] | undefined> = [];
  private reportedAtMs = new Float64Array(0);
  /** Which CONDITION_NAMES hold, as bits: compared per report in O(1). */
  private flags = new Uint8Array(0);

  constructor(slots: NodeSlots = new NodeSlots()) {
    this.slots = slots;
    this.bit = slots.register((capacity) => {
      this.reportedAtMs = grownTimes(this.reportedAtMs, capacity);
      this.flags = grownColumn(this.flags, capacity);
    });
  }

  get(nodeId: string): NodeConditionsEntry | undefined {
    const slot = this.slotOf(nodeId);
    if (slot < 0) return undefined;
    return new NodeConditionsEntry(this.engine[slot]!, this.targetCache[slot]!, this.dataDisk[slot]!, this.engineDisk[slot]!, this.reportedAtMs[slot]!, this.flags[slot]!);
  }

  /** Replaces the node's conditions (null: it reports none) and says which conditions changed. */
  report(nodeId: string, conditions: NodeConditions | null, nowMs: number): ConditionTransition[] {
    let slot = this.slotOf(nodeId);
    const before = slot < 0 ? 0 : this.flags[slot]!;
    const flags = flagsOf(conditions);
    if (conditions === null) this.forget(nodeId);
    else {
      if (slot < 0) slot = this.slots.hold(nodeId, this.bit);
      this.engine[slot] = usualEngine(conditions.engine);
      this.targetCache[slot] = usualTargetCache(conditions.targetCache);
      this.dataDisk[slot] = conditions.dataDisk;
      this.engineDisk[slot] = conditions.engineDisk;
      this.reportedAtMs[slot] = nowMs;
      this.flags[slot] = flags;
    }
    const changed = before ^ flags;
    if (changed === 0) return [];
    const out: ConditionTransition[] = [];
    for (const condition of CONDITION_NAMES) if (changed & BIT[condition]) out.push({ condition, active: (flags & BIT[condition]) !== 0 });
    return out;
  }

  forget(nodeId: string): void {
    const slot = this.slotOf(nodeId);
    if (slot < 0) return;
    // Nothing of the node's report stays reachable from a free slot.
    this.engine[slot] = this.targetCache[slot] = this.dataDisk[slot] = this.engineDisk[slot] = undefined;
    this.flags[slot] = 0;
    this.slots.release(slot, this.bit);
  }

  /** Nodes per condition among `nodeIds` (metrics, at scrape: O(nodes), nothing per frame). */
  counts(nodeIds: Iterable<string>): Record<ConditionName, number> {
    const counts: Record<ConditionName, number> = { engine_unavailable: 0, target_cache_stale: 0, data_disk_low: 0, engine_disk_low: 0 };
    for (const nodeId of nodeIds) {
      const slot = this.slotOf(nodeId);
      const flags = slot < 0 ? 0 : this.flags[slot]!;
      if (flags === 0) continue;
      for (const condition of CONDITION_NAMES) if (flags & BIT[condition]) counts[condition]++;
    }
    return counts;
  }

  /** The node's slot if this table holds it, else -1. */
  private slotOf(nodeId: string): number {
    return this.slots.slotOf(nodeId, this.bit);
  }
}

const GIB = 1024 ** 3;

/** "min(10% of it, 2 GiB)": when a disk is low (see LOW_DISK), in words. */
export const LOW_DISK_TEXT = `min(${LOW_DISK.freeShare * 100}% of it, ${LOW_DISK.freeCapBytes / GIB} GiB) free`;

/** Why a node whose engine is away is not ready: the node view's reason, and its warning's start. */
export function engineUnavailableText(engine: NodeConditions['engine'] | null | undefined): string {
  return `container engine unavailable${engine?.error ? `: ${engine.error}` : ''}`;
}

function bytesText(bytes: number): string {
  if (bytes >= GIB) return `${(bytes / GIB).toFixed(1)} GiB`;
  return `${(bytes / 1024 ** 2).toFixed(1)} MiB`;
}

/** "engine disk low: 1.2 GiB free of 29.8 GiB (4%)" */
export function diskWarning(label: string, disk: DiskUsage): string {
  const percent = disk.totalBytes === 0 ? 0 : Math.floor((disk.freeBytes / disk.totalBytes) * 100);
  return `${label} low: ${bytesText(disk.freeBytes)} free of ${bytesText(disk.totalBytes)} (${percent}%)`;
}

/** What an operator should know about the node's conditions, one human-readable line each. */
export function conditionWarnings(c: NodeConditions | null): string[] {
  if (c === null) return [];
  const out: string[] = [];
  if (!c.engine.available) out.push(`${engineUnavailableText(c.engine)}; no new replicas are placed here`);
  if (!c.targetCache.current) out.push(`target not cached on the device${c.targetCache.error ? `: ${c.targetCache.error}` : ''}; after a reboot without the hub it would run an older target`);
  if (c.dataDisk && isDiskLow(c.dataDisk)) out.push(diskWarning('data disk', c.dataDisk));
  if (c.engineDisk && isDiskLow(c.engineDisk)) out.push(diskWarning('engine disk', c.engineDisk));
  return out;
}
