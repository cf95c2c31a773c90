/**
 * The agent's reconcile loop on the real engine, under the faults an operator or a bad spec
 * brings: containers killed with `docker kill` (which the engine's restart policy leaves exited),
 * an image reference the engine refuses, an update whose image cannot be pulled. Asserted through
 * the reports the agent emits and through the engine itself.
 */
import { randomUUID } from 'node:crypto';
import DockerModem from 'docker-modem';
import { afterAll, afterEach, beforeAll, expect, it, vi } from 'vitest';
import { ReconcileLoop, type ReconcileLoopOptions } from '../../agent/reconciler/reconcile-loop.js';
import { DockerRuntime } from '../../agent/runtime/docker-runtime.js';
import { containerSpecHash, type ContainerSpec } from '../../shared/container-spec.js';
import type { AssignedReplica, ReplicaReport } from '../../shared/protocol.js';
import { DOCKER_SOCKET, cleanupNode, describeDocker, docker, sleeperSpec } from '../helpers/docker.js';
import { silentLogger } from '../helpers/silent-logger.js';

const IMAGE = '127.0.0.1:5000/busybox:1';
const UNPULLABLE = '127.0.0.1:5000/busybox:does-not-exist';
const KILLS = 5;

const modem = new DockerModem({ socketPath: DOCKER_SOCKET });

/** `docker kill`: SIGKILL through the API, which the engine counts as stopped by a user. */
function dockerKill(id: string): Promise<void> {
  return new Promise((resolve, reject) =>
    modem.dial({ method: 'POST', path: `/containers/${id}/kill`, statusCodes: { 204: true } }, (err) => (err ? reject(err) : resolve())),
  );
}

async function engineState(id: string): Promise<{ status: string; startedAt: string }> {
  const info = (await docker.inspectContainer(id)) as unknown as { State: { Status: string; StartedAt: string } };
  return { status: info.State.Status, startedAt: info.State.StartedAt };
}

function replica(replicaId: string, spec: ContainerSpec, service = 'web'): AssignedReplica {
  return { replicaId, service, specHash: containerSpecHash(spec), container: spec };
}

interface Agent {
  loop: ReconcileLoop;
  nodeId: string;
  /** Every report the loop emitted, in order. */
  emitted: ReplicaReport[];
  latest(replicaId: string): ReplicaReport | undefined;
}

const runtime = new DockerRuntime();
const loops: ReconcileLoop[] = [];
const nodeIds: string[] = [];

async function startAgent(opts: Partial<ReconcileLoopOptions> = {}): Promise<Agent> {
  const nodeId = `rs-${randomUUID().slice(0, 8)}`;
  nodeIds.push(nodeId);
  const emitted: ReplicaReport[] = [];
  const loop = new ReconcileLoop({
    nodeId,
    runtime,
    publishAddress: null,
    logger: silentLogger,
    onReport: (changed) => emitted.push(...changed),
    onApplied: () => {},
    // No resync to fall back on: what brings a container back is the engine's events.
    resyncIntervalMs: 3_600_000,
    stopTimeoutS: 1,
    ...opts,
  });
  loops.push(loop);
  await loop.start();
  const latest = (replicaId: string) => {
    for (let i = emitted.length - 1; i >= 0; i--) if (emitted[i]!.replicaId === replicaId) return emitted[i];
    return undefined;
  };
  return { loop, nodeId, emitted, latest };
}

const eventually = (check: () => Promise<void> | void, timeout = 20_000) => vi.waitFor(check, { timeout, interval: 50 });

describeDocker('the agent on the real engine: kills, refused images, failed updates', () => {
  beforeAll(async () => {
    if (!(await runtime.hasImage(IMAGE))) await runtime.pullImage(IMAGE, null);
  });

  afterEach(async () => {
    await Promise.all(loops.splice(0).map((l) => l.stop()));
  });

  afterAll(async () => {
    for (const id of nodeIds) await cleanupNode(id);
  });

  it(`a container killed ${KILLS} times runs again each time, counted, and is never reported running while it is not`, async () => {
    const a = await startAgent();
    a.loop.setTarget(1, [replica('r1', sleeperSpec(IMAGE))]);
    await eventually(() => expect(a.latest('r1')?.state).toBe('running'));
    const id = a.latest('r1')!.containerId!;

    for (let kill = 1; kill <= KILLS; kill++) {
      const before = await engineState(id);
      const reportsBefore = a.emitted.length;
      await dockerKill(id);
      await eventually(async () => {
        const now = await engineState(id);
        expect(now.status).toBe('running');
        expect(now.startedAt).not.toBe(before.startedAt);
        expect(a.latest('r1')).toMatchObject({ state: 'running', containerId: id, restarts: kill });
      });
      // From the kill on, the container is exited until the agent starts it again, which makes
      // this kill's restart: a report of it running with fewer restarts describes a dead container.
      for (const r of a.emitted.slice(reportsBefore)) {
        if (r.state === 'running') expect(r.restarts, `report after kill ${kill}`).toBeGreaterThanOrEqual(kill);
      }
    }
    expect(a.latest('r1')).toMatchObject({ state: 'running', containerId: id, restarts: KILLS, error: null });
  });

  it('a replica whose image reference the engine refuses fails alone; the healthy one is created and restarted', async () => {
    const a = await startAgent();
    a.loop.setTarget(1, [replica('bad', sleeperSpec('not a valid ref !!'), 'broken'), replica('good', sleeperSpec(IMAGE))]);
    await eventually(() => {
      expect(a.latest('good')).toMatchObject({ state: 'running', error: null });
      expect(a.latest('bad')).toMatchObject({ state: 'failed', containerId: null });
      expect(a.latest('bad')!.error).toMatch(/invalid reference format/);
    });
    const id = a.latest('good')!.containerId!;
    await dockerKill(id);
    await eventually(async () => {
      expect((await engineState(id)).status).toBe('running');
      expect(a.latest('good')).toMatchObject({ state: 'running', restarts: 1 });
    });
    expect(a.latest('bad')?.state).toBe('failed');
  });

  it('while the new image cannot be pulled, the old container stays the replica: killed, it comes back', async () => {
    // The pull keeps failing and backs off for a minute: the old container must not wait for it.
    const a = await startAgent({ retryBaseMs: 60_000, retryCapMs: 60_000 });
    const old = replica('r1', sleeperSpec(IMAGE));
    a.loop.setTarget(1, [old]);
    await eventually(() => expect(a.latest('r1')?.state).toBe('running'));
    const id = a.latest('r1')!.containerId!;

    a.loop.setTarget(2, [replica('r1', sleeperSpec(UNPULLABLE))]);
    await eventually(() => expect(a.latest('r1')!.error).toMatch(/^pull failed: .*not found/));
    await dockerKill(id);
    await eventually(async () => {
      expect((await engineState(id)).status).toBe('running');
      expect(a.latest('r1')).toMatchObject({ state: 'running', containerId: id, specHash: old.specHash, restarts: 1 });
    });
    expect(a.latest('r1')!.error).toMatch(/^pull failed/);
  });

  it('an update the engine refuses to create (more CPUs than the host has) leaves the old container running', async () => {
    const a = await startAgent();
    const old = replica('r1', sleeperSpec(IMAGE));
    a.loop.setTarget(1, [old]);
    await eventually(() => expect(a.latest('r1')?.state).toBe('running'));
    const id = a.latest('r1')!.containerId!;

    a.loop.setTarget(2, [replica('r1', sleeperSpec(IMAGE, { resources: { cpus: 1024, memoryMB: null } }))]);
    await eventually(() => expect(a.latest('r1')!.error).toMatch(/^create failed: .*CPUs/));
    expect(a.latest('r1')).toMatchObject({ state: 'running', containerId: id, specHash: old.specHash });
    expect((await engineState(id)).status).toBe('running');
    expect(await docker.listContainers([`io.tether.node-id=${a.nodeId}`])).toHaveLength(1);
  });
});
