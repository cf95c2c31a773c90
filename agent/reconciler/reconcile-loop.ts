/**
 * The agent's apply loop, level-triggered: every pass lists the containers from the engine
 * (never from memory), plans with the pure planSteps and applies the steps. Runtime events, new
 * targets, retry timers and the resync timer only mark the loop dirty; triggers that arrive
 * during a pass collapse into one more pass.
 *
 * A failure that concerns one replica or one image (an image the engine will not inspect or pull,
 * a create or start it refuses) never fails the pass: the replicas it concerns record the error
 * and back off (exponential, jittered) so the passes in between leave them alone, and the pass
 * goes on for the others; a success clears it. Only a failure of the engine as a whole (it cannot
 * list containers) fails the pass, which is retried with its own backoff.
 *
 * Pulls run detached from passes: a pass starts them and goes on, and the end of a pull triggers
 * a pass. A pull can take minutes; were the pass to wait, a newer target would wait as well, and
 * aborting the pull for every new generation would restart a download the new target still wants.
 */
import { Backoff } from '../../shared/backoff.js';
import { systemClock, type Clock } from '../../shared/clock.js';
import type { AssignedReplica, ReplicaReport, ReplicaState } from '../../shared/protocol.js';
import type { ContainerRuntime, ObservedContainer } from '../runtime/container-runtime.js';
import { bestContainer, groupByReplica, needsImage, planSteps, type Step } from './plan-steps.js';
import { RestartTally, type RestartCountStore } from './restart-tally.js';
import { executeStep, messageOf, type EngineStep, type StepContext } from './step-executors.js';

export { containerName } from './step-executors.js';

export interface ReconcileLoopLogger {
  info(o: object, m: string): void;
  warn(o: object, m: string): void;
  error(o: object, m: string): void;
}

export interface ReconcileLoopOptions {
  nodeId: string;
  runtime: ContainerRuntime;
  /** Address host ports are bound to; null binds all interfaces. */
  publishAddress: string | null;
  logger: ReconcileLoopLogger;
  /** Replicas whose report changed since the last call; a replica gone for good is sent once as 'removed'. */
  onReport: (changed: ReplicaReport[]) => void;
  /** A pass completed for this generation (called once per generation). */
  onApplied: (generation: number) => void;
  clock?: Clock;
  resyncIntervalMs?: number;
  maxConcurrentSteps?: number;
  retryBaseMs?: number;
  retryCapMs?: number;
  stopTimeoutS?: number;
  /** Where restart counts survive an agent restart; without one the engine's counts are the floor after it. */
  restartCounts?: RestartCountStore;
  /** Delay between swap attempts at one spec after QUICK_SWAP_ATTEMPTS failed; default SWAP_RETRY_DELAY_MS. */
  swapRetryDelayMs?: number;
}

/**
 * Failed swaps at one spec of a replica that are retried with the replica's usual backoff. Each
 * stops the serving old version (for up to the stop timeout) for a new one that then will not
 * start; past this many, such a version (a missing executable, a host port held outside Tether)
 * is not likely to start on the next try either.
 */
export const QUICK_SWAP_ATTEMPTS = 3;
/** The delay between further swap attempts at that spec: the old version serves meanwhile. */
export const SWAP_RETRY_DELAY_MS = 15 * 60_000;

/**
 * Writes of the restart counts that only follow the engine's counts (a container the engine's
 * policy restarts, every few seconds in a crash loop) come at most this often: each one is an
 * fsync, and on an SD card a write every few seconds, forever, wears it out. Little is lost by
 * waiting: an agent that restarts meanwhile finds those restarts in the engine's count, unless
 * the container went while it was down.
 */
export const ENGINE_COUNTS_WRITE_INTERVAL_MS = 30_000;

/** The protocol's limit on a report's error text. */
const MAX_ERROR_LENGTH = 2048;

interface Failure {
  error: string;
  backoff: Backoff;
  retryAtMs: number;
}

interface Target {
  generation: number;
  replicas: AssignedReplica[];
  /** Not yet confirmed by the hub (see PlanInput.provisional). */
  provisional: boolean;
}

export class ReconcileLoop {
  private readonly nodeId: string;
  private readonly runtime: ContainerRuntime;
  private readonly logger: ReconcileLoopLogger;
  private readonly clock: Clock;
  private readonly resyncIntervalMs: number;
  private readonly maxConcurrentSteps: number;
  private readonly retryBaseMs: number;
  private readonly retryCapMs: number;
  private readonly stopTimeoutS: number;
  private readonly swapRetryDelayMs: number;

  /** Null until the first setTarget: without a target nothing is removed. */
  private target: Target | null = null;
  private lastAppliedGeneration: number | null = null;
  private readonly failures = new Map<string, Failure>();
  /**
   * Failures of steps on one container that is not what its replica is made of (an outdated
   * container's start, a removal of an old version), by container id: each backs off alone and
   * holds back nothing of the replica (see PlanInput.containerBackingOff, StepContext.containerFailed).
   */
  private readonly containerFailures = new Map<string, Failure>();
  /** Failed swap attempts per replica, at the spec they tried (see QUICK_SWAP_ATTEMPTS). */
  private readonly swapAttempts = new Map<string, { specHash: string; failed: number }>();
  private readonly restarts = new RestartTally();
  /** Outdated containers stopped by a swap, kept to the present ones (see StepContext.stoppedForSwap). */
  private readonly stoppedForSwap = new Set<string>();
  /** When the restart counts were last handed to the store (clock time), null before the first. */
  private countsSavedAtMs: number | null = null;
  /** Pulls in flight by image. */
  private readonly pulls = new Map<string, { abort: AbortController; done: Promise<void> }>();
  /** Last report sent per replica: what onReport diffs against and snapshot() returns. */
  private reported = new Map<string, ReplicaReport>();

  private starting = false;
  private active = false;
  private stopped = false;
  private dirty = false;
  private pumping: Promise<void> | null = null;
  private passAbort: AbortController | null = null;
  /** Retry delay for whole passes that fail (engine unreachable). */
  private readonly passBackoff: Backoff;
  private passRetryAtMs: number | null = null;
  private unwatch: (() => void) | null = null;
  private resyncTimer: NodeJS.Timeout | null = null;
  private wakeTimer: NodeJS.Timeout | null = null;

  constructor(private readonly opts: ReconcileLoopOptions) {
    this.nodeId = opts.nodeId;
    this.runtime = opts.runtime;
    this.logger = opts.logger;
    this.clock = opts.clock ?? systemClock;
    this.resyncIntervalMs = opts.resyncIntervalMs ?? 10_000;
    this.maxConcurrentSteps = opts.maxConcurrentSteps ?? 4;
    this.retryBaseMs = opts.retryBaseMs ?? 1_000;
    this.retryCapMs = opts.retryCapMs ?? 60_000;
    this.stopTimeoutS = opts.stopTimeoutS ?? 10;
    this.swapRetryDelayMs = opts.swapRetryDelayMs ?? SWAP_RETRY_DELAY_MS;
    if (this.maxConcurrentSteps < 1) throw new Error('invariant: maxConcurrentSteps must be at least 1');
    this.passBackoff = new Backoff({ baseMs: this.retryBaseMs, capMs: this.retryCapMs });
  }

  get appliedGeneration(): number {
    return this.lastAppliedGeneration ?? 0;
  }

  /** Subscribes to engine events and resolves after the first pass. */
  async start(): Promise<void> {
    if (this.starting || this.stopped) throw new Error('invariant: a ReconcileLoop starts once; make a new one after stop()');
    this.starting = true;
    // Active only once the counts are in: a setTarget meanwhile only marks the loop dirty, since a
    // pass now would save the engine's counts alone over the stored ones.
    await this.loadRestartCounts();
    if (this.stopped) return;
    this.active = true;
    this.unwatch = this.runtime.watchEvents(this.nodeId, () => this.requestPass());
    this.resyncTimer = setInterval(() => this.requestPass(), this.resyncIntervalMs);
    this.resyncTimer.unref();
    await this.runOnce();
  }

  /** Unsubscribes, aborts and waits for the pass and the pulls in flight. Containers are left as they are. */
  async stop(): Promise<void> {
    this.active = false;
    this.stopped = true;
    this.unwatch?.();
    this.unwatch = null;
    if (this.resyncTimer) clearInterval(this.resyncTimer);
    if (this.wakeTimer) clearTimeout(this.wakeTimer);
    this.resyncTimer = this.wakeTimer = null;
    this.passAbort?.abort();
    for (const pull of this.pulls.values()) pull.abort.abort();
    await this.pumping;
    await Promise.all([...this.pulls.values()].map((p) => p.done));
    // The last change is written, whatever the rate limit held back.
    this.saveRestartCounts(true);
    await this.opts.restartCounts?.flush();
  }

  private async loadRestartCounts(): Promise<void> {
    const store = this.opts.restartCounts;
    if (!store) return;
    try {
      const records = await store.load();
      if (records) this.restarts.load(records);
    } catch (err) {
      // Counting from the engine's counts is a worse report, not a reason to run nothing.
      this.logger.warn({ nodeId: this.nodeId, err: messageOf(err) }, 'could not load the restart counts');
    }
  }

  /**
   * The whole desired state; an older generation is ignored, a newer one aborts the pass in flight.
   * `provisional`: a target read from the agent's cache, which may be older than what runs; until
   * the hub sends one, nothing running is removed or replaced.
   */
  setTarget(generation: number, replicas: AssignedReplica[], opts: { provisional?: boolean } = {}): void {
    const previous = this.target;
    // A provisional target (the cache) yields to the hub's, whatever its generation: a hub whose
    // data was restored from a backup counts from lower, and must not be ignored for good.
    if (previous && generation < previous.generation && !previous.provisional) {
      this.logger.warn({ generation, current: previous.generation }, 'ignoring an older target');
      return;
    }
    this.target = { generation, replicas, provisional: opts.provisional === true };
    // A failure belongs to the spec that failed: a replica given another spec tries it at once.
    const previousSpecOf = new Map(previous?.replicas.map((r) => [r.replicaId, r.specHash]));
    for (const r of replicas) {
      if (previousSpecOf.has(r.replicaId) && previousSpecOf.get(r.replicaId) !== r.specHash) this.failures.delete(r.replicaId);
    }
    if (!previous || generation !== previous.generation) {
      this.passAbort?.abort();
      // Pulls the new target still wants go on: their progress would otherwise be thrown away.
      const wantedImages = new Set(replicas.map((r) => r.container.image));
      for (const [image, pull] of this.pulls) if (!wantedImages.has(image)) pull.abort.abort();
    }
    this.requestPass();
  }

  /** Every replica's current report: the assigned ones, plus unassigned containers still present. */
  snapshot(): ReplicaReport[] {
    return [...this.reported.values()];
  }

  /** One pass now, after the one in flight (tests; start()). */
  async runOnce(): Promise<void> {
    while (this.pumping) await this.pumping;
    this.dirty = false;
    // Claimed before the pass begins, so a trigger meanwhile queues behind it instead of racing it.
    this.pumping = Promise.resolve()
      .then(() => this.pass())
      .finally(() => {
        this.pumping = null;
        if (this.dirty) this.requestPass();
      });
    await this.pumping;
  }

  private requestPass(): void {
    this.dirty = true;
    if (!this.active || this.pumping) return;
    this.pumping = Promise.resolve()
      .then(async () => {
        while (this.dirty && this.active) {
          this.dirty = false;
          await this.pass();
        }
      })
      .finally(() => {
        this.pumping = null;
        // A trigger between the loop's last check and here found pumping set and only marked dirty.
        if (this.dirty) this.requestPass();
      });
  }

  private async pass(): Promise<void> {
    const target = this.target;
    const abort = new AbortController();
    this.passAbort = abort;
    const planAtMs = this.clock.nowMs();
    try {
      let current = await this.runtime.listContainers(this.nodeId);
      if (target) {
        // After the image checks: one that fails puts its replicas in backoff for this plan.
        const images = await this.presentImages(target.replicas, current, this.backingOffIds(planAtMs));
        const steps = planSteps({
          target: target.replicas,
          current,
          images,
          backingOff: this.backingOffIds(planAtMs),
          containerBackingOff: backingOffOf(this.containerFailures, planAtMs),
          provisional: target.provisional,
        });
        if (steps.length > 0) {
          await this.apply(steps, new Map(current.map((c) => [c.id, c])), abort.signal);
          // The reports describe what the steps left, not what the pass started from.
          current = await this.runtime.listContainers(this.nodeId);
        }
      }
      this.publishReports(current);
      this.passBackoff.reset();
      this.passRetryAtMs = null;
      // Applied means acted on: replicas that failed are reported as failed, but a pull still
      // running means the generation's containers are yet to be made.
      if (target && !abort.signal.aborted && this.pulls.size === 0 && target.generation !== this.lastAppliedGeneration) {
        this.lastAppliedGeneration = target.generation;
        this.notify('onApplied', () => this.opts.onApplied(target.generation));
      }
    } catch (err) {
      const retryInMs = this.passBackoff.nextDelayMs();
      this.passRetryAtMs = this.clock.nowMs() + retryInMs;
      this.logger.error({ nodeId: this.nodeId, err: messageOf(err), retryInMs }, 'reconcile pass failed');
    } finally {
      if (this.passAbort === abort) this.passAbort = null;
      this.armWakeTimer(planAtMs);
    }
  }

  /**
   * The target images present in the engine, asked only for replicas that need a create or a pull
   * and are not backing off (the planner does nothing with an image for the others). An image the
   * engine will not inspect (a malformed reference is answered 400, a busy engine times out) fails
   * its replicas, not the pass, and never one that only needs a start.
   */
  private async presentImages(
    replicas: readonly AssignedReplica[],
    current: readonly ObservedContainer[],
    backingOff: ReadonlySet<string>,
  ): Promise<Set<string>> {
    const replicasOf = new Map<string, string[]>();
    for (const r of replicas) {
      if (backingOff.has(r.replicaId) || !needsImage(r, current)) continue;
      const ids = replicasOf.get(r.container.image);
      if (ids) ids.push(r.replicaId);
      else replicasOf.set(r.container.image, [r.replicaId]);
    }
    const present = new Set<string>();
    await this.bounded([...replicasOf], async ([image, ids]) => {
      try {
        if (await this.runtime.hasImage(image)) present.add(image);
      } catch (err) {
        for (const id of ids) this.fail(id, `image check failed: ${messageOf(err)}`);
      }
    });
    return present;
  }

  private backingOffIds(nowMs: number): Set<string> {
    return backingOffOf(this.failures, nowMs);
  }

  /**
   * Removes all finish before any create or start, so a new container can take a host port or a
   * name that an unassigned or dead container held. planned: the containers the steps were
   * planned from, by id.
   */
  private async apply(steps: Step[], planned: ReadonlyMap<string, ObservedContainer>, signal: AbortSignal): Promise<void> {
    const ctx = this.stepContext(planned);
    const removes = steps.filter((s) => s.kind === 'remove');
    await this.bounded(removes, (s) => executeStep(s, ctx), signal);
    if (signal.aborted) return;
    for (const s of steps) if (s.kind === 'pull') this.startPull(s);
    const makes = steps.filter((s): s is EngineStep => s.kind !== 'remove' && s.kind !== 'pull');
    await this.bounded(makes, (s) => executeStep(s, ctx), signal);
  }

  private stepContext(planned: ReadonlyMap<string, ObservedContainer>): StepContext {
    return {
      runtime: this.runtime,
      nodeId: this.nodeId,
      publishAddress: this.opts.publishAddress,
      stopTimeoutS: this.stopTimeoutS,
      logger: this.logger,
      planned,
      stoppedForSwap: this.stoppedForSwap,
      succeeded: (replicaId) => {
        this.failures.delete(replicaId);
        this.swapAttempts.delete(replicaId);
      },
      failed: (replicaId, error) => this.recordFailure(this.failures, replicaId, error, { replicaId }),
      swapFailed: (replicaId, specHash, error) => this.swapFailed(replicaId, specHash, error),
      containerSucceeded: (containerId) => this.containerFailures.delete(containerId),
      containerFailed: (containerId, replicaId, error) => this.recordFailure(this.containerFailures, containerId, error, { replicaId, containerId }),
      started: (replicaId, containerId, restart) => this.restarts.noteStart(replicaId, containerId, restart),
      hadSpec: (replicaId, specHash) => this.restarts.hadSpec(replicaId, specHash),
    };
  }

  /** Runs fn over items, at most maxConcurrentSteps at a time; stops taking new items once signal aborts. */
  private async bounded<T>(items: readonly T[], fn: (item: T) => Promise<void>, signal?: AbortSignal): Promise<void> {
    let next = 0;
    const worker = async () => {
      while (next < items.length && !signal?.aborted) await fn(items[next++]!);
    };
    await Promise.all(Array.from({ length: Math.min(this.maxConcurrentSteps, items.length) }, worker));
  }

  /** At most maxConcurrentSteps pulls at a time; a pull planned beyond that waits for a later pass. */
  private startPull(step: Extract<Step, { kind: 'pull' }>): void {
    if (this.stopped || this.pulls.has(step.image) || this.pulls.size >= this.maxConcurrentSteps) return;
    const abort = new AbortController();
    // Through a promise, so that even a runtime that throws at once fails this pull, not the pass.
    const done = Promise.resolve()
      .then(() => this.runtime.pullImage(step.image, step.auth, abort.signal))
      .then(
        () => {
          for (const id of step.replicaIds) this.failures.delete(id);
          this.logger.info({ image: step.image }, 'pulled image');
        },
        (err: unknown) => {
          if (abort.signal.aborted) return;
          for (const id of step.replicaIds) this.fail(id, `pull failed: ${messageOf(err)}`);
        },
      )
      .finally(() => {
        this.pulls.delete(step.image);
        this.requestPass();
      });
    this.pulls.set(step.image, { abort, done });
  }

  private fail(replicaId: string, error: string): void {
    this.recordFailure(this.failures, replicaId, error, { replicaId });
  }

  /**
   * A swap at specHash failed and the old version serves again. Counted by spec: a new target for
   * the replica (another spec) starts from none, so a fix is tried at once.
   */
  private swapFailed(replicaId: string, specHash: string, error: string): void {
    const last = this.swapAttempts.get(replicaId);
    const failed = last?.specHash === specHash ? last.failed + 1 : 1;
    this.swapAttempts.set(replicaId, { specHash, failed });
    if (failed < QUICK_SWAP_ATTEMPTS) {
      this.recordFailure(this.failures, replicaId, error, { replicaId });
      return;
    }
    // Wall-clock time only for the text: the operator reads it; the retry itself runs on the clock.
    const at = new Date(Date.now() + this.swapRetryDelayMs).toISOString();
    const text = `${error}; the old version keeps serving; tried again in ${Math.round(this.swapRetryDelayMs / 1000)} s (at ${at})`;
    this.recordFailure(this.failures, replicaId, text, { replicaId, swapAttempts: failed }, this.swapRetryDelayMs);
  }

  /** Records the error under key and backs it off: the next delay of its own backoff, or delayMs. */
  private recordFailure(failures: Map<string, Failure>, key: string, error: string, context: object, delayMs?: number): void {
    const backoff = failures.get(key)?.backoff ?? new Backoff({ baseMs: this.retryBaseMs, capMs: this.retryCapMs });
    const retryInMs = delayMs ?? backoff.nextDelayMs();
    failures.set(key, { error: error.slice(0, MAX_ERROR_LENGTH), backoff, retryAtMs: this.clock.nowMs() + retryInMs });
    this.logger.warn({ nodeId: this.nodeId, ...context, err: error, retryInMs }, 'step failed');
  }

  /**
   * One timer for the earliest retry, rather than one per failing replica. Only retries due from
   * the time the pass planned count: one due earlier was planned by that pass or has nothing to retry.
   */
  private armWakeTimer(planAtMs: number): void {
    if (this.wakeTimer) clearTimeout(this.wakeTimer);
    this.wakeTimer = null;
    if (!this.active) return;
    let earliestMs = this.passRetryAtMs ?? Infinity;
    for (const failures of [this.failures, this.containerFailures]) {
      for (const f of failures.values()) if (f.retryAtMs >= planAtMs && f.retryAtMs < earliestMs) earliestMs = f.retryAtMs;
    }
    if (earliestMs === Infinity) return;
    const nowMs = this.clock.nowMs();
    this.wakeTimer = setTimeout(() => {
      this.wakeTimer = null;
      this.requestPass();
    }, Math.max(0, earliestMs - nowMs));
    this.wakeTimer.unref();
  }

  private publishReports(current: readonly ObservedContainer[]): void {
    const assigned = this.target?.replicas ?? [];
    const containersOf = groupByReplica(current);

    const next = new Map<string, ReplicaReport>();
    for (const r of assigned) {
      const containers = containersOf.get(r.replicaId) ?? [];
      // The container that stands for the replica: its spec's, unless only an outdated one runs
      // (an update that has not taken over yet: the old version is what serves).
      const right = bestContainer(containers.filter((c) => c.specHash === r.specHash));
      const any = bestContainer(containers);
      const chosen = right?.state !== 'running' && any?.state === 'running' ? any : (right ?? any);
      // Running with the right spec is success however it came about (say the engine's restart
      // policy), so an older step error no longer describes the replica.
      if (chosen?.state === 'running' && chosen.specHash === r.specHash) {
        this.failures.delete(r.replicaId);
        this.swapAttempts.delete(r.replicaId);
      }
      const error = this.failures.get(r.replicaId)?.error ?? (chosen ? this.containerFailures.get(chosen.id)?.error : undefined) ?? null;
      const restarts = this.restarts.observe(r.replicaId, containers, chosen);
      next.set(r.replicaId, reportOf(r.replicaId, r.service, r.specHash, chosen, error, restarts));
    }
    for (const [replicaId, containers] of containersOf) {
      if (next.has(replicaId)) continue;
      const chosen = bestContainer(containers)!;
      const restarts = this.restarts.observe(replicaId, containers, chosen);
      next.set(replicaId, reportOf(replicaId, chosen.service, chosen.specHash, chosen, this.failures.get(replicaId)?.error ?? null, restarts));
    }
    // Forget what concerns replicas that are neither assigned nor present, and containers that are
    // gone: nothing will retry them, and these structures stay as small as the node's state.
    for (const id of this.failures.keys()) if (!next.has(id)) this.failures.delete(id);
    const assignedIds = new Set(assigned.map((r) => r.replicaId));
    for (const id of this.swapAttempts.keys()) if (!assignedIds.has(id)) this.swapAttempts.delete(id);
    // Not before the first target: the counts of a replica whose container went while the agent
    // was down are still wanted when the target names it.
    if (this.target) this.restarts.retain(new Set(next.keys()));
    const present = new Set(current.map((c) => c.id));
    for (const id of this.containerFailures.keys()) if (!present.has(id)) this.containerFailures.delete(id);
    for (const id of this.stoppedForSwap) if (!present.has(id)) this.stoppedForSwap.delete(id);
    this.saveRestartCounts(false);

    const changed: ReplicaReport[] = [];
    for (const [id, report] of next) if (!sameReport(this.reported.get(id), report)) changed.push(report);
    for (const [id, last] of this.reported) {
      if (!next.has(id)) changed.push({ ...last, state: 'removed', containerId: null, error: null });
    }
    this.reported = next;
    if (changed.length > 0) this.notify('onReport', () => this.opts.onReport(changed));
  }

  /**
   * Hands changed restart counts to the store: at once if the agent counted something only it
   * knows, at most every ENGINE_COUNTS_WRITE_INTERVAL_MS if they only follow the engine's counts
   * (a held-back change goes with a later pass: the resync timer makes one). force: now, whatever.
   */
  private saveRestartCounts(force: boolean): void {
    const store = this.opts.restartCounts;
    const change = this.restarts.pendingChange();
    if (!store || change === 'none') return;
    const nowMs = this.clock.nowMs();
    const recent = this.countsSavedAtMs !== null && nowMs - this.countsSavedAtMs < ENGINE_COUNTS_WRITE_INTERVAL_MS;
    if (change === 'engine-counts' && recent && !force) return;
    const records = this.restarts.takeChanges();
    if (!records) return;
    store.save(records);
    this.countsSavedAtMs = nowMs;
  }

  /** A callback that throws is the caller's bug; it must not count as a failed pass and delay the next. */
  private notify(name: string, call: () => void): void {
    try {
      call();
    } catch (err) {
      this.logger.error({ nodeId: this.nodeId, err: messageOf(err) }, `${name} threw`);
    }
  }
}

/** A replica's state as the hub reads it, from the container that counts and the last step error. */
function reportOf(
  replicaId: string,
  service: string,
  specHash: string,
  c: ObservedContainer | undefined,
  stepError: string | null,
  restarts: number,
): ReplicaReport {
  if (!c) {
    return { replicaId, service, state: stepError ? 'failed' : 'pending', specHash, containerId: null, error: stepError, restarts };
  }
  let state: ReplicaState;
  let error: string | null;
  switch (c.state) {
    case 'running':
      if (c.error !== null) {
        // The engine listed it running but its state could not be read: a listing can lag a
        // container's death, so it is not reported running on the listing's word alone.
        state = 'failed';
        error = c.error;
        break;
      }
      // An error here is an update that failed while the old container goes on serving: the
      // report carries that container's spec hash, so the hub sees which version runs.
      state = 'running';
      error = stepError;
      break;
    case 'created':
      error = stepError ?? c.error;
      state = error ? 'failed' : 'starting';
      break;
    case 'restarting':
      state = 'failed';
      error = stepError ?? exitText(c);
      break;
    case 'exited':
      error = stepError ?? c.error ?? (c.exitCode !== null && c.exitCode !== 0 ? exitText(c) : null);
      state = error ? 'failed' : 'stopped';
      break;
    case 'dead':
      state = 'failed';
      error = stepError ?? c.error ?? 'container is dead';
      break;
    case 'paused':
    case 'removing':
      state = 'stopped';
      error = stepError;
      break;
  }
  return {
    replicaId,
    service,
    state: state,
    specHash: c.specHash,
    containerId: c.id,
    error: error === null ? null : error.slice(0, MAX_ERROR_LENGTH),
    restarts,
  };
}

function backingOffOf(failures: ReadonlyMap<string, Failure>, nowMs: number): Set<string> {
  const ids = new Set<string>();
  for (const [id, f] of failures) if (f.retryAtMs > nowMs) ids.add(id);
  return ids;
}

function exitText(c: ObservedContainer): string {
  const restarts = c.restartCount ? ` (restarted ${c.restartCount} times)` : '';
  return `exited with code ${c.exitCode ?? 'unknown'}${restarts}`;
}

function sameReport(a: ReplicaReport | undefined, b: ReplicaReport): boolean {
  return (
    a !== undefined &&
    a.state === b.state &&
    a.specHash === b.specHash &&
    a.containerId === b.containerId &&
    a.error === b.error &&
    a.restarts === b.restarts &&
    a.service === b.service
  );
}

