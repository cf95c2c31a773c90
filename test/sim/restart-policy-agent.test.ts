/**
 * The agent's restart policies on the simulated runtime: the engine restarts none of these
 * containers (its policy is "no"); the agent starts a stopped one again after a delay that doubles
 * up to the cap, reports a crash loop with the exit code and the output's tail, leaves one down
 * under `never`, after an exit 0 under `on-failure` and after maxAttempts restarts in a row, and
 * restarts an unhealthy one under the same policy. Nothing asserts an upper bound on time: the
 * delays are lower bounds the agent must respect, the rest polls for outcomes.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import { performance } from 'node:perf_hooks';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { ReconcileLoop, type ReconcileLoopOptions } from '../../agent/reconciler/reconcile-loop.js';
import type { ContainerRuntime } from '../../agent/runtime/container-runtime.js';
import { SimulatedRuntime } from '../../agent/runtime/simulated-runtime.js';
import { containerSpecHash, type ContainerSpec, type RestartPolicy } from '../../shared/container-spec.js';
import type { AssignedReplica, ReplicaReport } from '../../shared/protocol.js';
import { containerSpec } from '../helpers/container-spec.js';

const IMAGE = 'httpd:1';
const NODE = 'node-r';

function replica(replicaId: string, overrides: Partial<ContainerSpec> = {}): AssignedReplica {
  const container = containerSpec(IMAGE, overrides);
  return { replicaId, service: 'web', specHash: containerSpecHash(container), container };
}

const policy = (over: Partial<RestartPolicy> = {}): RestartPolicy => ({
  policy: 'always',
  maxAttempts: null,
  backoffInitialMs: 100,
  backoffMaxMs: 400,
  resetAfterMs: 600_000,
  ...over,
});

const loops: ReconcileLoop[] = [];
afterEach(async () => {
  await Promise.all(loops.splice(0).map((l) => l.stop()));
});

const quiet = { info() {}, warn() {}, error() {} };

/** The simulated engine, recording when each start through the API was asked (performance.now). */
function recordingStarts(sim: SimulatedRuntime): { runtime: ContainerRuntime; startsAtMs: number[] } {
  const startsAtMs: number[] = [];
  const runtime = Object.assign(Object.create(sim) as SimulatedRuntime, {
    startContainer: (id: string) => {
      startsAtMs.push(performance.now());
      return sim.startContainer(id);
    },
  });
  return { runtime, startsAtMs };
}

async function startLoop(runtime: ContainerRuntime, target: AssignedReplica[], opts: Partial<ReconcileLoopOptions> = {}) {
  const reports = new Map<string, ReplicaReport>();
  const loop = new ReconcileLoop({
    nodeId: NODE,
    runtime,
    publishAddress: null,
    logger: quiet,
    onReport: (changed) => changed.forEach((r) => reports.set(r.replicaId, r)),
    onApplied: () => {},
    retryBaseMs: 5,
    retryCapMs: 40,
    reportWindowMs: 10,
    ...opts,
  });
  loops.push(loop);
  await loop.start();
  loop.setTarget(1, target);
  return { loop, reports };
}

const eventually = <T>(check: () => T) => vi.waitFor(check, { timeout: 10_000, interval: 5 });

function runningContainer(sim: SimulatedRuntime, replicaId: string) {
  return eventually(() => {
    const c = sim.containers().find((x) => x.replicaId === replicaId && x.state === 'running');
    expect(c).toBeDefined();
    return c!;
  });
}

describe('restart policies on the simulated runtime', () => {
  it('restarts a crashing container after delays that double up to the cap, and reports the crash loop', async () => {
    const sim = new SimulatedRuntime({ images: [IMAGE] });
    const { runtime, startsAtMs } = recordingStarts(sim);
    const r = replica('web-1', { restart: policy({ backoffInitialMs: 100, backoffMaxMs: 400 }) });
    const { reports } = await startLoop(runtime, [r]);
    let c = await runningContainer(sim, 'web-1');
    expect(c.enginePolicy).toBe('no');

    const gapsMs: number[] = [];
    for (let i = 0; i < 5; i++) {
      const starts = startsAtMs.length;
      const crashedAtMs = performance.now();
      sim.crash(c.id, 1, `boom ${i}\n`);
      // The engine leaves it exited: only the agent starts it again.
      expect(sim.tick()).toBe(0);
      if (i === 2) {
        // The third restart in a row is due: a crash loop, with what it printed.
        const looping = await eventually(() => {
          const report = reports.get('web-1')!;
          expect(report.crashLoop).toBeDefined();
          return report;
        });
        expect(looping).toMatchObject({ state: 'failed', error: 'exited with code 1' });
        expect(looping.crashLoop).toMatchObject({ restarts: 3, lastExitCode: 1, outputTail: 'boom 0\nboom 1\nboom 2\n' });
        expect(looping.crashLoop!.nextRestartAtMs).toBeGreaterThan(Date.now() - 1000);
      }
      await eventually(() => expect(startsAtMs.length).toBe(starts + 1));
      gapsMs.push(startsAtMs[starts]! - crashedAtMs);
      c = await runningContainer(sim, 'web-1');
    }
    // Each restart waited at least its delay: 100, 200, then 400 ms (the cap) and no more doubling.
    const delaysMs = [100, 200, 400, 400, 400];
    gapsMs.forEach((gap, i) => expect(gap).toBeGreaterThanOrEqual(delaysMs[i]! - 2));
    expect(gapsMs[4]!).toBeLessThan(800 * 4); // capped, not doubled again to 800, 1600...
    await eventually(() => expect(reports.get('web-1')).toMatchObject({ state: 'running', restarts: 5 }));
    // Running again: no crash loop to report while it runs.
    expect(reports.get('web-1')!.crashLoop).toBeUndefined();
  });

  it('leaves a container that exited 0 under on-failure stopped, and restarts one that failed', async () => {
    const sim = new SimulatedRuntime({ images: [IMAGE] });
    const { runtime, startsAtMs } = recordingStarts(sim);
    const { reports } = await startLoop(runtime, [replica('done', { restart: policy({ policy: 'on-failure' }) }), replica('fails', { restart: policy({ policy: 'on-failure' }), env: { X: '1' } })]);
    const done = await runningContainer(sim, 'done');
    const fails = await runningContainer(sim, 'fails');
    const starts = startsAtMs.length;
    sim.crash(done.id, 0);
    sim.crash(fails.id, 3);
    await eventually(() => expect(sim.containers().find((x) => x.id === fails.id)?.state).toBe('running'));
    await sleep(300); // three times the first delay: it would have started again by now
    expect(sim.containers().find((x) => x.id === done.id)?.state).toBe('exited');
    expect(startsAtMs.length).toBe(starts + 1);
    await eventually(() => expect(reports.get('done')).toMatchObject({ state: 'stopped', error: null, restarts: 0 }));
    expect(reports.get('fails')).toMatchObject({ state: 'running', restarts: 1 });
  });

  it('leaves a container stopped under never, with its exit code and why', async () => {
    const sim = new SimulatedRuntime({ images: [IMAGE] });
    const { runtime, startsAtMs } = recordingStarts(sim);
    const { reports } = await startLoop(runtime, [replica('once', { restart: policy({ policy: 'never' }) })]);
    const c = await runningContainer(sim, 'once');
    const starts = startsAtMs.length;
    sim.crash(c.id, 2, 'bad config\n');
    await eventually(() =>
      expect(reports.get('once')).toMatchObject({ state: 'failed', error: 'exited with code 2; not restarted: its restart policy is "never"', restarts: 0 }),
    );
    await sleep(300);
    expect(startsAtMs.length).toBe(starts);
    expect(reports.get('once')!.crashLoop).toBeUndefined();
  });

  it('gives up after maxAttempts restarts in a row, and says so', async () => {
    const sim = new SimulatedRuntime({ images: [IMAGE] });
    const { runtime, startsAtMs } = recordingStarts(sim);
    const { reports } = await startLoop(runtime, [replica('web-1', { restart: policy({ maxAttempts: 2 }) })]);
    for (let i = 0; i < 2; i++) {
      const c = await runningContainer(sim, 'web-1');
      const starts = startsAtMs.length;
      sim.crash(c.id, 1, `try ${i}\n`);
      await eventually(() => expect(startsAtMs.length).toBe(starts + 1));
    }
    const c = await runningContainer(sim, 'web-1');
    const starts = startsAtMs.length;
    sim.crash(c.id, 1, 'try 2\n');
    const down = await eventually(() => {
      const report = reports.get('web-1')!;
      expect(report.crashLoop?.nextRestartAtMs).toBeNull();
      return report;
    });
    expect(down).toMatchObject({
      state: 'failed',
      restarts: 2,
      error: 'exited with code 1; not restarted again: 2 restarts in a row, its restart policy allows 2',
      crashLoop: { restarts: 2, lastExitCode: 1, outputTail: 'try 0\ntry 1\ntry 2\n', nextRestartAtMs: null },
    });
    await sleep(500);
    expect(startsAtMs.length).toBe(starts);
  });

  it('restarts an unhealthy container under its policy, each restart counted and backed off', async () => {
    const sim = new SimulatedRuntime({ images: [IMAGE] });
    const { runtime, startsAtMs } = recordingStarts(sim);
    const healthcheck = { type: 'exec' as const, port: null, path: null, statusMin: null, statusMax: null, command: ['true'], intervalMs: 100, timeoutMs: 100, retries: 1, startPeriodMs: 0 };
    const { reports } = await startLoop(runtime, [replica('web-1', { healthcheck, restart: policy({ backoffInitialMs: 100 }) })]);
    const c = await runningContainer(sim, 'web-1');
    const starts = startsAtMs.length;
    sim.setHealth(c.id, { status: 'unhealthy', output: 'exited with code 1' });
    await eventually(() => expect(startsAtMs.length).toBeGreaterThanOrEqual(starts + 2));
    await eventually(() => expect(reports.get('web-1')!.restarts).toBeGreaterThanOrEqual(2));
    // The second restart waited twice the first delay.
    expect(startsAtMs[starts + 1]! - startsAtMs[starts]!).toBeGreaterThanOrEqual(200 - 2);
    // Healthy again: no more restarts.
    sim.setHealth(c.id, { status: 'healthy', output: null });
    await sleep(50);
    const after = startsAtMs.length;
    await sleep(1000);
    expect(startsAtMs.length).toBe(after);
    expect(sim.containers().find((x) => x.id === c.id)?.state).toBe('running');
  });

  it('leaves a replica without a policy to the engine, as ever', async () => {
    const sim = new SimulatedRuntime({ images: [IMAGE] });
    const { runtime, startsAtMs } = recordingStarts(sim);
    const r = replica('plain');
    expect(r.container.restart).toBeUndefined();
    await startLoop(runtime, [r]);
    const c = await runningContainer(sim, 'plain');
    expect(c.enginePolicy).toBe('unless-stopped');
    const starts = startsAtMs.length;
    sim.crash(c.id, 1);
    expect(sim.tick()).toBe(1);
    expect(sim.containers().find((x) => x.id === c.id)?.state).toBe('running');
    await sleep(100);
    expect(startsAtMs.length).toBe(starts);
  });
});
