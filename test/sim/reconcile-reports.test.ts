/**
 * What the hub hears from the reconcile loop while a long pass runs: replica reports as the steps
 * finish (coalesced, at most one frame per window), and acks of a generation whose images are
 * still being pulled (`pending`).
 */
import { setTimeout as sleep } from 'node:timers/promises';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { ReconcileLoop, type ReconcileLoopOptions } from '../../agent/reconciler/reconcile-loop.js';
import type { ContainerRuntime } from '../../agent/runtime/container-runtime.js';
import { SimulatedRuntime } from '../../agent/runtime/simulated-runtime.js';
import { containerSpecHash, type ContainerSpec } from '../../shared/container-spec.js';
import type { AssignedReplica, ReplicaReport } from '../../shared/protocol.js';
import { containerSpec } from '../helpers/container-spec.js';

function replica(replicaId: string, overrides: Partial<ContainerSpec> = {}): AssignedReplica {
  const container = containerSpec('httpd:1', overrides);
  return { replicaId, service: 'web', specHash: containerSpecHash(container), container };
}

/**
 * The simulated runtime with starts (and removals) that take startDelayMs (removeDelayMs) each: it
 * has a pull delay of its own, but none for these. A node whose engine is slow.
 */
function slowStarts(runtime: SimulatedRuntime, startDelayMs: number, removeDelayMs = 0): ContainerRuntime {
  return {
    version: () => runtime.version(),
    listContainers: (nodeId) => runtime.listContainers(nodeId),
    hasImage: (image) => runtime.hasImage(image),
    pullImage: (image, auth, signal, progress) => runtime.pullImage(image, auth, signal, progress),
    imagesInUse: () => runtime.imagesInUse(),
    removeImage: (image) => runtime.removeImage(image),
    createContainer: (req) => runtime.createContainer(req),
    startContainer: async (id) => {
      await sleep(startDelayMs);
      return runtime.startContainer(id);
    },
    stopContainer: (id, timeoutS) => runtime.stopContainer(id, timeoutS),
    removeContainer: async (id) => {
      await sleep(removeDelayMs);
      return runtime.removeContainer(id);
    },
    watchEvents: (nodeId, onEvent) => runtime.watchEvents(nodeId, onEvent),
  };
}

/** One onReport call as the hub would get it, with what the engine ran at that moment. */
interface Frame {
  atMs: number;
  reports: ReplicaReport[];
  /** Ids of the containers running in the engine when the frame went out. */
  runningIds: Set<string>;
}

interface Ack {
  generation: number;
  pending: number;
  /** Replica ids with a container in the engine when the ack went out. */
  madeIds: string[];
}

const quiet = { info() {}, warn() {}, error() {} };
const loops: ReconcileLoop[] = [];
afterEach(async () => {
  await Promise.all(loops.splice(0).map((l) => l.stop()));
});

async function startLoop(sim: SimulatedRuntime, runtime: ContainerRuntime, opts: Partial<ReconcileLoopOptions> = {}) {
  const frames: Frame[] = [];
  const acks: Ack[] = [];
  const running = () => new Set(sim.containers().filter((c) => c.state === 'running').map((c) => c.id));
  const loop = new ReconcileLoop({
    nodeId: 'node-a',
    runtime,
    publishAddress: null,
    logger: quiet,
    onReport: (reports) => frames.push({ atMs: performance.now(), reports, runningIds: running() }),
    onApplied: (generation: number, pending = 0) => acks.push({ generation, pending, madeIds: sim.containers().map((c) => c.replicaId) }),
    retryBaseMs: 5,
    retryCapMs: 40,
    // One pass only, however long: the resync timer must not add passes of its own.
    resyncIntervalMs: 3_600_000,
    ...opts,
  });
  loops.push(loop);
  await loop.start();
  return { loop, frames, acks };
}

/** The latest report per replica over the frames. */
function latest(frames: readonly Frame[]): Map<string, ReplicaReport> {
  const byId = new Map<string, ReplicaReport>();
  for (const f of frames) for (const r of f.reports) byId.set(r.replicaId, r);
  return byId;
}

const eventually = (check: () => void, timeout = 10_000) => vi.waitFor(check, { timeout, interval: 10 });

const REPLICAS = 80;
const START_DELAY_MS = 40;
const WINDOW_MS = 100;

describe('reports while a pass runs', () => {
  it('with slow starts, the first replicas are reported running before the last ones are started', async () => {
    const sim = new SimulatedRuntime({ images: ['httpd:1'] });
    const a = await startLoop(sim, slowStarts(sim, START_DELAY_MS), { reportWindowMs: WINDOW_MS });
    const target = Array.from({ length: REPLICAS }, (_, i) => replica(`r${i}`));
    a.loop.setTarget(1, target);

    await eventually(() => {
      const reports = latest(a.frames);
      expect([...reports.values()].filter((r) => r.state === 'running')).toHaveLength(REPLICAS);
    });
    const firstRunning = a.frames.find((f) => f.reports.some((r) => r.state === 'running'))!;
    // Reported while most of the node was still being started: not at the end of the pass.
    expect(firstRunning.runningIds.size).toBeLessThan(REPLICAS);
    // Never a claim the engine does not back: every 'running' report names a running container.
    for (const f of a.frames) {
      for (const r of f.reports) if (r.state === 'running') expect(f.runningIds.has(r.containerId!), r.replicaId).toBe(true);
    }
    expect(a.acks).toEqual([{ generation: 1, pending: 0, madeIds: expect.any(Array) }]);
  });

  it('coalesces: frames are a window apart, several replicas in each, and the pass end corrects nothing', async () => {
    const sim = new SimulatedRuntime({ images: ['httpd:1'] });
    const a = await startLoop(sim, slowStarts(sim, START_DELAY_MS), { reportWindowMs: WINDOW_MS });
    a.loop.setTarget(1, Array.from({ length: REPLICAS }, (_, i) => replica(`r${i}`)));
    await eventually(() => expect(a.acks).toHaveLength(1));
    await sleep(2 * WINDOW_MS);

    // More than one frame (reported as the starts finished), far fewer than the replicas.
    const withRunning = a.frames.filter((f) => f.reports.some((r) => r.state === 'running'));
    expect(withRunning.length).toBeGreaterThan(1);
    expect(a.frames.length).toBeLessThan(REPLICAS / 4);
    // Never more than one frame per window (a timer may fire a millisecond early).
    for (let i = 1; i < a.frames.length; i++) expect(a.frames[i]!.atMs - a.frames[i - 1]!.atMs).toBeGreaterThanOrEqual(WINDOW_MS - 2);
    // Each replica reported running once: the end-of-pass listing had nothing left to add.
    const runningReports = a.frames.flatMap((f) => f.reports).filter((r) => r.state === 'running');
    expect(runningReports).toHaveLength(REPLICAS);
    expect(a.loop.snapshot().filter((r) => r.state === 'running')).toHaveLength(REPLICAS);
  });

  it('with slow removals, replicas moved away are reported removed before the last one goes', async () => {
    const sim = new SimulatedRuntime({ images: ['httpd:1'] });
    const a = await startLoop(sim, slowStarts(sim, 0, START_DELAY_MS), { reportWindowMs: WINDOW_MS });
    const target = Array.from({ length: REPLICAS }, (_, i) => replica(`r${i}`));
    a.loop.setTarget(1, target);
    await eventually(() => expect(a.acks).toHaveLength(1));

    // All but one move away: their containers go, one slow removal after the other.
    a.loop.setTarget(2, target.slice(0, 1));
    await eventually(() => expect([...latest(a.frames).values()].filter((r) => r.state === 'removed')).toHaveLength(REPLICAS - 1));
    const firstRemoved = a.frames.find((f) => f.reports.some((r) => r.state === 'removed'))!;
    expect(firstRemoved.runningIds.size).toBeGreaterThan(1);
    // Each said once, and what is left is the one replica still assigned.
    expect(a.frames.flatMap((f) => f.reports).filter((r) => r.state === 'removed')).toHaveLength(REPLICAS - 1);
    await eventually(() => expect(a.acks.at(-1)).toMatchObject({ generation: 2, pending: 0 }));
    expect(a.loop.snapshot().map((r) => r.replicaId)).toEqual(['r0']);
  });

  it('keeps each frame within the limit given, the rest in the next windows', async () => {
    const sim = new SimulatedRuntime({ images: ['httpd:1'] });
    const a = await startLoop(sim, sim, { reportWindowMs: 20, maxReportsPerFrame: 7 });
    a.loop.setTarget(1, Array.from({ length: 30 }, (_, i) => replica(`r${i}`)));
    await eventually(() => expect([...latest(a.frames).values()].filter((r) => r.state === 'running')).toHaveLength(30));
    for (const f of a.frames) expect(f.reports.length).toBeLessThanOrEqual(7);
    expect(a.frames.length).toBeGreaterThanOrEqual(5);
  });
});

describe('partial acks', () => {
  it('acks a generation with the replicas waiting on a slow pull pending, then with none', async () => {
    const sim = new SimulatedRuntime({ images: ['httpd:1'], pullDelayMs: 400 });
    const a = await startLoop(sim, sim);
    a.loop.setTarget(1, [replica('r1'), replica('r2'), replica('r3', { image: 'app:2' }), replica('r4', { image: 'app:2' })]);

    await eventually(() => expect(a.acks).toContainEqual(expect.objectContaining({ generation: 1, pending: 2 })));
    // Acked while the pull ran: the two replicas of the present image were made, the others not.
    const partial = a.acks.find((x) => x.pending === 2)!;
    expect(partial.madeIds.sort()).toEqual(['r1', 'r2']);
    expect(a.loop.appliedGeneration).toBe(1);
    expect(a.loop.appliedPending).toBe(2);

    await eventually(() => expect(a.acks.at(-1)).toMatchObject({ generation: 1, pending: 0 }));
    expect(a.acks.at(-1)!.madeIds.sort()).toEqual(['r1', 'r2', 'r3', 'r4']);
    expect(a.acks.map((x) => [x.generation, x.pending])).toEqual([
      [1, 2],
      [1, 0],
    ]);
    expect(a.loop.appliedPending).toBe(0);
  });

  it('a newer target supersedes a partial ack; a failed pull counts as acted on', async () => {
    const sim = new SimulatedRuntime({ images: ['httpd:1'], pullDelayMs: 60_000, pullableImages: (image) => image !== 'gone:1' });
    const a = await startLoop(sim, sim);
    a.loop.setTarget(1, [replica('r1'), replica('r2', { image: 'huge:1' })]);
    await eventually(() => expect(a.acks).toContainEqual(expect.objectContaining({ generation: 1, pending: 1 })));

    // The pull of huge:1 goes on for 60 s; the newer target wants another image, which fails.
    a.loop.setTarget(2, [replica('r1'), replica('r3', { image: 'gone:1' })]);
    await eventually(() => expect(a.acks.at(-1)).toMatchObject({ generation: 2, pending: 0 }));
    await sleep(200);
    const acks = a.acks.map((x) => [x.generation, x.pending]);
    expect(acks.filter(([generation]) => generation === 1)).toEqual([[1, 1]]);
    // Its retries (with backoff) do not make it pending again: [2, 0] was the last word.
    expect(acks.findIndex(([g, pending]) => g === 2 && pending === 0)).toBe(acks.length - 1);
    expect(a.loop.appliedGeneration).toBe(2);
  });
});
