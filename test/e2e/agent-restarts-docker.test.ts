/**
 * The agent's reconcile loop on the real engine, under the faults an operator or a bad spec
 * brings: containers killed with `docker kill` (which the engine's restart policy leaves exited),
 * an image reference the engine refuses, an update whose image cannot be pulled. Asserted through
 * the reports the agent emits and through the engine itself.
 */
import { randomUUID } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import DockerModem from 'docker-modem';
import { afterAll, afterEach, beforeAll, expect, it, vi } from 'vitest';
import { ReconcileLoop, type ReconcileLoopOptions } from '../../agent/reconciler/reconcile-loop.js';
import { RestartCountsFile } from '../../agent/restart-counts-file.js';
import { LABELS } from '../../agent/runtime/container-runtime.js';
import { DockerRuntime } from '../../agent/runtime/docker-runtime.js';
import { containerSpecHash, type ContainerSpec } from '../../shared/container-spec.js';
import type { AssignedReplica, ReplicaReport } from '../../shared/protocol.js';
import { DOCKER_SOCKET, cleanupNode, describeDocker, docker, sleeperSpec } from '../helpers/docker.js';
import { silentLogger } from '../helpers/silent-logger.js';
import { freePort } from '../helpers/test-ports.js';

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

async function startAgent(opts: Partial<ReconcileLoopOptions> = {}, nodeId = `rs-${randomUUID().slice(0, 8)}`): Promise<Agent> {
  if (!nodeIds.includes(nodeId)) nodeIds.push(nodeId);
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

    // Reports are diffs: a stale 'running' equal to the last one would never be emitted. So also
    // the whole state, from a pass made once the engine has the container dead.
    for (let kill = KILLS + 1; kill <= KILLS + 2; kill++) {
      await dockerKill(id);
      await eventually(async () => {
        const now = await docker.inspectContainer(id) as unknown as { State: { Running: boolean; StartedAt: string; FinishedAt: string } };
        // Dead, or already started again by the agent (after the kill finished).
        expect(!now.State.Running || now.State.StartedAt > now.State.FinishedAt).toBe(true);
      });
      await a.loop.runOnce();
      const [r] = a.loop.snapshot();
      if (r!.state === 'running') {
        expect(r!.restarts, `snapshot after kill ${kill}`).toBeGreaterThanOrEqual(kill);
        expect((await engineState(id)).status).toBe('running');
      }
      await eventually(() => expect(a.latest('r1')).toMatchObject({ state: 'running', containerId: id, restarts: kill }));
    }
    expect(a.latest('r1')).toMatchObject({ state: 'running', containerId: id, restarts: KILLS + 2, error: null });
  });

  it('the restarts the agent counted survive an agent restart', async () => {
    const dir = await mkdtemp(path.join(os.tmpdir(), 'tether-restarts-'));
    try {
      const a = await startAgent({ restartCounts: new RestartCountsFile(dir, silentLogger) });
      a.loop.setTarget(1, [replica('r1', sleeperSpec(IMAGE))]);
      await eventually(() => expect(a.latest('r1')?.state).toBe('running'));
      const id = a.latest('r1')!.containerId!;
      for (let kill = 1; kill <= 2; kill++) {
        await dockerKill(id);
        await eventually(() => expect(a.latest('r1')).toMatchObject({ state: 'running', restarts: kill }));
      }
      await a.loop.stop();

      const b = await startAgent({ restartCounts: new RestartCountsFile(dir, silentLogger) }, a.nodeId);
      expect(b.loop.snapshot()).toMatchObject([{ replicaId: 'r1', state: 'running', containerId: id, restarts: 2 }]);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });

  it('an update whose new container the engine will not start (its host port taken) leaves the old one serving', async () => {
    // One attempt: the retry is a minute away.
    const a = await startAgent({ retryBaseMs: 60_000, retryCapMs: 60_000 });
    const old = replica('r1', sleeperSpec(IMAGE));
    a.loop.setTarget(1, [old]);
    await eventually(() => expect(a.latest('r1')?.state).toBe('running'));
    const id = a.latest('r1')!.containerId!;

    // Someone else holds the host port the new version wants: Docker refuses only at its start.
    // A port free a moment ago, of this worker's own (a test hub's never), may be taken by then: try another.
    let hostPort = 0;
    for (let attempt = 1; hostPort === 0; attempt++) {
      const port = await freePort();
      const blocker = await docker.createContainer(`tether-${a.nodeId}-blocker-${attempt}`, {
        Image: IMAGE,
        Cmd: ['/bin/sleep', '300'],
        Labels: { [LABELS.nodeId]: a.nodeId },
        ExposedPorts: { '80/tcp': {} },
        HostConfig: { PortBindings: { '80/tcp': [{ HostPort: String(port) }] }, Init: true },
      });
      try {
        await new Promise<void>((resolve, reject) =>
          modem.dial({ method: 'POST', path: `/containers/${blocker.Id}/start`, statusCodes: { 204: true } }, (err) => (err ? reject(err) : resolve())),
        );
        hostPort = port;
      } catch (error) {
        if (attempt >= 5 || !/already in use|already allocated/.test(String(error))) throw error;
      }
    }
    a.loop.setTarget(2, [replica('r1', sleeperSpec(IMAGE, { ports: [{ containerPort: 80, hostPort, protocol: 'tcp' }] }))]);
    await eventually(() => expect(a.latest('r1')!.error).toMatch(/^start failed: .*(already allocated|address already in use)/));
    await a.loop.runOnce();
    expect(a.latest('r1')).toMatchObject({ state: 'running', containerId: id, specHash: old.specHash });
    expect((await engineState(id)).status).toBe('running');
    expect(await docker.listContainers([`${LABELS.replicaId}=r1`, `${LABELS.nodeId}=${a.nodeId}`])).toHaveLength(2);

    // A spec that can start takes over, and the old container goes.
    const fixed = replica('r1', sleeperSpec(IMAGE, { env: { FIXED: '1' } }));
    a.loop.setTarget(3, [fixed]);
    await eventually(async () => {
      expect(a.latest('r1')).toMatchObject({ state: 'running', specHash: fixed.specHash, error: null });
      const left = await docker.listContainers([`${LABELS.replicaId}=r1`, `${LABELS.nodeId}=${a.nodeId}`]);
      expect(left.map((c) => c.State)).toEqual(['running']);
    });
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
