/**
 * Which images a node keeps: those of the revision its replicas run and of the one before (so a
 * rollback starts without a download over a slow link), and no older ones that no container uses
 * (a device's disk is small, and every release would otherwise stay on it).
 *
 * Only images the agent pulled itself are ever removed: one an operator loaded onto the device (an
 * air-gapped one may have no registry to pull from) stays whatever happens. What the agent pulled
 * and what "the one before" is live in the engine, not in memory: a new container carries, in
 * labels, the image of the container it replaces (LABELS.previousImage) and which of the two the
 * agent pulled (LABELS.pulledImages), so an agent restart forgets nothing. When the agent removes
 * a container, the pulled images it named are released; at the end of the pass, each released
 * image that no container of the engine refers to (any node's, ours or not) and no replica of the
 * target wants is removed, never by force, and only once it has stayed released for a grace
 * period: on an engine shared with other agents, another may have just found the image present
 * and be about to make a container of it.
 */
import type { Logger } from '../../shared/logger.js';
import type { ContainerRuntime, ImagesInUse, ObservedContainer } from '../runtime/container-runtime.js';
import type { Swap } from './plan-steps.js';
import { messageOf } from './step-executors.js';

/** Images waiting for a sweep at most: past this, more are not tracked (and stay on the disk). */
export const MAX_RELEASED_IMAGES = 256;

/** How long a released image stays before it may be removed: longer than another agent's pass from its image check to its create. */
export const IMAGE_RELEASE_GRACE_MS = 10_000;

/**
 * The image a new container of `service` keeps beside its own: that of the container it replaces
 * (its swap's), else that of another container of the same service on the node (a start-first
 * update's old replica). When that one runs the same image, what it kept is kept on.
 */
export function previousImageFor(
  service: string,
  image: string,
  swap: Swap | null,
  planned: ReadonlyMap<string, ObservedContainer>,
): string | null {
  const candidates: ObservedContainer[] = [];
  if (swap) {
    const fallback = swap.fallbackId === null ? undefined : planned.get(swap.fallbackId);
    if (fallback) candidates.push(fallback);
    for (const id of swap.oldIds) {
      const c = planned.get(id);
      if (c) candidates.push(c);
    }
  } else {
    for (const c of planned.values()) if (c.service === service) candidates.push(c);
  }
  for (const c of candidates) if (c.image !== undefined && c.image !== image) return c.image;
  for (const c of candidates) if (c.previousImage && c.previousImage !== image) return c.previousImage;
  return null;
}

/** What a new container's labels say it keeps: the previous image, and which of its images the agent pulled. */
export interface KeptImages {
  previousImage: string | null;
  pulledImages: string[];
}

/** Of the released images, those to remove: referred to by no container and wanted by no replica. Pure. */
export function imagesToRemove(released: Iterable<string>, inUse: ReadonlySet<string>, wanted: ReadonlySet<string>): string[] {
  const remove: string[] = [];
  for (const image of released) if (!inUse.has(image) && !wanted.has(image)) remove.push(image);
  return remove;
}

export interface ImageRetentionOptions {
  runtime: Pick<ContainerRuntime, 'imagesInUse' | 'removeImage'>;
  logger: Pick<Logger, 'info' | 'warn'>;
  /** Monotonic time, ms. */
  nowMs: () => number;
  /** Default IMAGE_RELEASE_GRACE_MS. */
  graceMs?: number;
  /** A released image's grace ends: a sweep is due (the loop runs a pass). */
  onDue: () => void;
}

export class ImageRetention {
  /** Released images -> when (monotonic ms). */
  private readonly releasedImages = new Map<string, number>();
  private dueTimer: NodeJS.Timeout | null = null;
  /** Images this agent pulled since it started, until a container's label carries the fact. Bounded. */
  private readonly pulled = new Set<string>();

  constructor(private readonly opts: ImageRetentionOptions) {}

  /** The agent pulled this image. */
  notePulled(image: string): void {
    // The oldest goes to make room; pulled again, an image moves to the newest end.
    if (!this.pulled.delete(image) && this.pulled.size >= MAX_RELEASED_IMAGES) this.pulled.delete(this.pulled.values().next().value as string);
    this.pulled.add(image);
  }

  /** The labels of a new container of `service` running `image`, made from the containers planned (see previousImageFor). */
  keptBy(service: string, image: string, swap: Swap | null, planned: ReadonlyMap<string, ObservedContainer>): KeptImages {
    const previousImage = previousImageFor(service, image, swap, planned);
    const pulledBefore = new Set<string>();
    for (const c of planned.values()) if (c.service === service) for (const i of c.pulledImages ?? []) pulledBefore.add(i);
    const pulledImages: string[] = [];
    for (const i of [image, previousImage]) if (i !== null && (this.pulled.has(i) || pulledBefore.has(i))) pulledImages.push(i);
    return { previousImage, pulledImages };
  }

  /** A container was removed: the images it named that the agent pulled may no longer be needed. */
  released(c: Pick<ObservedContainer, 'pulledImages'> | undefined): void {
    for (const image of c?.pulledImages ?? []) {
      if (this.releasedImages.size < MAX_RELEASED_IMAGES) this.releasedImages.set(image, this.opts.nowMs());
    }
  }

  /**
   * Removes the released images that nothing needs any more. `wanted`: the images the target's
   * replicas run (their pulls included). A failure leaves the image for the next sweep; `signal`
   * (a newer target) stops it between two removals.
   */
  async sweep(wanted: ReadonlySet<string>, signal?: AbortSignal): Promise<void> {
    if (this.releasedImages.size === 0) return;
    const graceMs = this.opts.graceMs ?? IMAGE_RELEASE_GRACE_MS;
    const nowMs = this.opts.nowMs();
    const due: string[] = [];
    let nextDueMs = Number.POSITIVE_INFINITY;
    for (const [image, atMs] of this.releasedImages) {
      if (nowMs - atMs >= graceMs) due.push(image);
      else nextDueMs = Math.min(nextDueMs, atMs + graceMs);
    }
    if (nextDueMs !== Number.POSITIVE_INFINITY) this.wakeAt(nextDueMs - nowMs);
    if (due.length === 0) return;
    let inUse: ImagesInUse;
    try {
      inUse = await this.opts.runtime.imagesInUse();
    } catch (err) {
      this.opts.logger.warn({ err: messageOf(err) }, 'could not list the images in use; old images are removed later');
      return;
    }
    const remove = imagesToRemove(due, inUse.images, wanted);
    // Kept ones are released again when the container that keeps them goes.
    for (const image of due) if (!remove.includes(image)) this.releasedImages.delete(image);
    for (const image of remove) {
      if (signal?.aborted) return;
      try {
        const outcome = await this.opts.runtime.removeImage(image);
        this.releasedImages.delete(image);
        this.pulled.delete(image);
        if (outcome === 'removed') this.opts.logger.info({ image }, 'removed an image no container uses');
      } catch (err) {
        // Tried again once another grace period is over: a refusal that lasts is not asked every pass.
        this.releasedImages.set(image, nowMs);
        this.wakeAt(graceMs);
        this.opts.logger.warn({ image, err: messageOf(err), retryInMs: graceMs }, 'could not remove an image no container uses');
      }
    }
  }

  /** Stops the grace timer. */
  close(): void {
    if (this.dueTimer) clearTimeout(this.dueTimer);
    this.dueTimer = null;
  }

  private wakeAt(inMs: number): void {
    if (this.dueTimer) return;
    this.dueTimer = setTimeout(() => {
      this.dueTimer = null;
      this.opts.onDue();
    }, Math.max(0, inMs));
    this.dueTimer.unref();
  }
}
