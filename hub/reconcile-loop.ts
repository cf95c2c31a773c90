import { randomBytes } from 'node:crypto';
import type { Dispatcher } from './dispatcher.js';
import { planPlacements } from './scheduler/placement.js';
import type { SchedNode, SchedService } from './scheduler/types.js';
import type { ServiceRecord, Store } from './store/store.js';

export interface LoopLogger {
  warn(obj: object, msg: string): void;
  error(obj: object, msg: string): void;
}

export interface HubReconcileLoopOptions {
  store: Store;
  dispatcher: Dispatcher;
  /** The nodes as the scheduler should see them now (liveness decides schedulable). */
  schedNodes: () => SchedNode[];
  defaultLostAfterMs: number;
  /** Whether a replica runs its current spec (ends the hand-over from a lost node). */
  isRunning: (replicaId: string) => boolean;
  /** Sees the services as committed after each pass. */
  afterPass?: (services: Iterable<ServiceRecord>) => void;
  logger: LoopLogger;
  /** A full pass even without triggers, so nothing depends on a trigger never being missed. */
  resyncIntervalMs?: number;
  retryDelayMs?: number;
}

export function newReplicaId(service: string): string {
  return `${service}.${randomBytes(5).toString('hex')}`;
}

/**
 * The hub's level-triggered loop: store snapshot -> pure placement -> commit -> publish targets.
 * Triggers (API writes, nodes coming and going, the resync timer) only mark it dirty; triggers
 * that arrive during a pass collapse into one more pass.
 */
export class HubReconcileLoop {
  private dirty = false;
  private running: Promise<void> | null = null;
  private resyncTimer: NodeJS.Timeout | null = null;
  private stopped = false;
  passes = 0;

  constructor(private readonly opts: HubReconcileLoopOptions) {}

  start(): void {
    this.resyncTimer = setInterval(() => this.markDirty(), this.opts.resyncIntervalMs ?? 30_000);
    this.resyncTimer.unref();
    this.markDirty();
  }

  async stop(): Promise<void> {
    this.stopped = true;
    if (this.resyncTimer) clearInterval(this.resyncTimer);
    await this.running;
  }

  markDirty(): void {
    if (this.stopped) return;
    this.dirty = true;
    if (!this.running) this.running = this.run().finally(() => (this.running = null));
  }

  /** Resolves when no pass is running or wanted (tests and benchmarks). */
  async idle(): Promise<void> {
    while (this.running) await this.running;
  }

  private async run(): Promise<void> {
    while (this.dirty && !this.stopped) {
      this.dirty = false;
      try {
        await this.pass();
      } catch (error) {
        // A pass never takes the hub down: log, wait, try the whole thing again.
        this.opts.logger.error({ err: error }, 'hub reconcile pass failed; retrying');
        await new Promise((r) => setTimeout(r, this.opts.retryDelayMs ?? 1000));
        this.dirty = true;
      }
    }
  }

  private async pass(): Promise<void> {
    this.passes++;
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
    });

    const writes: Array<Promise<void>> = [];
    for (const change of changes) {
      const before = store.getService(change.service);
      // Optimistic concurrency: the API changed or deleted this service while we planned; the
      // plan for it is stale, so plan again rather than overwrite the newer record.
      if (!before || before !== snapshot.get(change.service)) {
        this.dirty = true;
        continue;
      }
      const after: ServiceRecord = { ...before, placements: change.placements };
      writes.push(store.putService(after));
      dispatcher.serviceChanged(before, after);
    }
    // Placements are durable before any agent hears of them, so a hub restart never moves them.
    await Promise.all(writes);
    this.opts.afterPass?.(store.listServices());
    await dispatcher.publish();
  }
}
