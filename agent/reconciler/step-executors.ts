/**
 * What each planned step does on the engine (pulls excepted: the loop runs them detached). An
 * executor never throws: what fails is handed to the context, which records it against the
 * replica (or, for an outdated container's start, against that container) and backs off.
 *
 * The invariant they keep: a replica that has a serving container is never left without one by a
 * step that fails. A new container takes over by a swap (plan-steps.ts, Swap): created while the
 * old one serves, the old one stopped only just before the new one starts (a host port can have
 * one owner), started again if the new one will not start, removed only once it runs. An agent
 * that dies between any two of these leaves containers the planner can finish the swap from; what
 * it loses is held in memory only (which containers it stopped itself, so a later start of one of
 * them may count as a restart; how many swaps at a spec failed).
 */
import type { ContainerInputs, ContainerRuntime, ObservedContainer } from '../runtime/container-runtime.js';
import type { AssignedReplica } from '../../shared/protocol.js';
import type { Step, Swap } from './plan-steps.js';
import type { KeptImages } from './image-retention.js';
import type { Logger } from '../../shared/logger.js';

export type EngineStep = Exclude<Step, { kind: 'pull' }>;

export interface StepContext {
  readonly runtime: ContainerRuntime;
  readonly nodeId: string;
  /** Address host ports are bound to; null binds all interfaces. */
  readonly publishAddress: string | null;
  readonly stopTimeoutS: number;
  readonly logger: Pick<Logger, 'info' | 'warn'>;
  /** The containers the steps were planned from, by id. */
  readonly planned: ReadonlyMap<string, ObservedContainer>;
  /** Containers the agent stopped for a swap (outdated then): starting one of them again is no restart. */
  readonly stoppedForSwap: Set<string>;
  /** The replica's step worked: its failure, if any, is over. */
  succeeded(replicaId: string): void;
  /** The replica's step failed: it records the error and backs off. */
  failed(replicaId: string, error: string): void;
  /**
   * A swap to the replica's spec failed while an old version could serve: like failed, but after
   * a few attempts at one spec the next waits long, since each one stops the serving version.
   */
  swapFailed(replicaId: string, specHash: string, error: string): void;
  /**
   * A step on a container other than the one the replica is made of (an outdated container's
   * start, the removal of an old version) worked or failed: it backs off by container, and holds
   * back nothing of the replica.
   */
  containerSucceeded(containerId: string): void;
  containerFailed(containerId: string, replicaId: string, error: string): void;
  /** The agent started a container through the API; restart: one of the replica that had run. */
  started(replicaId: string, containerId: string, restart: boolean): void;
  /** Whether the replica's container last seen had this spec (so making one of it again is a restart). */
  hadSpec(replicaId: string, specHash: string): boolean;
  /** A container was removed (as planned from; undefined if it was not in the listing): its images may go. */
  removed?(container: ObservedContainer | undefined): void;
  /** What a new container of the service keeps beside its image (image-retention.ts); none when absent. */
  keptImages?(service: string, image: string, swap: Swap | null): KeptImages;
  /**
   * The mounts and environment a new container of the replica is made with (configs, secrets,
   * volumes); rejects with why it cannot be made now (a secret the node does not hold). Absent:
   * none, and the spec's `env`.
   */
  inputsOf?(replica: AssignedReplica): Promise<ContainerInputs>;
}

/** Docker's container name charset is [a-zA-Z0-9][a-zA-Z0-9_.-]*; the "tether-" prefix supplies the first character. */
export function containerName(nodeId: string, replicaId: string): string {
  return `tether-${nodeId.slice(0, 12)}-${replicaId}`.replace(/[^a-zA-Z0-9_.-]/g, '-');
}

/**
 * One executor per kind of engine step, looked up by the step's kind. Keyed by the union itself,
 * so a new kind of step without an executor does not compile (a switch would need a default).
 */
export type StepExecutors = { [K in EngineStep['kind']]: (step: Extract<EngineStep, { kind: K }>, ctx: StepContext) => Promise<void> };

export const stepExecutors: StepExecutors = {
  remove: (step, ctx) => remove(step, ctx),
  create: (step, ctx) => create(step, ctx),
  start: (step, ctx) => {
    const restart = isRestart(step.containerId, ctx);
    const specHash = ctx.planned.get(step.containerId)?.specHash ?? '';
    return swapIn(step.containerId, step.replicaId, specHash, step.swap, restart, ctx);
  },
  'start-stand-in': (step, ctx) => startOutdated(step.containerId, step.replicaId, ctx),
  restart: (step, ctx) => restart(step, ctx),
};

export function executeStep(step: EngineStep, ctx: StepContext): Promise<void> {
  // The cast joins what TypeScript cannot correlate: the executor of step.kind takes that step.
  const execute = stepExecutors[step.kind] as (step: EngineStep, ctx: StepContext) => Promise<void>;
  return execute(step, ctx);
}

async function remove(step: Extract<Step, { kind: 'remove' }>, ctx: StepContext): Promise<void> {
  const { containerId, replicaId, reason } = step;
  try {
    await ctx.runtime.stopContainer(containerId, ctx.stopTimeoutS);
    await ctx.runtime.removeContainer(containerId);
    ctx.containerSucceeded(containerId);
    // A dead or duplicate container goes beside the replica's own: its images stay the replica's.
    if (reason === 'outdated' || reason === 'unassigned') ctx.removed?.(ctx.planned.get(containerId));
    ctx.logger.info({ replicaId, containerId, reason }, 'removed container');
  } catch (err) {
    const error = `remove failed: ${messageOf(err)}`;
    // An outdated or duplicate container goes beside one of the replica's spec that runs: the
    // replica is fine, and only this removal is retried.
    if (reason === 'outdated' || reason === 'duplicate') ctx.containerFailed(containerId, replicaId, error);
    else ctx.failed(replicaId, error);
  }
}

async function create(step: Extract<Step, { kind: 'create' }>, ctx: StepContext): Promise<void> {
  const r = step.replica;
  // Made again for the spec it last ran (its container died or was removed): a restart.
  const remade = ctx.hadSpec(r.replicaId, r.specHash);
  let containerId: string;
  try {
    const inputs = await ctx.inputsOf?.(r);
    containerId = await ctx.runtime.createContainer({
      nodeId: ctx.nodeId,
      replicaId: r.replicaId,
      service: r.service,
      specHash: r.specHash,
      name: nameFor(ctx, r.replicaId, r.specHash),
      spec: r.container,
      publishAddress: ctx.publishAddress,
      ...(ctx.keptImages?.(r.service, r.container.image, step.swap) ?? {}),
      ...(inputs ? { inputs } : {}),
    });
  } catch (err) {
    ctx.failed(r.replicaId, `create failed: ${messageOf(err)}`);
    // The old container was not touched; if it had stopped by itself, it serves meanwhile.
    const fallbackId = step.swap?.fallbackId;
    if (fallbackId && ctx.planned.get(fallbackId)?.state !== 'running') await startOutdated(fallbackId, r.replicaId, ctx);
    return;
  }
  ctx.logger.info({ replicaId: r.replicaId, containerId, service: r.service, specHash: r.specHash, remade }, 'created container');
  await swapIn(containerId, r.replicaId, r.specHash, step.swap, remade, ctx);
}

/** Starts a container of the replica's spec, by the swap if outdated containers are left. */
async function swapIn(
  containerId: string,
  replicaId: string,
  specHash: string,
  swap: Swap | null,
  restart: boolean,
  ctx: StepContext,
): Promise<void> {
  let action = 'stop of the old version';
  try {
    for (const oldId of swap?.oldIds ?? []) {
      const state = ctx.planned.get(oldId)?.state;
      if (state === 'running' || state === 'restarting' || state === 'paused') ctx.stoppedForSwap.add(oldId);
      await ctx.runtime.stopContainer(oldId, ctx.stopTimeoutS);
    }
    action = 'start';
    const result = await ctx.runtime.startContainer(containerId);
    ctx.stoppedForSwap.delete(containerId);
    ctx.succeeded(replicaId);
    // Already running (Docker's 304): someone else started it, and this call restarted nothing.
    if (result === 'started') ctx.started(replicaId, containerId, restart);
    ctx.logger.info({ replicaId, containerId, replaced: swap?.oldIds ?? [] }, 'started container');
  } catch (err) {
    const error = `${action} failed: ${messageOf(err)}`;
    if (swap?.fallbackId) {
      ctx.swapFailed(replicaId, specHash, error);
      await startOutdated(swap.fallbackId, replicaId, ctx);
    } else {
      ctx.failed(replicaId, error);
    }
    return;
  }
  // It runs: the old versions go. One the engine will not remove now is retried by a later pass
  // (the planner removes outdated containers beside a running one); the update itself is done.
  for (const oldId of swap?.oldIds ?? []) {
    try {
      await ctx.runtime.removeContainer(oldId);
      ctx.removed?.(ctx.planned.get(oldId));
      ctx.logger.info({ replicaId, containerId: oldId, reason: 'outdated' }, 'removed container');
    } catch (err) {
      ctx.containerFailed(oldId, replicaId, `remove of the old version failed: ${messageOf(err)}`);
    }
  }
}

/**
 * Restarts a running container its restart policy gives up on as unhealthy: a restart of the
 * replica, counted as one, whether the stop or the start fails (the replica backs off then).
 */
async function restart(step: Extract<Step, { kind: 'restart' }>, ctx: StepContext): Promise<void> {
  const { containerId, replicaId } = step;
  let action = 'stop';
  try {
    await ctx.runtime.stopContainer(containerId, ctx.stopTimeoutS);
    action = 'start';
    const result = await ctx.runtime.startContainer(containerId);
    ctx.succeeded(replicaId);
    if (result === 'started') ctx.started(replicaId, containerId, true);
    ctx.logger.info({ replicaId, containerId }, 'restarted the unhealthy container');
  } catch (err) {
    ctx.failed(replicaId, `restart of the unhealthy container: ${action} failed: ${messageOf(err)}`);
  }
}

/**
 * Starts an outdated container: the stand-in of a replica whose replacement cannot run yet, or
 * the fallback of a swap whose new container would not start.
 */
async function startOutdated(containerId: string, replicaId: string, ctx: StepContext): Promise<void> {
  try {
    const restart = isRestart(containerId, ctx);
    const result = await ctx.runtime.startContainer(containerId);
    ctx.containerSucceeded(containerId);
    ctx.stoppedForSwap.delete(containerId);
    if (result === 'started') ctx.started(replicaId, containerId, restart);
    ctx.logger.info({ replicaId, containerId }, 'started the outdated container: it serves until its replacement runs');
  } catch (err) {
    ctx.containerFailed(containerId, replicaId, `start of the running version failed: ${messageOf(err)}`);
  }
}

/**
 * Whether starting this container is a restart of its replica: it had run and exited (one never
 * started has not), and not because the agent stopped it for a swap. Judged from the listing the
 * step was planned from, so a container stopped by an operator counts too: the count cannot tell
 * a stop from a crash.
 */
function isRestart(containerId: string, ctx: StepContext): boolean {
  return ctx.planned.get(containerId)?.state === 'exited' && !ctx.stoppedForSwap.has(containerId);
}

/**
 * The replica's name, or, while one of its containers holds that (the old version during a swap),
 * the name with the spec hash. Not renamed once the old one is gone: a rename is one more engine
 * call that can fail mid-update, and a name identifies nothing (the labels do); the next update
 * takes the plain name again.
 */
function nameFor(ctx: StepContext, replicaId: string, specHash: string): string {
  const name = containerName(ctx.nodeId, replicaId);
  for (const c of ctx.planned.values()) if (c.name === name) return `${name}-${specHash.slice(0, 12)}`;
  return name;
}

export function messageOf(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}
