import type { ContainerSpec, ValueFile } from '../../shared/container-spec.js';
import type { AssignedReplica, TargetFrame } from '../../shared/protocol.js';
import type { Logger } from '../../shared/logger.js';
import type { ContainerMount, ContainerRuntime } from '../runtime/container-runtime.js';
import { resolveEnv } from './env-from.js';
import { NodeValues } from './node-values.js';
import type { ValueFileStore } from './value-file-store.js';

/** How often files kept for containers that are not in the target (an update's outdated ones) are looked at again. */
export const VALUE_SWEEP_INTERVAL_MS = 5_000;

export interface ValueDeliveryOptions {
  nodeId: string;
  /** Where the engine says what each container mounts. */
  runtime: Pick<ContainerRuntime, 'listContainers'>;
  /** Where the files go; null: nowhere (a replica that mounts a config or secret fails; env still works). */
  stores: { secrets: ValueFileStore; configs: ValueFileStore } | null;
  logger: Pick<Logger, 'info' | 'warn' | 'error'>;
  sweepIntervalMs?: number;
}

/**
 * The configs and secrets of this node's target, on their way into its containers: the values
 * the target carried (in memory, replaced by each target), their files (written for every
 * replica of the target as it comes, so that a container the engine restarts finds its files),
 * and what a new container mounts of them and reads of them in its environment.
 *
 * Files go level-triggered: a sweep removes every file that neither the target nor any
 * container the engine lists names. A container still there (an outdated one serving during an
 * update) keeps its files; while one does, the sweep comes back every sweepIntervalMs.
 */
export class ValueDelivery {
  private readonly values = new NodeValues();
  private target: { generation: number; replicas: AssignedReplica[]; provisional: boolean } | null = null;
  /** File writes and sweeps, one at a time, in order. */
  private work: Promise<void> = Promise.resolve();
  /**
   * The writes and sweep queued for the newest target, not begun yet: targets that come meanwhile
   * join it (it reads the target when it begins), so a burst of targets queues one, not one each.
   */
  private queuedRefresh: Promise<void> | null = null;
  private sweepTimer: NodeJS.Timeout | null = null;
  private stopped = false;
  private readonly sweepIntervalMs: number;

  constructor(private readonly opts: ValueDeliveryOptions) {
    this.sweepIntervalMs = opts.sweepIntervalMs ?? VALUE_SWEEP_INTERVAL_MS;
  }

  /** Makes the stores' dirs (the secrets' tmpfs comes with the first secret); what fails is logged, and said again by each replica it fails. */
  async prepare(): Promise<void> {
    const stores = this.opts.stores;
    if (!stores) return;
    for (const store of [stores.secrets, stores.configs]) {
      await store.prepare();
      if (store.unusable !== null) this.opts.logger.error({ dir: store.dir, err: store.unusable }, `no ${store.source} file can be written: replicas that mount one fail until this is fixed`);
    }
  }

  /**
   * The target's values replace the ones held, at once (a create that follows finds them); the
   * files of its replicas are written and the sweep runs behind. Older generations are ignored
   * as the reconcile loop ignores them, but for a provisional target (the cache), which any
   * target of the hub replaces. `missingWhy`: what to tell of a value the target names but did
   * not carry (a cache that kept no secrets). Resolves once the files are written (never
   * rejects: a file that cannot be written is logged, and is its replica's error).
   */
  setTarget(frame: TargetFrame, opts: { provisional?: boolean; missingWhy?: string } = {}): Promise<void> {
    const previous = this.target;
    if (previous && frame.generation < previous.generation && !previous.provisional) return Promise.resolve();
    this.target = { generation: frame.generation, replicas: frame.replicas, provisional: opts.provisional === true };
    this.values.replace(frame.values, opts.missingWhy);
    if (this.queuedRefresh) return this.queuedRefresh;
    let markWritten = () => {};
    const written = new Promise<void>((resolve) => (markWritten = resolve));
    this.queuedRefresh = written;
    void this.enqueue(async () => {
      this.queuedRefresh = null;
      try {
        await this.writeFiles(this.target?.replicas ?? []);
      } finally {
        markWritten();
      }
      await this.sweep();
    });
    return written;
  }

  /** The read-only binds of the files a container of `spec` mounts, each written if it is not there yet. */
  async fileMountsOf(spec: ContainerSpec): Promise<ContainerMount[]> {
    const mounts: ContainerMount[] = [];
    for (const f of spec.files ?? []) mounts.push({ type: 'bind', source: await this.fileOf(f), target: f.target, readOnly: true });
    return mounts;
  }

  /** The whole environment of a container of `spec` (see resolveEnv). */
  envOf(spec: ContainerSpec): Record<string, string> {
    return resolveEnv(spec, this.values);
  }

  /** How many values the node holds now (those of its target). */
  get heldCount(): number {
    return this.values.size;
  }

  /** Resolves once the file writes and sweeps asked for so far are done (tests, stop). */
  async settled(): Promise<void> {
    let seen: Promise<void>;
    do {
      seen = this.work;
      await seen;
    } while (seen !== this.work);
  }

  async stop(): Promise<void> {
    this.stopped = true;
    if (this.sweepTimer) clearTimeout(this.sweepTimer);
    this.sweepTimer = null;
    await this.settled();
  }

  private async fileOf(f: ValueFile): Promise<string> {
    const data = this.values.require(f);
    const stores = this.opts.stores;
    if (!stores) throw new Error(`cannot mount ${f.source} ${f.name}: this agent keeps no files of configs and secrets`);
    return (f.source === 'secret' ? stores.secrets : stores.configs).write(f, data);
  }

  /** The files of the target's replicas whose values are here; one that cannot be written is its replica's error. */
  private async writeFiles(replicas: readonly AssignedReplica[]): Promise<void> {
    if (!this.opts.stores) return;
    for (const r of replicas) {
      for (const f of r.container.files ?? []) {
        if (this.stopped) return;
        if (this.values.get(f) === undefined) continue;
        try {
          await this.fileOf(f);
        } catch (err) {
          this.opts.logger.warn({ replicaId: r.replicaId, err: (err as Error).message }, 'could not write the file of a config or secret');
        }
      }
    }
  }

  /** The file paths the current target names. */
  private targetFiles(): Set<string> {
    const stores = this.opts.stores;
    const files = new Set<string>();
    if (!stores) return files;
    for (const r of this.target?.replicas ?? []) {
      for (const f of r.container.files ?? []) files.add((f.source === 'secret' ? stores.secrets : stores.configs).pathOf(f));
    }
    return files;
  }

  /**
   * Removes the files nothing names: not the target, not a container the engine lists. The engine
   * is asked only when a file is held that the target does not name: a node whose files all
   * belong to its target costs no listing.
   */
  private async sweep(): Promise<void> {
    const stores = this.opts.stores;
    if (!stores || this.stopped) return;
    if (this.sweepTimer) clearTimeout(this.sweepTimer);
    this.sweepTimer = null;
    let keptForContainers = false;
    try {
      const held = [...(await stores.secrets.held()), ...(await stores.configs.held())];
      const unnamed = held.filter((file) => !this.targetFiles().has(file));
      if (unnamed.length === 0) return;
      const listed = await this.opts.runtime.listContainers(this.opts.nodeId);
      const mounted = new Set(listed.flatMap((c) => c.bindSources ?? []));
      // Read again after the listing: a target that came meanwhile may name a file again.
      const named = this.targetFiles();
      for (const file of unnamed) {
        if (named.has(file)) continue;
        if (mounted.has(file)) {
          keptForContainers = true;
          continue;
        }
        await (file.startsWith(stores.secrets.dir + '/') ? stores.secrets : stores.configs).remove(file);
      }
    } catch (err) {
      keptForContainers = true;
      this.opts.logger.warn({ err: (err as Error).message, retryInMs: this.sweepIntervalMs }, 'could not remove the files of configs and secrets no container needs; retrying');
    }
    if (keptForContainers && !this.stopped) {
      this.sweepTimer = setTimeout(() => {
        this.sweepTimer = null;
        void this.enqueue(() => this.sweep());
      }, this.sweepIntervalMs);
      this.sweepTimer.unref();
    }
  }

  private enqueue(task: () => Promise<void>): Promise<void> {
    this.work = this.work.then(task).catch((err: unknown) => {
      this.opts.logger.error({ err: (err as Error).message }, 'config and secret files: unexpected failure');
    });
    return this.work;
  }
}
