/**
 * Image pulls, run detached from passes: a pass starts them and goes on, and the end of a pull
 * triggers a pass. A pull can take minutes; were the pass to wait, a newer target would wait as
 * well, and aborting the pull for every new generation would restart a download the new target
 * still wants. At most maxConcurrent at a time; a pull planned beyond that waits for a later pass.
 */
import type { RegistryAuth } from '../../shared/container-spec.js';
import { PULL_PROGRESS_REPORT_MS, type PullProgress } from '../../shared/protocol.js';
import type { ContainerRuntime } from '../runtime/container-runtime.js';
import { PullProgressTally } from '../runtime/pull-progress.js';

export interface ImagePullsOptions {
  runtime: ContainerRuntime;
  maxConcurrent: number;
  /** The pull worked; called before onSettled. */
  onPulled: (image: string, replicaIds: readonly string[]) => void;
  /** The pull failed (not aborted); called before onSettled. */
  onFailed: (image: string, replicaIds: readonly string[], err: unknown) => void;
  /** The pull is over, however it ended: a pass can act on its outcome. */
  onSettled: () => void;
  /** A pull in flight got further: at most once per progressIntervalMs per image, and only when it moved. */
  onProgress?: (image: string) => void;
  /** How often pulls in flight are looked at for progress (default PULL_PROGRESS_REPORT_MS). */
  progressIntervalMs?: number;
}

interface Pull {
  abort: AbortController;
  done: Promise<void>;
  tally: PullProgressTally;
  /** The progress last told through onProgress (bytes and layers done), to tell only a change. */
  toldBytes: number;
  toldLayers: number;
}

export class ImagePulls {
  /** Pulls in flight by image. */
  private readonly pulls = new Map<string, Pull>();
  private closed = false;
  /** Runs while a pull is in flight: one timer for all of them. */
  private progressTimer: NodeJS.Timeout | null = null;

  constructor(private readonly opts: ImagePullsOptions) {}

  /** Starts pulling image for these replicas, unless it is being pulled, the slots are full, or the pulls are closed. */
  start(image: string, auth: RegistryAuth | null, replicaIds: readonly string[]): void {
    if (this.closed || this.pulls.has(image) || this.pulls.size >= this.opts.maxConcurrent) return;
    const abort = new AbortController();
    const tally = new PullProgressTally();
    // Through a promise, so that even a runtime that throws at once fails this pull, not the pass.
    const done = Promise.resolve()
      .then(() => this.opts.runtime.pullImage(image, auth, abort.signal, tally))
      .then(
        () => this.opts.onPulled(image, replicaIds),
        (err: unknown) => {
          if (abort.signal.aborted) return;
          this.opts.onFailed(image, replicaIds, err);
        },
      )
      .finally(() => {
        this.pulls.delete(image);
        if (this.pulls.size === 0) this.stopProgressTimer();
        this.opts.onSettled();
      });
    this.pulls.set(image, { abort, done, tally, toldBytes: 0, toldLayers: 0 });
    this.startProgressTimer();
  }

  /** How far the pull of `image` got; undefined when none is in flight. */
  progressOf(image: string): PullProgress | undefined {
    return this.pulls.get(image)?.tally.snapshot();
  }

  private startProgressTimer(): void {
    if (this.progressTimer || !this.opts.onProgress) return;
    this.progressTimer = setInterval(() => {
      for (const [image, pull] of this.pulls) {
        const now = pull.tally.snapshot();
        if (now.bytesDone === pull.toldBytes && now.layersDone === pull.toldLayers) continue;
        pull.toldBytes = now.bytesDone;
        pull.toldLayers = now.layersDone;
        this.opts.onProgress?.(image);
      }
    }, this.opts.progressIntervalMs ?? PULL_PROGRESS_REPORT_MS);
    this.progressTimer.unref();
  }

  private stopProgressTimer(): void {
    if (this.progressTimer) clearInterval(this.progressTimer);
    this.progressTimer = null;
  }

  /** Aborts the pulls of images no longer wanted; those still wanted go on, or their progress would be thrown away. */
  keepOnly(wantedImages: ReadonlySet<string>): void {
    for (const [image, pull] of this.pulls) if (!wantedImages.has(image)) pull.abort.abort();
  }

  /** Aborts every pull, starts no more, and resolves once all have ended. */
  async close(): Promise<void> {
    this.closed = true;
    this.stopProgressTimer();
    for (const pull of this.pulls.values()) pull.abort.abort();
    await Promise.all([...this.pulls.values()].map((p) => p.done));
  }
}
