/**
 * The node's conditions as the agent knows them (engine, target cache, disks), and what the hub
 * has been told of them. The hello carries them whole; while connected, a change the hub should
 * hear about goes out as one `conditions` frame, coalesced and rate-limited. Nothing is queued
 * while disconnected: the next hello carries the state of that moment.
 */
import { systemClock, type Clock } from '../shared/clock.js';
import { CONDITIONS_MIN_FRAME_INTERVAL_MS, isDiskLow, MAX_CONDITION_ERROR_LENGTH, type DiskUsage, type NodeConditions } from '../shared/protocol.js';

/** Changes within this window after the first one go out as one frame (a flap within it, as none). */
export const CONDITIONS_COALESCE_MS = 500;

/** A free-space move smaller than both 1% of the total and 256 MiB is not news. */
const DISK_STEP_FRACTION = 0.01;
const DISK_STEP_CAP_BYTES = 256 * 1024 ** 2;

/**
 * Whether `next` tells the hub something `told` did not: another path, a step of free space or of
 * the total (another filesystem; a few blocks more or less, as some filesystems report from one
 * read to the next, are not), the low mark crossed.
 */
export function diskChangedMeaningfully(told: DiskUsage | null, next: DiskUsage | null): boolean {
  if (told === null || next === null) return told !== next;
  if (told.path !== next.path) return true;
  if (isDiskLow(told) !== isDiskLow(next)) return true;
  const stepBytes = Math.min(next.totalBytes * DISK_STEP_FRACTION, DISK_STEP_CAP_BYTES);
  return Math.abs(next.totalBytes - told.totalBytes) >= stepBytes || Math.abs(next.freeBytes - told.freeBytes) >= stepBytes;
}

/**
 * Whether the hub, told `told`, should hear of `next`. The error texts alone are not news (an engine
 * away fails with a new message at every try); the next frame or hello carries the latest.
 */
function changedMeaningfully(told: NodeConditions, next: NodeConditions): boolean {
  return (
    told.engine.available !== next.engine.available ||
    told.targetCache.current !== next.targetCache.current ||
    diskChangedMeaningfully(told.dataDisk, next.dataDisk) ||
    diskChangedMeaningfully(told.engineDisk, next.engineDisk)
  );
}

function clipError(error: string | null): string | null {
  return error === null ? null : error.slice(0, MAX_CONDITION_ERROR_LENGTH);
}

export interface ConditionTimers {
  setTimeout(fn: () => void, ms: number): unknown;
  clearTimeout(handle: unknown): void;
}

const systemTimers: ConditionTimers = {
  setTimeout: (fn, ms) => setTimeout(fn, ms).unref(),
  clearTimeout: (handle) => clearTimeout(handle as NodeJS.Timeout),
};

export interface NodeConditionsTrackerOptions {
  /** Sends a conditions frame; false when the link is down (then nothing is kept to resend). */
  send: (conditions: NodeConditions) => boolean;
  clock?: Clock;
  timers?: ConditionTimers;
  coalesceMs?: number;
  minFrameIntervalMs?: number;
}

export class NodeConditionsTracker {
  private readonly state: NodeConditions = {
    // Unknown until the first ping answers; the agent checks before its first hello.
    engine: { available: false, error: 'not checked yet' },
    // Nothing newer than what is on disk is known until the hub sends a target.
    targetCache: { current: true, error: null },
    dataDisk: null,
    engineDisk: null,
  };
  /** What the hub was last told (by a hello or a frame); null before the first hello. */
  private told: NodeConditions | null = null;
  private lastFrameAtMs = Number.NEGATIVE_INFINITY;
  private timer: unknown = null;
  /** After stop(), a change is kept but arms nothing: no timer outlives the agent. */
  private stopped = false;
  private readonly clock: Clock;
  private readonly timers: ConditionTimers;
  private readonly coalesceMs: number;
  private readonly minFrameIntervalMs: number;

  constructor(private readonly opts: NodeConditionsTrackerOptions) {
    this.clock = opts.clock ?? systemClock;
    this.timers = opts.timers ?? systemTimers;
    this.coalesceMs = opts.coalesceMs ?? CONDITIONS_COALESCE_MS;
    this.minFrameIntervalMs = opts.minFrameIntervalMs ?? CONDITIONS_MIN_FRAME_INTERVAL_MS;
  }

  current(): NodeConditions {
    return structuredClone(this.state);
  }

  /** The conditions for a hello about to be sent: from then on, what the hub knows. */
  forHello(): NodeConditions {
    this.cancel();
    this.told = this.current();
    return this.current();
  }

  /** The hub welcomed the hello: a change since it was built is sent now. */
  connected(): void {
    this.schedule();
  }

  setEngine(available: boolean, error: string | null): void {
    this.state.engine = { available, error: available ? null : clipError(error) };
    this.schedule();
  }

  setTargetCache(current: boolean, error: string | null): void {
    this.state.targetCache = { current, error: current ? null : clipError(error) };
    this.schedule();
  }

  setDisks(dataDisk: DiskUsage | null, engineDisk: DiskUsage | null): void {
    this.state.dataDisk = dataDisk;
    this.state.engineDisk = engineDisk;
    this.schedule();
  }

  /**
   * Sends a change not yet told at once, whatever the window (the connection is about to close
   * for a new hello: the hub must hear the engine is back before the node goes away for a moment).
   */
  sendPending(): void {
    if (this.stopped || this.told === null || !changedMeaningfully(this.told, this.state)) return;
    this.cancel();
    this.flush();
  }

  stop(): void {
    this.stopped = true;
    this.cancel();
  }

  private cancel(): void {
    if (this.timer !== null) this.timers.clearTimeout(this.timer);
    this.timer = null;
  }

  private schedule(): void {
    if (this.stopped || this.timer !== null || this.told === null || !changedMeaningfully(this.told, this.state)) return;
    const nowMs = this.clock.nowMs();
    const dueMs = Math.max(nowMs + this.coalesceMs, this.lastFrameAtMs + this.minFrameIntervalMs);
    this.timer = this.timers.setTimeout(() => this.flush(), dueMs - nowMs);
  }

  private flush(): void {
    this.timer = null;
    // Looked at again when due: a change undone meanwhile is no news.
    if (this.told === null || !changedMeaningfully(this.told, this.state)) return;
    const conditions = this.current();
    if (!this.opts.send(conditions)) return;
    this.told = conditions;
    this.lastFrameAtMs = this.clock.nowMs();
  }
}
