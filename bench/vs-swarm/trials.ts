/**
 * The four workloads, each one trial on one side: a fresh service, timed from the request to the
 * moment the engine shows the wanted containers running (polled every POLL_MS, the same for every
 * side), then removed until the engine has none of it left.
 */
import { listContainers, removeLabelled, type ListedContainer } from './engine.js';
import type { Side, Workload } from './sides.js';
import type { Tether } from './tether.js';
import { recordView, timeline, type Timeline } from './timeline.js';

export const POLL_MS = 75;
/** One wait for containers (to run, or to be gone) at most this long. */
const WAIT_TIMEOUT_MS = 120_000;
/** After an update's containers run, how long Tether's rollout gets to say how it ended (monitor included). */
const SETTLE_TIMEOUT_MS = 15_000;

export type WorkloadName = 'create 50' | 'scale 10 -> 30' | 'update image' | 'rollback';

export interface Images {
  /** Image ids, as the engine lists them on each container. */
  oldId: string;
  newId: string;
  old: string;
  new: string;
}

export interface TrialContext {
  side: Side;
  service: string;
  runLabels: Record<string, string>;
  images: Images;
  command: string[];
  failingCommand: string[];
  parallelism: number;
  monitor: string;
  signal: AbortSignal;
  /** Set on Tether's side: its update trials also say where the time went. */
  tether: Tether | null;
}

export interface TrialResult {
  seconds: number;
  timeline: Timeline | null;
}

const SERVICE_LABEL = 'bench.vs-swarm.service';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/**
 * Polls the engine for the service's containers until `done` holds; returns when it was seen to
 * (epoch ms). Fails on timeout, abort, or when `failed()` has a reason (the action itself failed).
 */
async function waitFor(
  ctx: TrialContext,
  what: string,
  done: (containers: ListedContainer[]) => boolean,
  failed: () => unknown = () => null,
): Promise<number> {
  const deadline = Date.now() + WAIT_TIMEOUT_MS;
  let last: ListedContainer[] = [];
  for (;;) {
    if (ctx.signal.aborted) throw new Error(`${ctx.side.name} ${ctx.service}: stopped waiting for ${what} (${String(ctx.signal.reason)})`);
    const failure = failed();
    if (failure) throw failure;
    last = await listContainers([`${SERVICE_LABEL}=${ctx.service}`]);
    const seenAt = Date.now();
    if (done(last)) return seenAt;
    if (seenAt > deadline) {
      const states = last.map((c) => `${c.State}:${c.Command}`).join(', ');
      throw new Error(`${ctx.side.name} ${ctx.service}: no ${what} after ${WAIT_TIMEOUT_MS} ms (containers: ${states || 'none'})`);
    }
    await sleep(POLL_MS);
  }
}

const running = (cs: ListedContainer[], imageId: string, command: string[]) =>
  cs.filter((c) => c.State === 'running' && c.ImageID === imageId && c.Command === command.join(' ')).length;

/** Starts `action` and waits for `done`, failing as soon as the action does; the time is the engine's. */
async function timed(ctx: TrialContext, what: string, action: () => Promise<void>, done: (cs: ListedContainer[]) => boolean): Promise<{ t0: number; endMs: number }> {
  let failure: unknown = null;
  const t0 = Date.now();
  const pending = action().catch((err) => {
    failure = err ?? new Error('failed');
  });
  const endMs = await waitFor(ctx, what, done, () => failure);
  await pending;
  if (failure) throw failure;
  return { t0, endMs };
}

function workload(ctx: TrialContext, image: string, command = ctx.command): Workload {
  return { image, command, labels: { ...ctx.runLabels, [SERVICE_LABEL]: ctx.service }, parallelism: ctx.parallelism, monitor: ctx.monitor };
}

/** A service of `replicas` on the old image, running before the timed part starts. */
async function prepare(ctx: TrialContext, replicas: number): Promise<void> {
  const w = workload(ctx, ctx.images.old);
  await timed(ctx, `${replicas} running`, () => ctx.side.create(ctx.service, replicas, w), (cs) => running(cs, ctx.images.oldId, ctx.command) === replicas);
}

/**
 * Removes the service, and its containers by force at the same time (untimed: the side's own
 * removal is not measured, and this is quicker on a busy engine).
 */
export async function removeService(ctx: TrialContext): Promise<void> {
  const w = workload(ctx, ctx.images.old);
  const selector = [`${SERVICE_LABEL}=${ctx.service}`];
  try {
    await ctx.side.remove(ctx.service, w);
  } finally {
    await removeLabelled(selector);
    const deadline = Date.now() + WAIT_TIMEOUT_MS;
    // The side may still be making one as the removal starts (and Swarm stops its tasks itself).
    while ((await listContainers(selector)).length > 0) {
      if (Date.now() > deadline) throw new Error(`${ctx.side.name} ${ctx.service}: containers left after ${WAIT_TIMEOUT_MS} ms`);
      await sleep(POLL_MS);
      await removeLabelled(selector);
    }
  }
}

/** One trial of `name` on ctx.side; the service is removed afterwards, whatever happened. */
export async function runTrial(name: WorkloadName, ctx: TrialContext): Promise<TrialResult> {
  try {
    switch (name) {
      case 'create 50': {
        const w = workload(ctx, ctx.images.old);
        const { t0, endMs } = await timed(ctx, '50 running', () => ctx.side.create(ctx.service, 50, w), (cs) => running(cs, ctx.images.oldId, ctx.command) === 50);
        return { seconds: (endMs - t0) / 1000, timeline: null };
      }
      case 'scale 10 -> 30': {
        await prepare(ctx, 10);
        const w = workload(ctx, ctx.images.old);
        const { t0, endMs } = await timed(ctx, '30 running', () => ctx.side.scale(ctx.service, 10, 30, w), (cs) => running(cs, ctx.images.oldId, ctx.command) === 30);
        return { seconds: (endMs - t0) / 1000, timeline: null };
      }
      case 'update image': {
        await prepare(ctx, 10);
        const w = workload(ctx, ctx.images.new);
        return await updateTrial(ctx, 'all 10 on the new image', w, (cs) => running(cs, ctx.images.newId, ctx.command) === 10 && running(cs, ctx.images.oldId, ctx.command) === 0);
      }
      case 'rollback': {
        await prepare(ctx, 10);
        const w = workload(ctx, ctx.images.old, ctx.failingCommand);
        // All 10 run the old spec before the update too: done only once the update has visibly
        // happened (a container of the failing spec was made, an old one stopped) and been undone.
        let seenFailing = false;
        let dipped = false;
        return await updateTrial(ctx, 'all 10 back on the old spec', w, (cs) => {
          const old = running(cs, ctx.images.oldId, ctx.command);
          seenFailing ||= cs.some((c) => c.Command === ctx.failingCommand.join(' '));
          dipped ||= old < 10;
          const failingRunning = running(cs, ctx.images.oldId, ctx.failingCommand);
          return seenFailing && dipped && old === 10 && failingRunning === 0;
        });
      }
    }
  } finally {
    await removeService(ctx);
  }
}

async function updateTrial(ctx: TrialContext, what: string, w: Workload, done: (cs: ListedContainer[]) => boolean): Promise<TrialResult> {
  const t0 = Date.now();
  const recorder = ctx.tether ? recordView(ctx.tether.api, ctx.service, t0) : null;
  let acceptedMs = 0;
  try {
    const { endMs } = await timed(
      ctx,
      what,
      async () => {
        await ctx.side.update!(ctx.service, 10, w);
        acceptedMs = Date.now() - t0;
      },
      done,
    );
    const doneMs = endMs - t0;
    if (recorder) await settled(ctx);
    const samples = recorder ? await recorder.stop() : null;
    const tl = samples && ctx.tether ? await timeline(samples, ctx.tether.agentLog, t0, acceptedMs, doneMs) : null;
    return { seconds: doneMs / 1000, timeline: tl };
  } finally {
    await recorder?.stop();
  }
}

/** Untimed: waits (a while at most) for Tether's rollout to end, so that its timeline shows how it ended. */
async function settled(ctx: TrialContext): Promise<void> {
  const deadline = Date.now() + SETTLE_TIMEOUT_MS;
  while (Date.now() < deadline && !ctx.signal.aborted) {
    const rollout = (await ctx.tether!.api<{ rollout: { state: string } | null }>('GET', `/v1/services/${ctx.service}`)).body.rollout;
    if (rollout === null || (rollout.state !== 'updating' && rollout.state !== 'rolling-back')) return;
    await sleep(POLL_MS);
  }
}
