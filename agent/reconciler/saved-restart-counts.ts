/**
 * Keeps the restart tally in its store (RestartCountStore), so that an agent restart does not
 * reset the counts: loaded once before the first pass, written as they change, at a rate an SD
 * card can bear.
 */
import type { Clock } from '../../shared/clock.js';
import type { RestartCountStore, RestartTally } from './restart-tally.js';

/**
 * Writes of the restart counts that only follow the engine's counts (a container the engine's
 * policy restarts, every few seconds in a crash loop) come at most this often: each one is an
 * fsync, and on an SD card a write every few seconds, forever, wears it out. Little is lost by
 * waiting: an agent that restarts meanwhile finds those restarts in the engine's count, unless
 * the container went while it was down.
 */
export const ENGINE_COUNTS_WRITE_INTERVAL_MS = 30_000;

export interface SavedRestartCountsOptions {
  tally: RestartTally;
  /** Without one, nothing is kept: the engine's counts are the floor after an agent restart. */
  store: RestartCountStore | undefined;
  clock: Clock;
  /** The stored counts could not be read. */
  onLoadError: (err: unknown) => void;
}

export class SavedRestartCounts {
  /** When the counts were last handed to the store (clock time), null before the first. */
  private savedAtMs: number | null = null;

  constructor(private readonly opts: SavedRestartCountsOptions) {}

  /** Replaces the tally's counts with the stored ones, if any. Never throws. */
  async load(): Promise<void> {
    const store = this.opts.store;
    if (!store) return;
    try {
      const records = await store.load();
      if (records) this.opts.tally.load(records);
    } catch (err) {
      // Counting from the engine's counts is a worse report, not a reason to run nothing.
      this.opts.onLoadError(err);
    }
  }

  /**
   * Hands changed restart counts to the store: at once if the agent counted something only it
   * knows, at most every ENGINE_COUNTS_WRITE_INTERVAL_MS if they only follow the engine's counts
   * (a held-back change goes with a later pass: the resync timer makes one). force: now, whatever.
   */
  save(force: boolean): void {
    const { store, tally } = this.opts;
    const change = tally.pendingChange();
    if (!store || change === 'none') return;
    const nowMs = this.opts.clock.nowMs();
    const recent = this.savedAtMs !== null && nowMs - this.savedAtMs < ENGINE_COUNTS_WRITE_INTERVAL_MS;
    if (change === 'engine-counts' && recent && !force) return;
    const records = tally.takeChanges();
    if (!records) return;
    store.save(records);
    this.savedAtMs = nowMs;
  }

  /** Resolves once what was saved is written. */
  async flush(): Promise<void> {
    await this.opts.store?.flush();
  }
}
