/**
 * When a replica whose step failed is tried again. A failure that concerns one replica or one
 * image (an image the engine will not inspect or pull, a create or start it refuses) never fails
 * the pass: the replicas it concerns record the error and back off (exponential, jittered) so the
 * passes in between leave them alone; a success clears it. Steps on one container that is not
 * what its replica is made of (an outdated container's start, a removal of an old version) back
 * off by container, and hold back nothing of the replica.
 *
 * No timers of its own: it says which replicas and containers are backing off at a time of the
 * clock, and when the earliest retry is due; the loop plans around them and sets one timer.
 */
import { Backoff } from '../../shared/backoff.js';
import type { Clock } from '../../shared/clock.js';
import { MAX_REPORT_ERROR_LENGTH } from '../../shared/protocol.js';

/**
 * Failed swaps at one spec of a replica that are retried with the replica's usual backoff. Each
 * stops the serving old version (for up to the stop timeout) for a new one that then will not
 * start; past this many, such a version (a missing executable, a host port held outside Tether)
 * is not likely to start on the next try either.
 */
export const QUICK_SWAP_ATTEMPTS = 3;
/** The delay between further swap attempts at that spec: the old version serves meanwhile. */
export const SWAP_RETRY_DELAY_MS = 15 * 60_000;

export interface RestartBackoffOptions {
  clock: Clock;
  baseMs: number;
  capMs: number;
  /** Delay between swap attempts at one spec after QUICK_SWAP_ATTEMPTS failed; default SWAP_RETRY_DELAY_MS. */
  swapRetryDelayMs?: number;
  /** The jitter's source (tests pin it). */
  random?: () => number;
}

interface Failure {
  error: string;
  backoff: Backoff;
  retryAtMs: number;
}

export class RestartBackoff {
  private readonly clock: Clock;
  private readonly swapRetryDelayMs: number;
  private readonly failures = new Map<string, Failure>();
  /**
   * Failures of steps on one container that is not what its replica is made of, by container id:
   * each backs off alone (see PlanInput.containerBackingOff, StepContext.containerFailed).
   */
  private readonly containerFailures = new Map<string, Failure>();
  /** Failed swap attempts per replica, at the spec they tried (see QUICK_SWAP_ATTEMPTS). */
  private readonly swapAttempts = new Map<string, { specHash: string; failed: number }>();

  constructor(private readonly opts: RestartBackoffOptions) {
    this.clock = opts.clock;
    this.swapRetryDelayMs = opts.swapRetryDelayMs ?? SWAP_RETRY_DELAY_MS;
  }

  /** A step of the replica failed: records the error and backs off. Returns the delay. */
  replicaFailed(replicaId: string, error: string): number {
    return this.record(this.failures, replicaId, error);
  }

  /** A step on a container other than the one its replica is made of failed. Returns the delay. */
  containerFailed(containerId: string, error: string): number {
    return this.record(this.containerFailures, containerId, error);
  }

  /**
   * A swap at specHash failed and the old version serves again. Counted by spec: a new target for
   * the replica (another spec) starts from none, so a fix is tried at once. Returns the error as
   * recorded, the delay, and the attempts at this spec.
   */
  swapFailed(replicaId: string, specHash: string, error: string): { error: string; retryInMs: number; attempts: number } {
    const last = this.swapAttempts.get(replicaId);
    const failed = last?.specHash === specHash ? last.failed + 1 : 1;
    this.swapAttempts.set(replicaId, { specHash, failed });
    if (failed < QUICK_SWAP_ATTEMPTS) return { error, retryInMs: this.record(this.failures, replicaId, error), attempts: failed };
    // Wall-clock time only for the text: the operator reads it; the retry itself runs on the clock.
    const at = new Date(Date.now() + this.swapRetryDelayMs).toISOString();
    const text = `${error}; the old version keeps serving; tried again in ${Math.round(this.swapRetryDelayMs / 1000)} s (at ${at})`;
    return { error: text, retryInMs: this.record(this.failures, replicaId, text, this.swapRetryDelayMs), attempts: failed };
  }

  /** The replica runs its spec (a step worked, or it was seen running): its failure and swap attempts are over. */
  replicaSucceeded(replicaId: string): void {
    this.failures.delete(replicaId);
    this.swapAttempts.delete(replicaId);
  }

  /** The replica's error is over, and it is tried at once (its image came, its spec changed); swap attempts still count. */
  clearReplica(replicaId: string): void {
    this.failures.delete(replicaId);
  }

  containerSucceeded(containerId: string): void {
    this.containerFailures.delete(containerId);
  }

  /** The last error of the replica's steps, until a success or a retain that drops it. */
  replicaError(replicaId: string): string | undefined {
    return this.failures.get(replicaId)?.error;
  }

  containerError(containerId: string): string | undefined {
    return this.containerFailures.get(containerId)?.error;
  }

  /** Whether the replica's last step failed (backing off or due). */
  hasFailed(replicaId: string): boolean {
    return this.failures.has(replicaId);
  }

  /** Replicas whose retry is not due at nowMs. */
  replicasBackingOff(nowMs: number): Set<string> {
    return backingOffOf(this.failures, nowMs);
  }

  /** Containers whose retry is not due at nowMs. */
  containersBackingOff(nowMs: number): Set<string> {
    return backingOffOf(this.containerFailures, nowMs);
  }

  /**
   * The earliest retry due at or after fromMs (clock time), or null. One due earlier was planned
   * by the pass that planned at fromMs, or has nothing to retry.
   */
  earliestRetryMs(fromMs: number): number | null {
    let earliestMs = Infinity;
    for (const failures of [this.failures, this.containerFailures]) {
      for (const f of failures.values()) if (f.retryAtMs >= fromMs && f.retryAtMs < earliestMs) earliestMs = f.retryAtMs;
    }
    return earliestMs === Infinity ? null : earliestMs;
  }

  /**
   * Forgets what concerns replicas that are neither assigned nor present (known), swap attempts of
   * replicas not assigned, and containers that are gone: nothing will retry them, and these
   * structures stay as small as the node's state.
   */
  retain(known: ReadonlySet<string>, assigned: ReadonlySet<string>, presentContainers: ReadonlySet<string>): void {
    for (const id of this.failures.keys()) if (!known.has(id)) this.failures.delete(id);
    for (const id of this.swapAttempts.keys()) if (!assigned.has(id)) this.swapAttempts.delete(id);
    for (const id of this.containerFailures.keys()) if (!presentContainers.has(id)) this.containerFailures.delete(id);
  }

  /** Records the error under key and backs it off: the next delay of its own backoff, or delayMs. */
  private record(failures: Map<string, Failure>, key: string, error: string, delayMs?: number): number {
    const backoff = failures.get(key)?.backoff ?? new Backoff({ baseMs: this.opts.baseMs, capMs: this.opts.capMs, random: this.opts.random });
    const retryInMs = delayMs ?? backoff.nextDelayMs();
    failures.set(key, { error: error.slice(0, MAX_REPORT_ERROR_LENGTH), backoff, retryAtMs: this.clock.nowMs() + retryInMs });
    return retryInMs;
  }
}

function backingOffOf(failures: ReadonlyMap<string, Failure>, nowMs: number): Set<string> {
  const ids = new Set<string>();
  for (const [id, f] of failures) if (f.retryAtMs > nowMs) ids.add(id);
  return ids;
}
