/**
 * The agent's apply loop, level-triggered: every pass lists the containers from the engine
 * (never from memory), plans with the pure planSteps and applies the steps through the executor
 * table (step-executors.ts). Runtime events, new targets, retry timers and the resync timer only
 * mark the loop dirty; triggers that arrive during a pass collapse into one more pass. This file
 * is the pump: when a pass runs, what aborts it, how many steps run at once, and what the hub
 * link is told (acks here; reports through replica-reporter.ts).
 *
 * A failure that concerns one replica or one image never fails the pass: the replicas it
 * concerns back off (restart-backoff.ts) and the pass goes on for the others. Only a failure of
 * the engine as a whole (it cannot list containers) fails the pass, which is retried with its own
 * backoff.
 *
 * A replica under a restart policy is started again only when its policy says so
 * (restart-policies.ts): the engine restarts none of them, and the planner leaves a held one
 * stopped; one timer wakes the loop for the earliest restart due, as for retries.
 *
 * Pulls run detached from passes (image-pulls.ts), so a newer target never waits for a download.
 * So a pass that acted on every replica but those waiting for their image acks the generation
 * with those pending (a partial ack), and acks again as that number changes, down to 0.
 */
import { Backoff } from '../../shared/backoff.js';
import { systemClock, type Clock } from '../../shared/clock.js';
import { CRASH_LOOP_OUTPUT_MAX_LENGTH, PROTOCOL_LIMITS, type AssignedReplica, type ReplicaReport } from '../../shared/protocol.js';
import { OUTPUT_TAIL_LINES, type ContainerInputs, type ContainerRuntime, type ObservedContainer } from '../runtime/container-runtime.js';
import { HealthMonitor } from '../health/health-monitor.js';
import { needsImage, planSteps, replicaIdOf, type Step } from './plan-steps.js';
import { ImagePulls } from './image-pulls.js';
import { ImageRetention } from './image-retention.js';
import { VolumePurges } from './volume-purges.js';
import { ReplicaReporter } from './replica-reporter.js';
import { QUICK_SWAP_ATTEMPTS, RestartBackoff } from './restart-backoff.js';
import { RestartPolicies } from './restart-policies.js';
import { SavedRestartCounts } from './saved-restart-counts.js';
import { RestartTally, type RestartCountStore } from './restart-tally.js';
import { executeStep, messageOf, type EngineStep, type StepContext } from './step-executors.js';
import type { Logger } from '../../shared/logger.js';

export { containerName } from './step-executors.js';

export interface ReconcileLoopOptions {
  nodeId: string;
  runtime: ContainerRuntime;
  /** Address host ports are bound to; null binds all interfaces. */
  publishAddress: string | null;
  logger: Pick<Logger, 'info' | 'warn' | 'error'>;
  /**
   * Replicas whose report changed since the last call; a replica gone for good is sent once as
   * 'removed'. Called at most once per report window, with at most maxReportsPerFrame reports.
   */
  onReport: (changed: ReplicaReport[]) => void;
  /**
   * A pass acted on every replica of this generation but `pending` of them, whose images are still
   * being pulled. Called when the generation or the pending count changes (the last call for a
   * generation has pending 0, unless a newer generation supersedes it).
   */
  onApplied: (generation: number, pending: number) => void;
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
  /** Least time between two onReport calls, and between two listings for reports during a pass; default REPORT_WINDOW_MS. */
  reportWindowMs?: number;
  /** Reports one onReport call carries at most; default the protocol's limit for a status frame. */
  maxReportsPerFrame?: number;
  /** How often a pull in flight has its progress reported, if it moved; default PULL_PROGRESS_REPORT_MS. */
  pullProgressIntervalMs?: number;
  /** How long an image no container uses any more stays before its removal; default IMAGE_RELEASE_GRACE_MS. */
  imageReleaseGraceMs?: number;
  /** Wall-clock time (epoch ms), for the times reports carry; default Date.now. */
  wallClockMs?: () => number;
  /** What a new container is made with besides its spec (StepContext.inputsOf); absent: nothing. */
  containerInputs?: (replica: AssignedReplica) => Promise<ContainerInputs>;
}

/**
 * Replica changes within this long go to the hub in one status frame. Short against the time a
 * person or a deployment waits on a replica's state; long enough that a node starting hundreds of
 * containers sends a few frames a second, and lists its containers for them as often.
 */
export const REPORT_WINDOW_MS = 250;

interface Target {
  generation: number;
  replicas: AssignedReplica[];
  /** Not yet confirmed by the hub (see PlanInput.provisional). */
  provisional: boolean;
  /** Deleted services whose volumes are to go (the target's `purgeVolumes`). */
  purgeVolumes: readonly string[];
}

export class ReconcileLoop {
  private readonly nodeId: string;
  private readonly runtime: ContainerRuntime;
  private readonly logger: Pick<Logger, 'info' | 'warn' | 'error'>;
  private readonly clock: Clock;
  private readonly resyncIntervalMs: number;
  private readonly maxConcurrentSteps: number;
  private readonly retryBaseMs: number;
  private readonly retryCapMs: number;
  private readonly stopTimeoutS: number;

  /** Null until the first setTarget: without a target nothing is removed. */
  private target: Target | null = null;
  private lastAppliedGeneration: number | null = null;
  /** The pending count of the last ack (see onApplied). */
  private lastAckedPending = 0;
  private readonly backoff: RestartBackoff;
  private readonly restarts = new RestartTally();
  /** Outdated containers stopped by a swap, kept to the present ones (see StepContext.stoppedForSwap). */
  private readonly stoppedForSwap = new Set<string>();
  private readonly savedCounts: SavedRestartCounts;
  private readonly pulls: ImagePulls;
  private readonly images: ImageRetention;
  private readonly volumePurges: VolumePurges;
  private readonly reporter: ReplicaReporter;
  /** The http and tcp checks the agent runs itself (exec checks are the engine's). */
  private readonly health: HealthMonitor;
  /** When replicas under a restart policy start again (the engine restarts none of them). */
  private readonly policies = new RestartPolicies();

  /** See firstListing. */
  private listedOnce = false;
  private resolveFirstListing: () => void = () => {};
  /**
   * Settles once the first pass has listed the engine's containers, their reports already in
   * snapshot(), before any step: the hub can hear what runs without waiting for the whole pass
   * (hundreds of slow starts). Settles as well when that listing fails or the loop stops.
   */
  readonly firstListing = new Promise<void>((resolve) => (this.resolveFirstListing = resolve));

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
    if (this.maxConcurrentSteps < 1) throw new Error('invariant: maxConcurrentSteps must be at least 1');
    this.passBackoff = new Backoff({ baseMs: this.retryBaseMs, capMs: this.retryCapMs });
    this.backoff = new RestartBackoff({
      clock: this.clock,
      baseMs: this.retryBaseMs,
      capMs: this.retryCapMs,
      swapRetryDelayMs: opts.swapRetryDelayMs,
    });
    this.savedCounts = new SavedRestartCounts({
      tally: this.restarts,
      store: opts.restartCounts,
      clock: this.clock,
      onLoadError: (err) => this.logger.warn({ nodeId: this.nodeId, err: messageOf(err) }, 'could not load the restart counts'),
    });
    this.images = new ImageRetention({
      runtime: this.runtime,
      logger: this.logger,
      nowMs: () => this.clock.nowMs(),
      graceMs: opts.imageReleaseGraceMs,
      onDue: () => this.requestPass(),
    });
    this.volumePurges = new VolumePurges({ nodeId: this.nodeId, runtime: this.runtime, logger: this.logger });
    this.pulls = new ImagePulls({
      runtime: this.runtime,
      maxConcurrent: this.maxConcurrentSteps,
      onPulled: (image, replicaIds) => {
        this.images.notePulled(image);
        for (const id of replicaIds) this.backoff.clearReplica(id);
        this.logger.info({ image }, 'pulled image');
      },
      onFailed: (_image, replicaIds, err) => {
        for (const id of replicaIds) this.fail(id, `pull failed: ${messageOf(err)}`);
      },
      onSettled: () => this.requestPass(),
      onProgress: (image) => this.reporter.pullProgressed(image),
      progressIntervalMs: opts.pullProgressIntervalMs,
    });
    this.health = new HealthMonitor({
      clock: this.clock,
      logger: this.logger,
      onChange: (containerId) => {
        this.reporter.healthChanged(containerId);
        // Its restart policy, if any, restarts it: a pass decides.
        if (this.health.healthOf(containerId)?.status === 'unhealthy') this.requestPass();
      },
    });
    const wallClockMs = opts.wallClockMs ?? Date.now;
    this.reporter = new ReplicaReporter({
      nodeId: this.nodeId,
      runtime: this.runtime,
      logger: this.logger,
      assigned: () => this.target?.replicas ?? [],
      backoff: this.backoff,
      restarts: this.restarts,
      windowMs: opts.reportWindowMs ?? REPORT_WINDOW_MS,
      maxPerFrame: opts.maxReportsPerFrame ?? PROTOCOL_LIMITS.maxReportedReplicas,
      send: (reports) => this.notify('onReport', () => this.opts.onReport(reports)),
      probedHealth: (containerId) => this.health.healthOf(containerId),
      crashLoop: (replicaId) => this.policies.crashLoopOf(replicaId, (clockMs) => wallClockMs() + clockMs - this.clock.nowMs()),
      downNote: (replicaId) => this.policies.downNoteOf(replicaId),
      pullProgress: (image) => this.pulls.progressOf(image),
    });
  }

  /** The generation of the last ack: wholly applied, or but for appliedPending replicas; 0 before the hub's first. */
  get appliedGeneration(): number {
    return this.lastAppliedGeneration ?? 0;
  }

  /**
   * The pending count of the last ack. The hello carries no pending count: an agent that
   * reconnects while images are pulled says it again in an ack after the hello.
   */
  get appliedPending(): number {
    return this.lastAckedPending;
  }

  /** Subscribes to engine events and resolves after the first pass. */
  async start(): Promise<void> {
    if (this.starting || this.stopped) throw new Error('invariant: a ReconcileLoop starts once; make a new one after stop()');
    this.starting = true;
    // Active only once the counts are in: a setTarget meanwhile only marks the loop dirty, since a
    // pass now would save the engine's counts alone over the stored ones.
    await this.savedCounts.load();
    if (this.stopped) return this.resolveFirstListing();
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
    this.resolveFirstListing();
    this.unwatch?.();
    this.unwatch = null;
    if (this.resyncTimer) clearInterval(this.resyncTimer);
    if (this.wakeTimer) clearTimeout(this.wakeTimer);
    this.resyncTimer = this.wakeTimer = null;
    this.reporter.close();
    this.health.close();
    this.passAbort?.abort();
    this.images.close();
    const pullsClosed = this.pulls.close();
    await this.pumping;
    await pullsClosed;
    // The last change is written, whatever the rate limit held back.
    this.savedCounts.save(true);
    await this.savedCounts.flush();
  }

  /**
   * The whole desired state; an older generation is ignored, a newer one aborts the pass in flight.
   * `provisional`: a target read from the agent's cache, which may be older than what runs; until
   * the hub sends one, nothing running is removed or replaced.
   */
  setTarget(generation: number, replicas: AssignedReplica[], opts: { provisional?: boolean; purgeVolumes?: readonly string[] } = {}): void {
    const previous = this.target;
    // A provisional target (the cache) yields to the hub's, whatever its generation: a hub whose
    // data was restored from a backup counts from lower, and must not be ignored for good.
    if (previous && generation < previous.generation && !previous.provisional) {
      this.logger.warn({ generation, current: previous.generation }, 'ignoring an older target');
      return;
    }
    this.target = { generation, replicas, provisional: opts.provisional === true, purgeVolumes: opts.purgeVolumes ?? [] };
    // A failure belongs to the spec that failed: a replica given another spec tries it at once.
    const previousSpecOf = new Map(previous?.replicas.map((r) => [r.replicaId, r.specHash]));
    for (const r of replicas) {
      if (previousSpecOf.has(r.replicaId) && previousSpecOf.get(r.replicaId) !== r.specHash) this.backoff.clearReplica(r.replicaId);
    }
    if (!previous || generation !== previous.generation) {
      this.passAbort?.abort();
      // Pulls the new target still wants go on: their progress would otherwise be thrown away.
      const wantedImages = new Set(replicas.map((r) => r.container.image));
      this.pulls.keepOnly(wantedImages);
    }
    this.requestPass();
  }

  /** Every replica's current report: the assigned ones, plus unassigned containers still present. */
  snapshot(): ReplicaReport[] {
    return this.reporter.snapshot();
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
    /** Replicas of the target this pass left waiting for an image to be pulled. */
    let waitingOnPulls: string[] = [];
    try {
      let current = await this.runtime.listContainers(this.nodeId);
      if (!this.listedOnce) {
        // What runs, reported before the first steps: see firstListing.
        this.listedOnce = true;
        this.publishReports(current);
        this.resolveFirstListing();
      }
      if (target) {
        // After the image checks: one that fails puts its replicas in backoff for this plan.
        const images = await this.presentImages(target.replicas, current, this.backoff.replicasBackingOff(planAtMs));
        const policyPlan = this.policies.observe(target.replicas, current, planAtMs, (id) => this.health.healthOf(id));
        for (const { replicaId, containerId, stop, decision: d } of policyPlan.decided) {
          const why = stop.kind === 'exited' ? { exitCode: stop.exitCode } : { unhealthy: true };
          if (d.kind === 'restart') {
            this.logger.info({ replicaId, containerId, ...why, restartInMs: d.atMs - planAtMs, restartsInRow: d.restarts }, 'container stopped: its restart policy starts it again');
          } else {
            this.logger.info({ replicaId, containerId, ...why, reason: d.reason, restartsInRow: d.restarts }, 'container stopped: its restart policy leaves it down');
          }
        }
        await this.readOutputs(policyPlan.wantOutput);
        const steps = planSteps({
          target: target.replicas,
          current,
          images,
          backingOff: this.backoff.replicasBackingOff(planAtMs),
          containerBackingOff: this.backoff.containersBackingOff(planAtMs),
          provisional: target.provisional,
          held: policyPlan.held,
          restartNow: policyPlan.restartNow,
        });
        waitingOnPulls = steps.flatMap((s) => (s.kind === 'pull' ? s.replicaIds : []));
        if (steps.length > 0) {
          await this.apply(steps, new Map(current.map((c) => [c.id, c])), abort.signal);
          // The reports describe what the steps left, not what the pass started from.
          current = await this.runtime.listContainers(this.nodeId);
        }
      }
      this.publishReports(current);
      this.passBackoff.reset();
      this.passRetryAtMs = null;
      // Applied means acted on: replicas that failed are reported as failed, but those waiting
      // for their image are yet to be made, and pending. One whose pull failed before counts as
      // failed while its pull is tried again (its report says so), or every retry would ack twice.
      // A pull planned beyond the concurrent pulls allowed waits for a slot: pending as well.
      // A provisional target (the cache) is never acked: it removed and replaced nothing, so the
      // hub, told it was applied, would take the node for up to date; the hub's own follows.
      if (target && !target.provisional && !abort.signal.aborted) {
        const pending = waitingOnPulls.filter((id) => !this.backoff.hasFailed(id)).length;
        if (target.generation !== this.lastAppliedGeneration || pending !== this.lastAckedPending) {
          this.lastAppliedGeneration = target.generation;
          this.lastAckedPending = pending;
          this.notify('onApplied', () => this.opts.onApplied(target.generation, pending));
        }
      }
      // Volumes of deleted services, once their containers are gone (the listing above says so).
      // Never from a provisional target: only the hub's own says what is deleted.
      if (target && !target.provisional && target.purgeVolumes.length > 0 && !abort.signal.aborted) {
        await this.volumePurges.run(target.purgeVolumes, target.replicas, current, abort.signal);
      }
      // Images of removed containers that nothing needs any more (not the target, not a pull in
      // flight): after the reports and the ack, which must not wait on a slow disk's removals.
      if (target && !abort.signal.aborted) await this.images.sweep(new Set(target.replicas.map((r) => r.container.image)), abort.signal);
    } catch (err) {
      this.resolveFirstListing();
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

  /**
   * The output tails of crash-looping containers, for their reports: one engine call per stop of
   * each. One the engine will not give is reported without (a report is no reason to fail a pass).
   */
  private async readOutputs(wanted: ReadonlyMap<string, string>): Promise<void> {
    const logs = this.runtime.containerLogs?.bind(this.runtime);
    if (!logs || wanted.size === 0) return;
    await this.bounded([...wanted], async ([replicaId, containerId]) => {
      let tail: string | null;
      try {
        tail = await logs(containerId, OUTPUT_TAIL_LINES, CRASH_LOOP_OUTPUT_MAX_LENGTH);
      } catch (err) {
        this.logger.warn({ nodeId: this.nodeId, replicaId, containerId, err: messageOf(err) }, 'could not read the output of a crash-looping container');
        return;
      }
      this.policies.setOutput(replicaId, containerId, tail);
    });
  }

  /**
   * Removes all finish before any create or start, so a new container can take a host port or a
   * name that an unassigned or dead container held. planned: the containers the steps were
   * planned from, by id.
   */
  private async apply(steps: Step[], planned: ReadonlyMap<string, ObservedContainer>, signal: AbortSignal): Promise<void> {
    const ctx = this.stepContext(planned);
    // Steps left per replica: one is reported once all of its steps in this pass are done.
    const stepsLeft = new Map<string, number>();
    for (const s of steps) {
      if (s.kind !== 'pull') stepsLeft.set(replicaIdOf(s), (stepsLeft.get(replicaIdOf(s)) ?? 0) + 1);
    }
    const run = async (s: EngineStep) => {
      await executeStep(s, ctx);
      const id = replicaIdOf(s);
      const left = stepsLeft.get(id)! - 1;
      if (left > 0) stepsLeft.set(id, left);
      else this.reporter.settle(id);
    };
    this.reporter.beginSteps();
    try {
      const removes = steps.filter((s): s is EngineStep => s.kind === 'remove');
      await this.bounded(removes, run, signal);
      if (signal.aborted) return;
      for (const s of steps) if (s.kind === 'pull') this.pulls.start(s.image, s.auth, s.replicaIds);
      const makes = steps.filter((s): s is EngineStep => s.kind !== 'remove' && s.kind !== 'pull');
      await this.bounded(makes, run, signal);
    } finally {
      await this.reporter.endSteps();
    }
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
      succeeded: (replicaId) => this.backoff.replicaSucceeded(replicaId),
      failed: (replicaId, error) => this.fail(replicaId, error),
      swapFailed: (replicaId, specHash, error) => {
        const { error: text, retryInMs, attempts } = this.backoff.swapFailed(replicaId, specHash, error);
        const context = attempts < QUICK_SWAP_ATTEMPTS ? { replicaId } : { replicaId, swapAttempts: attempts };
        this.logger.warn({ nodeId: this.nodeId, ...context, err: text, retryInMs }, 'step failed');
      },
      containerSucceeded: (containerId) => this.backoff.containerSucceeded(containerId),
      containerFailed: (containerId, replicaId, error) => {
        const retryInMs = this.backoff.containerFailed(containerId, error);
        this.logger.warn({ nodeId: this.nodeId, replicaId, containerId, err: error, retryInMs }, 'step failed');
      },
      started: (replicaId, containerId, restart) => {
        this.restarts.noteStart(replicaId, containerId, restart);
        this.policies.started(replicaId, containerId, this.clock.nowMs());
        // A new run of the container: its probes start again from `starting`.
        this.health.forget(containerId);
      },
      hadSpec: (replicaId, specHash) => this.restarts.hadSpec(replicaId, specHash),
      removed: (container) => this.images.released(container),
      keptImages: (service, image, swap) => this.images.keptBy(service, image, swap, planned),
      ...(this.opts.containerInputs ? { inputsOf: this.opts.containerInputs } : {}),
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

  private fail(replicaId: string, error: string): void {
    const retryInMs = this.backoff.replicaFailed(replicaId, error);
    this.logger.warn({ nodeId: this.nodeId, replicaId, err: error, retryInMs }, 'step failed');
  }

  /**
   * One timer for the earliest retry, rather than one per failing replica. Only retries due from
   * the time the pass planned count: one due earlier was planned by that pass or has nothing to retry.
   */
  private armWakeTimer(planAtMs: number): void {
    if (this.wakeTimer) clearTimeout(this.wakeTimer);
    this.wakeTimer = null;
    if (!this.active) return;
    const earliestMs = Math.min(
      this.passRetryAtMs ?? Infinity,
      this.backoff.earliestRetryMs(planAtMs) ?? Infinity,
      this.policies.earliestDueMs(planAtMs) ?? Infinity,
    );
    if (earliestMs === Infinity) return;
    const nowMs = this.clock.nowMs();
    this.wakeTimer = setTimeout(() => {
      this.wakeTimer = null;
      this.requestPass();
    }, Math.max(0, earliestMs - nowMs));
    this.wakeTimer.unref();
  }

  private publishReports(current: readonly ObservedContainer[]): void {
    // First: a container no longer running drops its probes before its report is built.
    this.health.track(current);
    const reported = this.reporter.publish(current);
    // Forget what concerns replicas that are neither assigned nor present, and containers that are
    // gone: nothing will retry them, and these structures stay as small as the node's state.
    const present = new Set(current.map((c) => c.id));
    const assigned = new Set(this.target?.replicas.map((r) => r.replicaId));
    this.backoff.retain(reported, assigned, present);
    // Not before the first target: the counts of a replica whose container went while the agent
    // was down are still wanted when the target names it.
    if (this.target) {
      this.restarts.retain(reported);
      this.policies.retain(assigned);
    }
    for (const id of this.stoppedForSwap) if (!present.has(id)) this.stoppedForSwap.delete(id);
    this.savedCounts.save(false);
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
