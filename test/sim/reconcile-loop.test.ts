import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { setTimeout as sleep } from 'node:timers/promises';
import os from 'node:os';
import path from 'node:path';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { ReconcileLoop, containerName, type ReconcileLoopOptions } from '../../agent/reconciler/reconcile-loop.js';
import type { RestartCountStore, RestartRecords } from '../../agent/reconciler/restart-tally.js';
import { RestartCountsFile } from '../../agent/restart-counts-file.js';
import type { ContainerRuntime, ObservedContainer } from '../../agent/runtime/container-runtime.js';
import { SimulatedRuntime } from '../../agent/runtime/simulated-runtime.js';
import { containerSpecHash, type ContainerSpec } from '../../shared/container-spec.js';
import type { AssignedReplica, ReplicaReport } from '../../shared/protocol.js';
import { containerSpec } from '../helpers/container-spec.js';

function replica(replicaId: string, overrides: Partial<ContainerSpec> = {}, service = 'web'): AssignedReplica {
  const container = containerSpec('httpd:1', overrides);
  return { replicaId, service, specHash: containerSpecHash(container), container };
}

interface Agent {
  loop: ReconcileLoop;
  /** The latest report per replica, as the hub would hold it. */
  reports: Map<string, ReplicaReport>;
  /** Generations acked as wholly applied (nothing pending). */
  applied: number[];
  /** Every ack, as [generation, pending]. */
  acks: Array<[number, number]>;
}

const loops: ReconcileLoop[] = [];
const dirs: string[] = [];
afterEach(async () => {
  await Promise.all(loops.splice(0).map((l) => l.stop()));
  await Promise.all(dirs.splice(0).map((d) => rm(d, { recursive: true, force: true })));
});

async function dataDir(): Promise<string> {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'tether-restarts-'));
  dirs.push(dir);
  return dir;
}

/** The runtime as the loop sees it, with one listing changed by `edit` (say, an engine whose list lags). */
function withListing(runtime: SimulatedRuntime, edit: (list: ObservedContainer[]) => ObservedContainer[]): ContainerRuntime {
  return {
    version: () => runtime.version(),
    listContainers: async (nodeId) => edit(await runtime.listContainers(nodeId)),
    hasImage: (image) => runtime.hasImage(image),
    pullImage: (image, auth, signal, progress) => runtime.pullImage(image, auth, signal, progress),
    imagesInUse: () => runtime.imagesInUse(),
    removeImage: (image) => runtime.removeImage(image),
    createContainer: (req) => runtime.createContainer(req),
    startContainer: (id) => runtime.startContainer(id),
    stopContainer: (id, timeoutS) => runtime.stopContainer(id, timeoutS),
    removeContainer: (id) => runtime.removeContainer(id),
    watchEvents: (nodeId, onEvent) => runtime.watchEvents(nodeId, onEvent),
  };
}

const quiet = { info() {}, warn() {}, error() {} };

async function startAgent(runtime: ContainerRuntime, nodeId: string, opts: Partial<ReconcileLoopOptions> = {}): Promise<Agent> {
  const reports = new Map<string, ReplicaReport>();
  const applied: number[] = [];
  const acks: Array<[number, number]> = [];
  const loop = new ReconcileLoop({
    nodeId,
    runtime,
    publishAddress: null,
    logger: quiet,
    onReport: (changed) => changed.forEach((r) => reports.set(r.replicaId, r)),
    onApplied: (generation, pending) => {
      acks.push([generation, pending]);
      if (pending === 0) applied.push(generation);
    },
    // Short delays keep retries quick; nothing below asserts on time, it polls for outcomes.
    retryBaseMs: 5,
    retryCapMs: 40,
    ...opts,
  });
  loops.push(loop);
  await loop.start();
  return { loop, reports, applied, acks };
}

function containersOf(runtime: SimulatedRuntime, nodeId: string) {
  return runtime.containers().filter((c) => c.nodeId === nodeId);
}

function states(agent: Agent): Record<string, string> {
  return Object.fromEntries([...agent.reports].map(([id, r]) => [id, r.state]));
}

/** The runtime, counting the stops of one container (the serving old version of an update). */
function stopCounter(runtime: SimulatedRuntime): { runtime: ContainerRuntime; watchedId: string; count: number } {
  const counter = {
    watchedId: '',
    count: 0,
    runtime: {
      ...withListing(runtime, (list) => list),
      stopContainer: (id: string, timeoutS: number) => {
        if (id === counter.watchedId) counter.count++;
        return runtime.stopContainer(id, timeoutS);
      },
    } as ContainerRuntime,
  };
  return counter;
}

const eventually = (check: () => void) => vi.waitFor(check, { timeout: 5_000, interval: 5 });

describe('ReconcileLoop on the simulated runtime', () => {
  it("lets a cached (provisional) target yield to the hub's, even of a lower generation", async () => {
    const runtime = new SimulatedRuntime({ images: ['httpd:1'] });
    const a = await startAgent(runtime, 'node-a');
    a.loop.setTarget(7, [replica('r1'), replica('r2')], { provisional: true });
    await eventually(() => expect(states(a)).toEqual({ r1: 'running', r2: 'running' }));
    // A hub restored from a backup counts from lower: its word still rules, and r2 goes.
    a.loop.setTarget(3, [replica('r1')]);
    await eventually(() => {
      expect(runtime.containers().filter((c) => c.state === 'running').map((c) => c.replicaId)).toEqual(['r1']);
      expect(a.applied).toContain(3);
    });
    // A target the hub sent is no longer provisional: an older one than it is ignored again.
    a.loop.setTarget(2, []);
    await new Promise((r) => setTimeout(r, 100));
    expect(runtime.containers().filter((c) => c.state === 'running').map((c) => c.replicaId)).toEqual(['r1']);
  });

  it('acks no cached (provisional) target, however far it got: only the hub\'s own is acked', async () => {
    const runtime = new SimulatedRuntime({ images: ['httpd:1'] });
    const a = await startAgent(runtime, 'node-a');
    // An unassigned container the provisional target leaves alone.
    a.loop.setTarget(1, [replica('r0')]);
    await eventually(() => expect(a.applied).toEqual([1]));
    a.loop.setTarget(5, [replica('r1')], { provisional: true });
    await eventually(() => expect(states(a)).toMatchObject({ r0: 'running', r1: 'running' }));
    await a.loop.runOnce();
    // The hub would take 5 as applied, although r0 still runs.
    expect(a.acks).toEqual([[1, 0]]);
    expect(a.loop.appliedGeneration).toBe(1);
    a.loop.setTarget(5, [replica('r1')]);
    await eventually(() => expect(a.acks).toEqual([[1, 0], [5, 0]]));
    expect(runtime.containers().filter((c) => c.state === 'running').map((c) => c.replicaId)).toEqual(['r1']);
  });

  it('brings a target of 3 replicas to 3 running containers, reports them and acks the generation', async () => {
    const runtime = new SimulatedRuntime({ images: ['httpd:1'] });
    const a = await startAgent(runtime, 'node-a');
    const target = [replica('r1'), replica('r2'), replica('r3')];
    a.loop.setTarget(1, target);

    await eventually(() => {
      expect(states(a)).toEqual({ r1: 'running', r2: 'running', r3: 'running' });
      expect(a.applied).toEqual([1]);
    });
    const containers = containersOf(runtime, 'node-a');
    expect(containers.map((c) => [c.name, c.state, c.specHash]).sort()).toEqual(
      target.map((r) => [containerName('node-a', r.replicaId), 'running', r.specHash]).sort(),
    );
    expect(a.loop.appliedGeneration).toBe(1);
    expect(a.loop.snapshot().map((r) => r.containerId).sort()).toEqual(containers.map((c) => c.id).sort());
  });

  it('replaces a container whose spec hash changed, even on the same host port', async () => {
    const runtime = new SimulatedRuntime({ images: ['httpd:1'] });
    const a = await startAgent(runtime, 'node-a');
    const ports = [{ containerPort: 80, hostPort: 8080, protocol: 'tcp' as const }];
    a.loop.setTarget(1, [replica('r1', { ports })]);
    await eventually(() => expect(a.reports.get('r1')?.state).toBe('running'));
    const oldId = a.reports.get('r1')!.containerId;

    const changed = replica('r1', { ports, env: { GREETING: 'hello' } });
    a.loop.setTarget(2, [changed]);
    await eventually(() => {
      expect(a.reports.get('r1')).toMatchObject({ state: 'running', specHash: changed.specHash, error: null });
      expect(a.applied).toEqual([1, 2]);
    });
    const containers = containersOf(runtime, 'node-a');
    expect(containers).toHaveLength(1);
    expect(containers[0]!.id).not.toBe(oldId);
    expect(containers[0]!.specHash).toBe(changed.specHash);
  });

  it("removes a replica taken out of the target and reports it 'removed' once", async () => {
    const runtime = new SimulatedRuntime({ images: ['httpd:1'] });
    const removedReports: ReplicaReport[] = [];
    const a = await startAgent(runtime, 'node-a', {
      onReport: (changed) => removedReports.push(...changed.filter((r) => r.state === 'removed')),
    });
    a.loop.setTarget(1, [replica('r1'), replica('r2')]);
    await eventually(() => expect(containersOf(runtime, 'node-a').filter((c) => c.state === 'running')).toHaveLength(2));

    a.loop.setTarget(2, [replica('r1')]);
    await eventually(() => {
      expect(containersOf(runtime, 'node-a').map((c) => c.replicaId)).toEqual(['r1']);
      expect(removedReports.map((r) => r.replicaId)).toEqual(['r2']);
    });
    await a.loop.runOnce();
    expect(removedReports).toHaveLength(1);
    expect(removedReports[0]).toMatchObject({ state: 'removed', containerId: null });
    expect(a.loop.snapshot().map((r) => r.replicaId)).toEqual(['r1']);
  });

  it("reports a pull failure as 'failed', retries with backoff and succeeds once the image can be pulled", async () => {
    const pullable = new Set<string>();
    const runtime = new SimulatedRuntime({ pullableImages: (image) => pullable.has(image) });
    const a = await startAgent(runtime, 'node-a');
    a.loop.setTarget(1, [replica('r1', { image: 'registry.local/app:2' })]);

    await eventually(() => {
      expect(a.reports.get('r1')).toMatchObject({ state: 'failed', containerId: null });
      expect(a.reports.get('r1')!.error).toMatch(/^pull failed: pull access denied for registry\.local\/app:2/);
      // Retried by itself, without a new target or event.
      expect(runtime.calls.pullImage).toBeGreaterThanOrEqual(3);
    });
    // A failing replica still counts as acted on: the hub learns of the failure from the report.
    expect(a.applied).toEqual([1]);

    pullable.add('registry.local/app:2');
    await eventually(() => expect(a.reports.get('r1')).toMatchObject({ state: 'running', error: null }));
  });

  it('comes back to running after a crash (engine restart policy) and after an external stop', async () => {
    const runtime = new SimulatedRuntime({ images: ['httpd:1'] });
    const a = await startAgent(runtime, 'node-a');
    a.loop.setTarget(1, [replica('r1')]);
    await eventually(() => expect(a.reports.get('r1')?.state).toBe('running'));
    const id = a.reports.get('r1')!.containerId!;

    runtime.crash(id, 3);
    await eventually(() =>
      expect(a.reports.get('r1')).toMatchObject({ state: 'failed', error: 'exited with code 3 (restarted 1 times)', restarts: 1 }),
    );
    expect(runtime.tick()).toBe(1);
    await eventually(() => expect(a.reports.get('r1')).toMatchObject({ state: 'running', containerId: id, error: null }));

    runtime.stopExternally(id);
    await eventually(() => {
      expect(a.reports.get('r1')).toMatchObject({ state: 'running', containerId: id });
      expect(containersOf(runtime, 'node-a')[0]!.state).toBe('running');
    });
  });

  it('recreates a container removed behind its back', async () => {
    const runtime = new SimulatedRuntime({ images: ['httpd:1'] });
    const a = await startAgent(runtime, 'node-a');
    a.loop.setTarget(1, [replica('r1')]);
    await eventually(() => expect(a.reports.get('r1')?.state).toBe('running'));
    const id = a.reports.get('r1')!.containerId!;

    runtime.removeExternally(id);
    await eventually(() => {
      expect(a.reports.get('r1')?.state).toBe('running');
      expect(a.reports.get('r1')?.containerId).not.toBe(id);
    });
  });

  it('a new loop on the same engine with the same target (agent restart) restarts nothing', async () => {
    const runtime = new SimulatedRuntime({ images: ['httpd:1'] });
    const target = [replica('r1'), replica('r2'), replica('r3')];
    const first = await startAgent(runtime, 'node-a');
    first.loop.setTarget(7, target);
    await eventually(() => expect(first.applied).toEqual([7]));
    const before = containersOf(runtime, 'node-a').map((c) => c.id).sort();
    await first.loop.stop();
    const callsBefore = { ...runtime.calls };

    const second = await startAgent(runtime, 'node-a');
    expect(second.loop.snapshot().map((r) => r.state)).toEqual(['running', 'running', 'running']);
    second.loop.setTarget(7, target);
    await eventually(() => expect(second.applied).toEqual([7]));

    expect(containersOf(runtime, 'node-a').map((c) => c.id).sort()).toEqual(before);
    for (const op of ['createContainer', 'startContainer', 'stopContainer', 'removeContainer', 'pullImage'] as const) {
      expect(runtime.calls[op], op).toBe(callsBefore[op]);
    }
  });

  it('removes nothing and starts nothing before the first target, only reports what it sees', async () => {
    const runtime = new SimulatedRuntime({ images: ['httpd:1'] });
    const first = await startAgent(runtime, 'node-a');
    first.loop.setTarget(1, [replica('r1'), replica('r2')]);
    await eventually(() => expect(first.applied).toEqual([1]));
    await first.loop.stop();
    const stoppedId = containersOf(runtime, 'node-a').find((c) => c.replicaId === 'r2')!.id;
    runtime.stopExternally(stoppedId);
    const callsBefore = { ...runtime.calls };

    const second = await startAgent(runtime, 'node-a');
    await second.loop.runOnce();
    expect(Object.fromEntries(second.loop.snapshot().map((r) => [r.replicaId, r.state]))).toEqual({ r1: 'running', r2: 'stopped' });
    expect(states(second)).toEqual({ r1: 'running', r2: 'stopped' });
    expect(containersOf(runtime, 'node-a')).toHaveLength(2);
    for (const op of ['createContainer', 'startContainer', 'stopContainer', 'removeContainer'] as const) {
      expect(runtime.calls[op], op).toBe(callsBefore[op]);
    }
    expect(second.applied).toEqual([]);
    expect(second.loop.appliedGeneration).toBe(0);
  });

  it('ignores an older generation', async () => {
    const runtime = new SimulatedRuntime({ images: ['httpd:1'] });
    const a = await startAgent(runtime, 'node-a');
    a.loop.setTarget(5, [replica('r1')]);
    await eventually(() => expect(a.applied).toEqual([5]));
    a.loop.setTarget(4, []);
    await a.loop.runOnce();
    expect(containersOf(runtime, 'node-a')).toHaveLength(1);
    expect(a.applied).toEqual([5]);
  });

  it('a newer target is acted on without waiting for a pull the new target no longer wants', async () => {
    const runtime = new SimulatedRuntime({ images: ['httpd:1'], pullDelayMs: 60_000 });
    const a = await startAgent(runtime, 'node-a');
    a.loop.setTarget(1, [replica('r1', { image: 'huge:1' })]);
    await eventually(() => expect(runtime.calls.pullImage).toBe(1));

    a.loop.setTarget(2, [replica('r2')]);
    await eventually(() => {
      expect(a.reports.get('r2')?.state).toBe('running');
      expect(a.applied).toEqual([2]);
    });
    // Generation 1 was only ever acked with its replica waiting for the pull.
    expect(a.acks).toEqual([
      [1, 1],
      [2, 0],
    ]);
    expect(a.reports.get('r1')?.state).toBe('removed');
  });

  it('two node ids on one engine never touch each other’s containers', async () => {
    const runtime = new SimulatedRuntime({ images: ['httpd:1'] });
    const a = await startAgent(runtime, 'node-a');
    const b = await startAgent(runtime, 'node-b');
    a.loop.setTarget(1, [replica('a1'), replica('a2')]);
    b.loop.setTarget(1, [replica('b1')]);
    await eventually(() => {
      expect(states(a)).toEqual({ a1: 'running', a2: 'running' });
      expect(states(b)).toEqual({ b1: 'running' });
    });
    const aIds = containersOf(runtime, 'node-a').map((c) => c.id).sort();

    b.loop.setTarget(2, []);
    await eventually(() => expect(containersOf(runtime, 'node-b')).toHaveLength(0));
    await a.loop.runOnce();
    expect(containersOf(runtime, 'node-a').map((c) => c.id).sort()).toEqual(aIds);
    expect(states(a)).toEqual({ a1: 'running', a2: 'running' });
  });

  it('reports a host port conflict and starts the replica once the port is free', async () => {
    const runtime = new SimulatedRuntime({ images: ['httpd:1'] });
    const a = await startAgent(runtime, 'node-a');
    const ports = [{ containerPort: 80, hostPort: 8080, protocol: 'tcp' as const }];
    a.loop.setTarget(1, [replica('first', { ports }, 'one')]);
    await eventually(() => expect(a.reports.get('first')?.state).toBe('running'));

    a.loop.setTarget(2, [replica('first', { ports }, 'one'), replica('second', { ports }, 'two')]);
    await eventually(() => {
      expect(a.reports.get('second')?.state).toBe('failed');
      expect(a.reports.get('second')?.error).toMatch(/^start failed: .*port is already allocated/);
    });

    a.loop.setTarget(3, [replica('second', { ports }, 'two')]);
    await eventually(() => {
      expect(a.reports.get('second')).toMatchObject({ state: 'running', error: null });
      expect(a.reports.get('first')?.state).toBe('removed');
    });
  });

  it('a replica whose image reference the engine refuses fails alone: the others are created and kept up', async () => {
    const runtime = new SimulatedRuntime({ images: ['httpd:1'] });
    const a = await startAgent(runtime, 'node-a');
    a.loop.setTarget(1, [replica('bad', { image: 'not a valid ref !!' }, 'broken'), replica('good')]);

    await eventually(() => {
      expect(a.reports.get('good')).toMatchObject({ state: 'running', error: null });
      expect(a.reports.get('bad')).toMatchObject({ state: 'failed', containerId: null });
      expect(a.reports.get('bad')!.error).toMatch(/invalid reference format/);
      expect(a.applied).toEqual([1]);
    });
    const goodId = a.reports.get('good')!.containerId!;

    runtime.kill(goodId);
    await eventually(() => expect(containersOf(runtime, 'node-a').find((c) => c.id === goodId)?.state).toBe('running'));
    // A replica added later on the same node is created too.
    a.loop.setTarget(2, [replica('bad', { image: 'not a valid ref !!' }, 'broken'), replica('good'), replica('later')]);
    await eventually(() => expect(a.reports.get('later')?.state).toBe('running'));
    expect(a.reports.get('bad')?.state).toBe('failed');
  });

  it('a killed container (left exited by the engine) is started again at once, and every restart is counted', async () => {
    const runtime = new SimulatedRuntime({ images: ['httpd:1'] });
    // No resync timer to fall back on: the kill's events alone must bring it back.
    const a = await startAgent(runtime, 'node-a', { resyncIntervalMs: 3_600_000 });
    a.loop.setTarget(1, [replica('r1')]);
    await eventually(() => expect(a.reports.get('r1')?.state).toBe('running'));
    const id = a.reports.get('r1')!.containerId!;

    for (let kill = 1; kill <= 5; kill++) {
      runtime.kill(id);
      await eventually(() => {
        expect(containersOf(runtime, 'node-a')[0]!.state).toBe('running');
        expect(a.reports.get('r1')).toMatchObject({ state: 'running', containerId: id, restarts: kill });
      });
    }
    // The engine's own restarts add to the agent's, though a start through the API resets its count.
    runtime.crash(id, 1);
    runtime.tick();
    await eventually(() => expect(a.reports.get('r1')).toMatchObject({ state: 'running', restarts: 6 }));
    runtime.kill(id);
    await eventually(() => expect(a.reports.get('r1')).toMatchObject({ state: 'running', restarts: 7 }));
  });

  it('a replica re-created after its container was removed behind its back counts one restart', async () => {
    const runtime = new SimulatedRuntime({ images: ['httpd:1'] });
    const a = await startAgent(runtime, 'node-a');
    a.loop.setTarget(1, [replica('r1')]);
    await eventually(() => expect(a.reports.get('r1')?.state).toBe('running'));
    const id = a.reports.get('r1')!.containerId!;
    runtime.removeExternally(id);
    await eventually(() => {
      expect(a.reports.get('r1')).toMatchObject({ state: 'running', restarts: 1 });
      expect(a.reports.get('r1')!.containerId).not.toBe(id);
    });
  });

  it('after an agent restart the engine’s restart count is the floor', async () => {
    const runtime = new SimulatedRuntime({ images: ['httpd:1'] });
    const first = await startAgent(runtime, 'node-a');
    first.loop.setTarget(1, [replica('r1')]);
    await eventually(() => expect(first.reports.get('r1')?.state).toBe('running'));
    const id = first.reports.get('r1')!.containerId!;
    for (let i = 0; i < 3; i++) {
      runtime.crash(id, 1);
      runtime.tick();
    }
    await first.loop.stop();

    const second = await startAgent(runtime, 'node-a');
    expect(second.loop.snapshot()).toMatchObject([{ replicaId: 'r1', state: 'running', restarts: 3 }]);
  });

  it('while the new image cannot be pulled, the old container is the replica: killed or stopped, it is started again', async () => {
    const runtime = new SimulatedRuntime({ images: ['httpd:1'], pullableImages: [] });
    const a = await startAgent(runtime, 'node-a', { resyncIntervalMs: 3_600_000, retryBaseMs: 60_000, retryCapMs: 60_000 });
    const old = replica('r1');
    a.loop.setTarget(1, [old]);
    await eventually(() => expect(a.reports.get('r1')?.state).toBe('running'));
    const id = a.reports.get('r1')!.containerId!;

    a.loop.setTarget(2, [replica('r1', { image: 'registry.local/app:404' })]);
    await eventually(() => expect(a.reports.get('r1')!.error).toMatch(/^pull failed/));
    // The replica backs off its pull for a minute; the old container must not wait that long.
    runtime.kill(id);
    await eventually(() => {
      expect(containersOf(runtime, 'node-a').map((c) => [c.id, c.state])).toEqual([[id, 'running']]);
      expect(a.reports.get('r1')).toMatchObject({ state: 'running', containerId: id, specHash: old.specHash, restarts: 1 });
    });
    runtime.stopExternally(id);
    await eventually(() => expect(containersOf(runtime, 'node-a')[0]!.state).toBe('running'));
    expect(runtime.calls.pullImage).toBe(1);
  });

  it('an update the engine refuses to create leaves the old container running; a fixed spec then replaces it', async () => {
    const runtime = new SimulatedRuntime({
      images: ['httpd:1'],
      createFails: (spec) => (spec.resources.cpus !== null && spec.resources.cpus > 4 ? 'Range of CPUs is from 0.01 to 4.00, as there are only 4 CPUs available' : null),
    });
    const a = await startAgent(runtime, 'node-a');
    const ports = [{ containerPort: 80, hostPort: 8080, protocol: 'tcp' as const }];
    const old = replica('r1', { ports });
    a.loop.setTarget(1, [old]);
    await eventually(() => expect(a.reports.get('r1')?.state).toBe('running'));
    const id = a.reports.get('r1')!.containerId!;

    a.loop.setTarget(2, [replica('r1', { ports, resources: { cpus: 64, memoryMB: null } })]);
    await eventually(() => {
      expect(a.reports.get('r1')).toMatchObject({ state: 'running', containerId: id, specHash: old.specHash });
      expect(a.reports.get('r1')!.error).toMatch(/^create failed: .*Range of CPUs/);
    });
    expect(containersOf(runtime, 'node-a').map((c) => [c.id, c.state])).toEqual([[id, 'running']]);

    // Same host port: the replacement starts once the old container is gone.
    const fixed = replica('r1', { ports, resources: { cpus: 2, memoryMB: null } });
    a.loop.setTarget(3, [fixed]);
    await eventually(() => expect(a.reports.get('r1')).toMatchObject({ state: 'running', specHash: fixed.specHash, error: null }));
    expect(containersOf(runtime, 'node-a').map((c) => [c.specHash, c.state])).toEqual([[fixed.specHash, 'running']]);
  });
  it('restarts the agent counted survive an agent restart; a replica re-made after one counts too', async () => {
    const runtime = new SimulatedRuntime({ images: ['httpd:1'] });
    const dir = await dataDir();
    const first = await startAgent(runtime, 'node-a', { restartCounts: new RestartCountsFile(dir, quiet) });
    first.loop.setTarget(1, [replica('r1')]);
    await eventually(() => expect(first.reports.get('r1')?.state).toBe('running'));
    const id = first.reports.get('r1')!.containerId!;
    // Kills, which the engine does not count: only the agent knows of these restarts.
    for (let kill = 1; kill <= 3; kill++) {
      runtime.kill(id);
      await eventually(() => expect(first.reports.get('r1')).toMatchObject({ state: 'running', restarts: kill }));
    }
    await first.loop.stop();

    const second = await startAgent(runtime, 'node-a', { restartCounts: new RestartCountsFile(dir, quiet) });
    expect(second.loop.snapshot()).toMatchObject([{ replicaId: 'r1', state: 'running', containerId: id, restarts: 3 }]);
    // And the engine's own restarts add to them, not replace them.
    runtime.crash(id, 1);
    runtime.tick();
    second.loop.setTarget(1, [replica('r1')]);
    await eventually(() => expect(second.reports.get('r1')).toMatchObject({ state: 'running', restarts: 4 }));
    await second.loop.stop();

    // Removed while no agent ran: the next agent makes it again, and that is a restart of the replica.
    runtime.removeExternally(id);
    const third = await startAgent(runtime, 'node-a', { restartCounts: new RestartCountsFile(dir, quiet) });
    third.loop.setTarget(1, [replica('r1')]);
    await eventually(() => {
      expect(third.reports.get('r1')).toMatchObject({ state: 'running', restarts: 5 });
      expect(third.reports.get('r1')!.containerId).not.toBe(id);
    });
  });

  it('a target that arrives while the restart counts load runs no pass before them: nothing saved undercounts', async () => {
    const runtime = new SimulatedRuntime({ images: ['httpd:1'] });
    const first = await startAgent(runtime, 'node-a');
    first.loop.setTarget(1, [replica('r1')]);
    await eventually(() => expect(first.reports.get('r1')?.state).toBe('running'));
    const id = first.reports.get('r1')!.containerId!;
    await first.loop.stop();

    let finishLoad!: (records: RestartRecords) => void;
    const saved: RestartRecords[] = [];
    const store: RestartCountStore = {
      load: () => new Promise((resolve) => (finishLoad = resolve)),
      save: (records) => saved.push(records),
      flush: async () => {},
    };
    const reports = new Map<string, ReplicaReport>();
    const loop = new ReconcileLoop({
      nodeId: 'node-a',
      runtime,
      publishAddress: null,
      logger: quiet,
      onReport: (changed) => changed.forEach((r) => reports.set(r.replicaId, r)),
      onApplied: () => {},
      restartCounts: store,
    });
    loops.push(loop);
    const started = loop.start();
    loop.setTarget(1, [replica('r1')]);
    await sleep(50);
    finishLoad({ r1: { restarts: 7, engineCounts: { [id]: 0 }, lastSpecHash: replica('r1').specHash } });
    await started;
    await loop.runOnce();
    expect(reports.get('r1')).toMatchObject({ state: 'running', restarts: 7 });
    expect(saved.map((r) => r.r1?.restarts ?? 0).filter((n) => n < 7)).toEqual([]);
  });

  it('a crash loop does not rewrite the restart counts on every crash; agent starts and the last count on stop are written', async () => {
    const runtime = new SimulatedRuntime({ images: ['httpd:1'] });
    const saved: RestartRecords[] = [];
    const store: RestartCountStore = { load: async () => null, save: (records) => saved.push(records), flush: async () => {} };
    const a = await startAgent(runtime, 'node-a', { restartCounts: store });
    a.loop.setTarget(1, [replica('r1')]);
    await eventually(() => expect(a.reports.get('r1')?.state).toBe('running'));
    const id = a.reports.get('r1')!.containerId!;
    await eventually(() => expect(saved.length).toBeGreaterThan(0));
    const savesBefore = saved.length;

    // The engine's restart policy brings it back each time: only its count changes.
    for (let crash = 1; crash <= 10; crash++) {
      runtime.crash(id, 1);
      await eventually(() => expect(a.reports.get('r1')).toMatchObject({ state: 'failed', restarts: crash }));
      runtime.tick();
      await eventually(() => expect(a.reports.get('r1')).toMatchObject({ state: 'running', restarts: crash }));
    }
    expect(saved.length - savesBefore).toBeLessThanOrEqual(1);

    // A start by the agent is known to the agent alone: it is written at once.
    runtime.kill(id);
    await eventually(() => expect(saved.at(-1)?.r1?.restarts).toBe(11));

    runtime.crash(id, 1);
    runtime.tick();
    await eventually(() => expect(a.reports.get('r1')).toMatchObject({ state: 'running', restarts: 12 }));
    await a.loop.stop();
    expect(saved.at(-1)?.r1?.restarts).toBe(12);
  });

  it('a damaged restart counts file is no reason to stop: the engine’s counts are the floor', async () => {
    const runtime = new SimulatedRuntime({ images: ['httpd:1'] });
    const dir = await dataDir();
    await writeFile(path.join(dir, 'restarts.json'), '{"version":1,"replicas":{"r1":{"restarts":-4');
    const a = await startAgent(runtime, 'node-a', { restartCounts: new RestartCountsFile(dir, quiet) });
    a.loop.setTarget(1, [replica('r1')]);
    await eventually(() => expect(a.reports.get('r1')).toMatchObject({ state: 'running', restarts: 0 }));
  });

  it('an update whose new container the engine will not start leaves the old one serving; the failure is the replica’s', async () => {
    const runtime = new SimulatedRuntime({
      images: ['httpd:1', 'httpd:2'],
      startFails: (image) => (image === 'httpd:2' ? 'exec: "httpd": executable file not found in $PATH' : null),
    });
    // One attempt: the retry is a minute away.
    const a = await startAgent(runtime, 'node-a', { retryBaseMs: 60_000, retryCapMs: 60_000 });
    const ports = [{ containerPort: 80, hostPort: 8080, protocol: 'tcp' as const }];
    const old = replica('r1', { ports });
    a.loop.setTarget(1, [old]);
    await eventually(() => expect(a.reports.get('r1')?.state).toBe('running'));
    const id = a.reports.get('r1')!.containerId!;

    a.loop.setTarget(2, [replica('r1', { ports, image: 'httpd:2' })]);
    await eventually(() => {
      expect(a.reports.get('r1')).toMatchObject({ state: 'running', containerId: id, specHash: old.specHash });
      expect(a.reports.get('r1')!.error).toMatch(/^start failed: .*executable file not found/);
    });
    await a.loop.runOnce();
    expect(containersOf(runtime, 'node-a').find((c) => c.id === id)?.state).toBe('running');
    expect(a.reports.get('r1')).toMatchObject({ state: 'running', containerId: id, specHash: old.specHash, restarts: 0 });

    // A spec that starts replaces it, on the same host port.
    const fixed = replica('r1', { ports, env: { FIXED: '1' } });
    a.loop.setTarget(3, [fixed]);
    await eventually(() => {
      expect(a.reports.get('r1')).toMatchObject({ state: 'running', specHash: fixed.specHash, error: null });
      expect(containersOf(runtime, 'node-a').map((c) => [c.specHash, c.state])).toEqual([[fixed.specHash, 'running']]);
    });
  });

  it('a new version that will not start stops the old container 3 times, then waits the long delay; a new target tries at once', async () => {
    const runtime = new SimulatedRuntime({
      images: ['httpd:1', 'httpd:2'],
      startFails: (image) => (image === 'httpd:2' ? 'exec: "httpd": executable file not found in $PATH' : null),
    });
    const stops = stopCounter(runtime);
    const counting = stops.runtime;
    // Retries every few ms: without a limit the old container would be stopped dozens of times.
    const a = await startAgent(counting, 'node-a', { retryBaseMs: 5, retryCapMs: 10, swapRetryDelayMs: 3_600_000 });
    const ports = [{ containerPort: 80, hostPort: 8080, protocol: 'tcp' as const }];
    const old = replica('r1', { ports });
    a.loop.setTarget(1, [old]);
    await eventually(() => expect(a.reports.get('r1')?.state).toBe('running'));
    stops.watchedId = a.reports.get('r1')!.containerId!;
    const oldId = stops.watchedId;

    a.loop.setTarget(2, [replica('r1', { ports, image: 'httpd:2' })]);
    await eventually(() => expect(stops.count).toBe(3));
    await sleep(400); // some 40 retry periods
    expect(stops.count).toBe(3);
    expect(containersOf(runtime, 'node-a').find((c) => c.id === oldId)?.state).toBe('running');
    expect(a.reports.get('r1')).toMatchObject({ containerId: oldId, specHash: old.specHash });
    expect(a.reports.get('r1')!.error).toMatch(/^start failed: .*executable file not found.*the old version keeps serving; tried again in 3600 s \(at \d{4}-\d\d-\d\dT/);

    // Another spec is another update: its attempts start from none.
    a.loop.setTarget(3, [replica('r1', { ports, image: 'httpd:2', env: { V: '3' } })]);
    await eventually(() => expect(stops.count).toBe(6));
    await sleep(200);
    expect(stops.count).toBe(6);
    expect(containersOf(runtime, 'node-a').find((c) => c.id === oldId)?.state).toBe('running');
  });

  it('after the long delay, a new version that will not start is tried once more, and once per delay', async () => {
    const runtime = new SimulatedRuntime({
      images: ['httpd:1', 'httpd:2'],
      startFails: (image) => (image === 'httpd:2' ? 'Bind for 0.0.0.0:8080 failed: port is already allocated' : null),
    });
    const stops = stopCounter(runtime);
    const counting = stops.runtime;
    const a = await startAgent(counting, 'node-a', { retryBaseMs: 5, retryCapMs: 10, swapRetryDelayMs: 300 });
    a.loop.setTarget(1, [replica('r1')]);
    await eventually(() => expect(a.reports.get('r1')?.state).toBe('running'));
    stops.watchedId = a.reports.get('r1')!.containerId!;
    const oldId = stops.watchedId;
    a.loop.setTarget(2, [replica('r1', { image: 'httpd:2' })]);
    await eventually(() => expect(stops.count).toBe(3));
    await eventually(() => expect(stops.count).toBe(4));
    expect(containersOf(runtime, 'node-a').find((c) => c.id === oldId)?.state).toBe('running');
  });

  it('after an agent crash between create and swap, the old container serves until the new one runs', async () => {
    let newStarts = false;
    const runtime = new SimulatedRuntime({
      images: ['httpd:1', 'httpd:2'],
      startFails: (image) => (image === 'httpd:2' && !newStarts ? 'Bind for 0.0.0.0:8080 failed: port is already allocated' : null),
    });
    const ports = [{ containerPort: 80, hostPort: 8080, protocol: 'tcp' as const }];
    const old = replica('r1', { ports });
    const next = replica('r1', { ports, image: 'httpd:2' });
    const first = await startAgent(runtime, 'node-a');
    first.loop.setTarget(1, [old]);
    await eventually(() => expect(first.reports.get('r1')?.state).toBe('running'));
    const oldId = first.reports.get('r1')!.containerId!;
    await first.loop.stop();
    // What the agent had done when it died: the new container made, the old one not yet touched.
    const newId = await runtime.createContainer({
      nodeId: 'node-a',
      replicaId: 'r1',
      service: 'web',
      specHash: next.specHash,
      name: `${containerName('node-a', 'r1')}-next`,
      spec: next.container,
      publishAddress: null,
    });

    const second = await startAgent(runtime, 'node-a', { retryBaseMs: 60_000, retryCapMs: 60_000 });
    second.loop.setTarget(2, [next]);
    await eventually(() => expect(second.reports.get('r1')!.error).toMatch(/^start failed: .*port is already allocated/));
    await second.loop.runOnce();
    // The replacement is kept for the retry, and the old container still serves.
    expect(containersOf(runtime, 'node-a').map((c) => [c.id, c.state]).sort()).toEqual([
      [oldId, 'running'],
      [newId, 'created'],
    ]);
    expect(second.reports.get('r1')).toMatchObject({ state: 'running', containerId: oldId, specHash: old.specHash });
    await second.loop.stop();

    // The next agent's attempt works: the container made before the crash is the one kept.
    newStarts = true;
    const third = await startAgent(runtime, 'node-a');
    third.loop.setTarget(2, [next]);
    await eventually(() => {
      expect(third.reports.get('r1')).toMatchObject({ state: 'running', containerId: newId, specHash: next.specHash, error: null });
      expect(containersOf(runtime, 'node-a').map((c) => [c.id, c.state])).toEqual([[newId, 'running']]);
    });
  });

  it('an old container the engine will not remove leaves the update done; its removal is retried', async () => {
    let removable = false;
    let oldId = '';
    const runtime = new SimulatedRuntime({
      images: ['httpd:1'],
      removeFails: (id) => (id === oldId && !removable ? 'driver "overlay2" failed to remove root filesystem: device or resource busy' : null),
    });
    const a = await startAgent(runtime, 'node-a');
    a.loop.setTarget(1, [replica('r1')]);
    await eventually(() => expect(a.reports.get('r1')?.state).toBe('running'));
    oldId = a.reports.get('r1')!.containerId!;

    const changed = replica('r1', { env: { V: '2' } });
    a.loop.setTarget(2, [changed]);
    await eventually(() => {
      expect(a.reports.get('r1')).toMatchObject({ state: 'running', specHash: changed.specHash, error: null });
      expect(containersOf(runtime, 'node-a').find((c) => c.id === oldId)?.state).toBe('exited');
      expect(runtime.calls.removeContainer).toBeGreaterThanOrEqual(2);
    });
    removable = true;
    await eventually(() => expect(containersOf(runtime, 'node-a').map((c) => c.specHash)).toEqual([changed.specHash]));
    expect(a.reports.get('r1')).toMatchObject({ state: 'running', specHash: changed.specHash, error: null });
  });

  it('a container the agent stopped for a swap and starts again by a swap back is no restart', async () => {
    let oldId = '';
    const runtime = new SimulatedRuntime({
      images: ['httpd:1'],
      removeFails: (id) => (id === oldId ? 'driver "overlay2" failed to remove root filesystem: device or resource busy' : null),
    });
    const a = await startAgent(runtime, 'node-a');
    const v1 = replica('r1');
    a.loop.setTarget(1, [v1]);
    await eventually(() => expect(a.reports.get('r1')?.state).toBe('running'));
    oldId = a.reports.get('r1')!.containerId!;

    // The update works, but the old container will not go: it stays, stopped by the swap.
    const v2 = replica('r1', { env: { V: '2' } });
    a.loop.setTarget(2, [v2]);
    await eventually(() => {
      expect(a.reports.get('r1')).toMatchObject({ state: 'running', specHash: v2.specHash });
      expect(containersOf(runtime, 'node-a').find((c) => c.id === oldId)?.state).toBe('exited');
    });
    // Rolled back: the stopped old container is the replica's spec again, and is swapped back in.
    a.loop.setTarget(3, [v1]);
    await eventually(() => expect(a.reports.get('r1')).toMatchObject({ state: 'running', containerId: oldId, specHash: v1.specHash }));
    await a.loop.runOnce();
    expect(a.reports.get('r1')!.restarts).toBe(0);
  });

  it('a failing image check holds back no replica that only needs a start', async () => {
    let imageCheckFails = false;
    const runtime = new SimulatedRuntime({ images: ['httpd:1'], hasImageFails: () => (imageCheckFails ? 'context deadline exceeded' : null) });
    const a = await startAgent(runtime, 'node-a', { resyncIntervalMs: 3_600_000, retryBaseMs: 60_000, retryCapMs: 60_000 });
    a.loop.setTarget(1, [replica('r1')]);
    await eventually(() => expect(a.reports.get('r1')?.state).toBe('running'));
    const id = a.reports.get('r1')!.containerId!;

    imageCheckFails = true;
    runtime.kill(id);
    await eventually(() => {
      expect(containersOf(runtime, 'node-a').map((c) => [c.id, c.state])).toEqual([[id, 'running']]);
      expect(a.reports.get('r1')).toMatchObject({ state: 'running', restarts: 1, error: null });
    });
  });

  it('a start the engine finds already done (a listing that lagged) is no restart', async () => {
    const runtime = new SimulatedRuntime({ images: ['httpd:1'] });
    let lagFor: string | null = null;
    // One listing shows the container exited though the engine restarted it already.
    const lagging = withListing(runtime, (list) => {
      const lagged = list.map((c) => (c.id === lagFor ? { ...c, state: 'exited' as const } : c));
      lagFor = null;
      return lagged;
    });
    const a = await startAgent(lagging, 'node-a', { resyncIntervalMs: 3_600_000 });
    a.loop.setTarget(1, [replica('r1')]);
    await eventually(() => expect(a.reports.get('r1')?.state).toBe('running'));
    const id = a.reports.get('r1')!.containerId!;

    runtime.crash(id, 1);
    await eventually(() => expect(a.reports.get('r1')).toMatchObject({ state: 'failed', restarts: 1 }));
    const startsBefore = runtime.calls.startContainer;
    lagFor = id;
    runtime.tick();
    await eventually(() => {
      expect(runtime.calls.startContainer).toBe(startsBefore + 1);
      expect(a.reports.get('r1')).toMatchObject({ state: 'running', containerId: id });
    });
    await a.loop.runOnce();
    expect(a.reports.get('r1')!.restarts).toBe(1);
  });
});
