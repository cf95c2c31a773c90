import type { Dispatcher } from './dispatcher.js';
import { isActive } from './rollout/rollout-planner.js';
import type { Rollouts, RolloutWrite } from './rollouts.js';
import { newReplicaId } from './replica-id.js';
import { summaryOf } from './scheduler/keep.js';
import { planPlacements } from './scheduler/placement.js';
import { SettledUsage } from './scheduler/settled-usage.js';
import type { SchedNode, SchedService } from './scheduler/types.js';
import type { ServiceRecord, Store } from './store/store.js';
import type { Logger } from '../shared/logger.js';

export interface HubReconcileLoopOptions {
  store: Store;
  dispatcher: Dispatcher;
  /** The nodes as the scheduler should see them now (liveness decides schedulable). */
  schedNodes: () => SchedNode[];
  defaultLostAfterMs: number;
  /** Whether a replica serves (ends a hand-over; see PlacementOptions). */
  isRunning: (replicaId: string) => boolean;
  /** Whether a replica is reported failing (scale-down removes it early). */
  isUnhealthy?: (replicaId: string) => boolean;
  /** Takes the next step of each rolling update in every pass; none: updates do not move. */
  rollouts?: Pick<Rollouts, 'step'>;
  /** Sees the service records a pass changed, once they are committed. */
  afterPass?: (changed: readonly ServiceRecord[]) => void;
  logger: Pick<Logger, 'warn' | 'error'>;
  /** A pass even without triggers, so nothing depends on a trigger never being missed. */
  resyncIntervalMs?: number;
  retryDelayMs?: number;
}

/**
 * Least time from the end of one pass to the start of the next: a burst of triggers (thousands of
 * agents saying hello after a hub restart) costs a few passes, not one per trigger.
 */
const MIN_PASS_GAP_MS = 200;

/**
 * The hub's level-triggered loop: store snapshot -> pure placement -> commit -> publish targets.
 * Triggers (API writes, nodes coming and going, the resync timer) only mark it dirty; a pass runs
 * from a timer, at most one at a time and spaced by MIN_PASS_GAP_MS, so triggers that arrive during
 * a pass or the gap after it collapse into one more pass.
 */
export class HubReconcileLoop {
  private dirty = false;
  private running: Promise<void> | null = null;
  private passTimer: NodeJS.Timeout | null = null;
  private lastPassEndMs = Number.NEGATIVE_INFINITY;
  private passDueMs = 0;
  private resyncTimer: NodeJS.Timeout | null = null;
  private stopped = false;
  /** The last pass threw: the next one waits retryDelayMs rather than MIN_PASS_GAP_MS. */
  private failed = false;
  /** Nodes became ready or unreachable since the last pass (see nodesChanged). */
  private nodesDirty = false;
  /** The last pass left every service settled (see everyServiceSettled); false until one ran. */
  private settled = false;
  /**
   * Judge every service, settled or not: at start (which also drops duplicate replica ids a
   * hand-edited store may hold) and after a failed pass. Otherwise settled services are counted only.
   */
  private judgeAll = true;
  passes = 0;
  /** Told how long each pass spent planning (metrics); a set, so that no reader takes another's place. */
  private readonly planListeners = new Set<(ms: number) => void>();
  /** What settled services reserve on each node, kept between passes so that they cost nothing until they change. */
  private readonly settledUsage = new SettledUsage();

  constructor(private readonly opts: HubReconcileLoopOptions) {}

  /** Calls `listener` with each pass's planning time until the returned function is called. */
  onPlan(listener: (ms: number) => void): () => void {
    this.planListeners.add(listener);
    return () => this.planListeners.delete(listener);
  }

  start(): void {
    this.resyncTimer = setInterval(() => this.markDirty(), this.opts.resyncIntervalMs ?? 30_000);
    this.resyncTimer.unref();
    this.markDirty();
  }

  async stop(): Promise<void> {
    this.stopped = true;
    if (this.resyncTimer) clearInterval(this.resyncTimer);
    if (this.passTimer) clearTimeout(this.passTimer);
    this.passTimer = null;
    await this.running;
  }

  /**
   * Asks for a pass. `withinMs` lets a trigger that is not urgent wait that long, gathering others
   * (hand-overs finishing one by one during a failover) into one pass.
   */
  markDirty(withinMs = 0): void {
    if (this.stopped) return;
    this.dirty = true;
    this.schedule(MIN_PASS_GAP_MS, withinMs);
  }

  /**
   * A node became ready or unreachable. That can only move replicas that are pending, handing
   * over, or global, so when the last pass left none of those the trigger costs nothing: a
   * reconnect storm of a settled fleet runs no passes at all.
   */
  nodesChanged(): void {
    if (this.stopped) return;
    this.nodesDirty = true;
    if (!this.settled) this.markDirty();
  }

  /** Resolves when no pass is running or wanted (tests and benchmarks). */
  async idle(): Promise<void> {
    while (this.running || this.passTimer) {
      if (this.running) await this.running;
      else await new Promise((r) => setTimeout(r, 10));
    }
  }

  private schedule(gapMs: number, delayMs = 0): void {
    if (this.running || this.stopped) return;
    const nowMs = performance.now();
    const dueMs = Math.max(this.lastPassEndMs + gapMs, nowMs + delayMs);
    // A pass already due sooner takes this trigger along; a more urgent trigger brings it forward.
    if (this.passTimer && this.passDueMs <= dueMs) return;
    if (this.passTimer) clearTimeout(this.passTimer);
    this.passDueMs = dueMs;
    this.passTimer = setTimeout(() => {
      this.passTimer = null;
      this.running = this.run().finally(() => {
        this.running = null;
        this.lastPassEndMs = performance.now();
        if (this.dirty) this.schedule(this.failed ? (this.opts.retryDelayMs ?? 1000) : MIN_PASS_GAP_MS);
      });
    }, dueMs - nowMs);
  }

  private async run(): Promise<void> {
    this.dirty = false;
    this.nodesDirty = false;
    this.failed = false;
    try {
      await this.pass();
    } catch (error) {
      // A pass never takes the hub down: log, wait, try the whole thing again.
      this.opts.logger.error({ err: error }, 'hub reconcile pass failed; retrying');
      this.failed = true;
      this.judgeAll = true;
      this.dirty = true;
    }
  }

  private async pass(): Promise<void> {
    this.passes++;
    const startedMs = performance.now();
    const judgeAll = this.judgeAll;
    this.judgeAll = false;
    const { store, dispatcher } = this.opts;
    const snapshot = new Map<string, ServiceRecord>();
    const services: SchedService[] = [];
    for (const record of store.listServices()) {
      snapshot.set(record.name, record);
      services.push({ name: record.name, spec: record.spec, placements: record.placements });
    }
    const changes = planPlacements(services, this.opts.schedNodes(), {
      newReplicaId,
      defaultLostAfterMs: this.opts.defaultLostAfterMs,
      isRunning: this.opts.isRunning,
      isUnhealthy: this.opts.isUnhealthy,
      skipSettled: !judgeAll,
      settledUsage: this.settledUsage,
    });
    const plannedMs = performance.now() - startedMs;
    for (const listener of this.planListeners) listener(plannedMs);

    // Rolling updates step on the placements this pass leaves: a batch replaces replicas where
    // they are now. Only services with an update going on are looked at.
    const placed = new Map(changes.map((c) => [c.service, c.placements]));
    const stepped = new Map<string, RolloutWrite>();
    if (this.opts.rollouts) {
      for (const record of snapshot.values()) {
        if (!isActive(record.rollout)) continue;
        const write = this.opts.rollouts.step(record, placed.get(record.name) ?? record.placements);
        if (write) stepped.set(record.name, write);
      }
    }
    // A step may add replicas to place (start-first) or end a batch: the next pass carries on.
    if (stepped.size > 0) this.dirty = true;

    const writes: Array<Promise<void>> = [];
    const committed: ServiceRecord[] = [];
    for (const name of new Set([...placed.keys(), ...stepped.keys()])) {
      const before = store.getService(name);
      // Optimistic concurrency: the API changed or deleted this service while we planned; the
      // plan for it is stale, so plan again rather than overwrite the newer record.
      if (!before || before !== snapshot.get(name)) {
        this.dirty = true;
        continue;
      }
      const step = stepped.get(name);
      const after: ServiceRecord = step
        ? { ...before, placements: step.placements, rollout: step.rollout }
        : { ...before, placements: placed.get(name) as ServiceRecord['placements'] };
      // The dispatcher hears of it from the store, and of its undo should the write fail (then
      // the next pass plans again).
      writes.push(store.putService(after));
      committed.push(after);
    }
    // Placements are durable before any agent hears of them, so a hub restart never moves them.
    await Promise.all(writes);
    this.opts.afterPass?.(committed);
    this.settled = everyServiceSettled(store.listServices());
    // Node changes seen while this pass ran were judged against the old answer: look again.
    if (this.nodesDirty && !this.settled) this.dirty = true;
    await dispatcher.publish();
  }
}

/**
 * Whether every service is replicated with exactly its replicas placed, none pending or handing
 * over: then nodes coming and going move nothing until one is lost. The placements' summary is
 * kept per placements array, so a service unchanged since the last pass costs a lookup.
 */
function everyServiceSettled(services: Iterable<ServiceRecord>): boolean {
  for (const s of services) {
    if (s.spec.mode !== 'replicated' || s.placements.length !== s.spec.replicas) return false;
    if (!summaryOf(s.placements).allPlaced) return false;
  }
  return true;
}
