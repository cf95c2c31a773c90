/**
 * DockerRuntime against the real engine and the registry on 127.0.0.1:5000 (scripts/test-env.sh).
 * Every test uses its own node id and removes what it created.
 */
import { randomUUID } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import Dockerode from 'dockerode';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { LABELS, type CreateContainerRequest, type RuntimeEvent } from '../../agent/runtime/container-runtime.js';
import { DockerRuntime, JsonLineReader, engineMessage, registryHostOf } from '../../agent/runtime/docker-runtime.js';
import type { ContainerSpec } from '../../shared/container-spec.js';
import { DOCKER_SOCKET, cleanupNode, describeDocker, docker, sleeperSpec } from '../helpers/docker.js';
import { freePort } from '../helpers/test-ports.js';
import { EngineProxy } from '../helpers/engine-proxy.js';

const IMAGE_V1 = '127.0.0.1:5000/busybox:1';
const IMAGE_V2 = '127.0.0.1:5000/busybox:2';
const PUBLISH_ADDRESS = '127.0.0.5';

const newNodeId = (): string => `rt-${randomUUID().slice(0, 8)}`;

function spec(overrides: Partial<ContainerSpec> = {}): ContainerSpec {
  return sleeperSpec(IMAGE_V1, overrides);
}

function request(nodeId: string, suffix: string, containerSpec: ContainerSpec): CreateContainerRequest {
  return {
    nodeId,
    replicaId: `${nodeId}-${suffix}`,
    service: `svc-${suffix}`,
    specHash: 'abcdef0123456789',
    name: `tether-${nodeId}-${suffix}`,
    spec: containerSpec,
    publishAddress: PUBLISH_ADDRESS,
  };
}

describe('docker runtime helpers', () => {
  it('reads JSON lines split across chunks and joined in one chunk, skipping bad lines', () => {
    const reader = new JsonLineReader();
    const values: unknown[] = [];
    const bad: string[] = [];
    const push = (chunk: string) => reader.push(chunk, (v) => values.push(v), (l) => bad.push(l));
    push('{"a":1}\n{"b"');
    push(':2}\r\n\n{"c":3}\nnot json\n{"d"');
    expect(values).toEqual([{ a: 1 }, { b: 2 }, { c: 3 }]);
    expect(bad).toEqual(['not json']);
    expect(reader.pending).toBe('{"d"');
  });

  it('finds the registry host of an image reference', () => {
    expect(registryHostOf('127.0.0.1:5000/busybox:1')).toBe('127.0.0.1:5000');
    expect(registryHostOf('registry.example.com/team/app@sha256:abc')).toBe('registry.example.com');
    expect(registryHostOf('localhost/app')).toBe('localhost');
    expect(registryHostOf('library/busybox')).toBe('docker.io');
    expect(registryHostOf('busybox:1')).toBe('docker.io');
  });

  it('extracts the engine message from docker-modem errors', () => {
    expect(engineMessage({ statusCode: 409, json: { message: 'Conflict. The name is in use' }, message: '(HTTP code 409) unexpected - x' })).toBe(
      'Conflict. The name is in use',
    );
    expect(engineMessage({ statusCode: 404, json: null, message: '(HTTP code 404) unexpected - manifest unknown ' })).toBe('manifest unknown');
  });
});

describeDocker('DockerRuntime on the real engine', () => {
  const runtime = new DockerRuntime();
  const nodeIds: string[] = [];
  const node = (): string => {
    const id = newNodeId();
    nodeIds.push(id);
    return id;
  };

  beforeAll(async () => {
    // Other test files may remove the shared test image; pulling it back is what an agent would do.
    if (!(await runtime.hasImage(IMAGE_V1))) await runtime.pullImage(IMAGE_V1, null);
  });

  afterAll(async () => {
    for (const id of nodeIds) await cleanupNode(id);
  });

  it('reports the engine version', async () => {
    expect(await runtime.version()).toMatch(/^docker \d+\.\d+\.\d+/);
  });

  it('creates and starts a container that serves on its published address, with the requested settings', async () => {
    const nodeId = node();
    const hostPort = await freePort();
    const containerSpec = spec({
      command: ['/bin/httpd', '-f', '-p', '8080', '-h', '/www'],
      env: { GREETING: 'hello world', EMPTY: '' },
      ports: [
        { containerPort: 8080, hostPort, protocol: 'tcp' },
        { containerPort: 9090, hostPort: null, protocol: 'tcp' },
      ],
      resources: { cpus: 0.5, memoryMB: 64 },
      labels: { app: 'web', [LABELS.nodeId]: 'someone-else' },
    });
    const id = await runtime.createContainer(request(nodeId, 'web', containerSpec));
    await runtime.startContainer(id);
    expect(await runtime.startContainer(id)).toBe('already-running');

    await vi.waitFor(
      async () => {
        const res = await fetch(`http://${PUBLISH_ADDRESS}:${hostPort}/`);
        expect((await res.text()).trim()).toBe('v1');
      },
      { timeout: 10_000, interval: 100 },
    );

    const info = await docker.inspectContainer(id);
    expect(info.Name).toBe(`/tether-${nodeId}-web`);
    expect(info.HostConfig.NanoCpus).toBe(500_000_000);
    expect(info.HostConfig.Memory).toBe(64 * 1024 * 1024);
    expect(info.HostConfig.RestartPolicy?.Name).toBe('unless-stopped');
    expect(info.HostConfig.Init).toBe(true);
    // Logs are capped: flash storage wears out under logs that only grow.
    expect(info.HostConfig.LogConfig).toEqual({ Type: 'local', Config: { 'max-size': '10m', 'max-file': '3' } });
    expect(info.Config.Env).toEqual(expect.arrayContaining(['GREETING=hello world', 'EMPTY=']));
    expect(Object.keys(info.Config.ExposedPorts ?? {}).sort()).toEqual(['8080/tcp', '9090/tcp']);
    expect(info.HostConfig.PortBindings).toEqual({ '8080/tcp': [{ HostIp: PUBLISH_ADDRESS, HostPort: String(hostPort) }] });
    expect(info.Config.Labels).toMatchObject({ app: 'web', [LABELS.nodeId]: nodeId, [LABELS.managed]: 'true' });
  });

  it('lists only this node’s fully labelled containers, with labels and state', async () => {
    const nodeId = node();
    const otherNode = node();
    const id = await runtime.createContainer(request(nodeId, 'a', spec()));
    await runtime.startContainer(id);
    const createdOnly = await runtime.createContainer(request(nodeId, 'b', spec()));
    await runtime.createContainer(request(otherNode, 'a', spec()));
    // Carries our node id but not the other labels: not ours to manage.
    await docker.createContainer(`tether-${nodeId}-stray`, { Image: IMAGE_V1, Cmd: ['/bin/true'], Labels: { [LABELS.nodeId]: nodeId } });

    const list = await runtime.listContainers(nodeId);
    expect(list.map((c) => c.id).sort()).toEqual([id, createdOnly].sort());
    expect(list.find((c) => c.id === id)).toEqual({
      id,
      name: `tether-${nodeId}-a`,
      replicaId: `${nodeId}-a`,
      service: 'svc-a',
      specHash: 'abcdef0123456789',
      state: 'running',
      exitCode: null,
      restartCount: 0,
      error: null,
      image: IMAGE_V1,
    });
    expect(list.find((c) => c.id === createdOnly)).toMatchObject({ state: 'created', exitCode: null, restartCount: 0, error: null });
    expect(await runtime.listContainers(newNodeId())).toEqual([]);
  });

  it('refuses a second container with the same name', async () => {
    const nodeId = node();
    await runtime.createContainer(request(nodeId, 'dup', spec()));
    await expect(runtime.createContainer(request(nodeId, 'dup', spec()))).rejects.toThrow(/already exists/);
  });

  it('reports a start failure (host port taken) as the container error', async () => {
    const nodeId = node();
    const hostPort = await freePort();
    const ports = [{ containerPort: 8080, hostPort, protocol: 'tcp' as const }];
    const first = await runtime.createContainer(request(nodeId, 'p1', spec({ ports })));
    await runtime.startContainer(first);
    const second = await runtime.createContainer(request(nodeId, 'p2', spec({ ports })));
    await expect(runtime.startContainer(second)).rejects.toThrow(/already allocated|address already in use/);
    const observed = (await runtime.listContainers(nodeId)).find((c) => c.id === second);
    expect(observed?.state).toBe('created');
    expect(observed?.error).toMatch(/already allocated|address already in use/);
  });

  it('shows a crashing container with its exit code and the engine’s restarts', async () => {
    const nodeId = node();
    const id = await runtime.createContainer(request(nodeId, 'crash', spec({ command: ['/bin/sh', '-c', 'exit 3'] })));
    await runtime.startContainer(id);
    await vi.waitFor(
      async () => {
        const [c] = await runtime.listContainers(nodeId);
        expect(c?.exitCode).toBe(3);
        expect(['restarting', 'exited']).toContain(c?.state);
        expect(c?.restartCount).toBeGreaterThanOrEqual(1);
      },
      { timeout: 15_000, interval: 50 },
    );
  });

  it('delivers start and die events for this node only, and nothing after unsubscribing', async () => {
    const nodeId = node();
    const otherNode = node();
    const events: RuntimeEvent[] = [];
    const unsubscribe = runtime.watchEvents(nodeId, (e) => events.push(e));
    try {
      // The subscription is asynchronous: wait until a first event proves it is live.
      const id = await runtime.createContainer(request(nodeId, 'ev', spec()));
      const other = await runtime.createContainer(request(otherNode, 'ev', spec()));
      await runtime.startContainer(other);
      // Generous waits: the engine is shared with the other Docker test file running meanwhile.
      await vi.waitFor(() => expect(events).toContainEqual({ containerId: id, action: 'create' }), { timeout: 15_000, interval: 20 });
      await runtime.startContainer(id);
      const stoppedAtMs = Date.now();
      await runtime.stopContainer(id, 10);
      // sleep as PID 1 ignores SIGTERM; with the init it stops at once instead of after 10 s.
      expect(Date.now() - stoppedAtMs).toBeLessThan(5_000);
      await vi.waitFor(
        () => {
          expect(events).toContainEqual({ containerId: id, action: 'start' });
          expect(events).toContainEqual({ containerId: id, action: 'die' });
        },
        { timeout: 15_000, interval: 20 },
      );
      expect(events.every((e) => e.containerId === id || e.action === 'resync')).toBe(true);
    } finally {
      unsubscribe();
    }
    const seen = events.length;
    const late = await runtime.createContainer(request(nodeId, 'late', spec()));
    await runtime.startContainer(late);
    await runtime.removeContainer(late);
    await new Promise((r) => setTimeout(r, 500));
    expect(events).toHaveLength(seen);
    unsubscribe(); // twice: harmless
  });

  describe('event stream reconnects', () => {
    let dir = '';
    let proxy: EngineProxy | undefined;

    beforeAll(async () => {
      dir = await mkdtemp(path.join(os.tmpdir(), 'tether-docker-proxy-'));
      // A proxy in front of the engine socket whose connections the test can cut.
      proxy = await EngineProxy.start(path.join(dir, 'docker.sock'));
    });

    afterAll(async () => {
      await proxy?.close();
      await rm(dir, { recursive: true, force: true });
    });

    it('after the stream was down, asks for a full resync and goes on delivering, without duplicates', async () => {
      const nodeId = node();
      const warnings: string[] = [];
      const viaProxy = new DockerRuntime({ socketPath: path.join(dir, 'docker.sock'), logger: { warn: (_o, msg) => warnings.push(msg) } });
      const events: RuntimeEvent[] = [];
      const unsubscribe = viaProxy.watchEvents(nodeId, (e) => events.push(e));
      try {
        const id = await runtime.createContainer(request(nodeId, 'rc', spec()));
        await vi.waitFor(() => expect(events).toContainEqual({ containerId: id, action: 'create' }), { timeout: 5_000, interval: 20 });

        proxy!.refusing = true;
        proxy!.cutAll();
        await vi.waitFor(() => expect(warnings.length).toBeGreaterThan(0), { timeout: 5_000, interval: 20 });
        await runtime.startContainer(id); // happens while the watcher is cut off: read by the resync's listing
        await new Promise((r) => setTimeout(r, 300));
        proxy!.refusing = false;

        const resyncs = (): number => events.filter((e) => e.action === 'resync').length;
        await vi.waitFor(() => expect(resyncs()).toBe(2), { timeout: 15_000, interval: 50 });
        await runtime.stopContainer(id, 1);
        await vi.waitFor(() => expect(events).toContainEqual({ containerId: id, action: 'die' }), { timeout: 15_000, interval: 50 });
        expect(events.filter((e) => e.action === 'create')).toHaveLength(1);
      } finally {
        unsubscribe();
        proxy!.refusing = false;
      }
    });
  });

  it('pulls an image from the registry, with and without credentials', async () => {
    await docker.removeImage(IMAGE_V2, { force: true });
    expect(await runtime.hasImage(IMAGE_V2)).toBe(false);
    // The test registry does not ask for credentials; sending them must not get in the way.
    await runtime.pullImage(IMAGE_V2, { username: 'tether', password: 'secret' });
    expect(await runtime.hasImage(IMAGE_V2)).toBe(true);
    await runtime.pullImage(IMAGE_V2, null); // already there: a no-op pull
  });

  it('rejects pulls that cannot succeed with a readable message', async () => {
    await expect(runtime.pullImage('127.0.0.1:5000/nope:1', null)).rejects.toThrow(/^pull 127\.0\.0\.1:5000\/nope:1 failed: .*manifest unknown/);
    await expect(runtime.pullImage('127.0.0.1:5999/busybox:1', null)).rejects.toThrow(/^pull 127\.0\.0\.1:5999\/busybox:1 failed: .*connection refused/);
    await expect(runtime.pullImage(IMAGE_V1, null, AbortSignal.abort())).rejects.toThrow(/aborted/);
    expect(await runtime.hasImage('127.0.0.1:5000/nope:1')).toBe(false);
  });

  it('answers an image reference the engine cannot parse with the engine’s reason', async () => {
    await expect(runtime.hasImage('not a valid ref !!')).rejects.toThrow(/invalid reference format/);
    await expect(runtime.hasImage('UPPER/case:1')).rejects.toThrow(/must be lowercase/);
    expect(await runtime.hasImage('127.0.0.1:5000/busybox:does-not-exist')).toBe(false);
  });

  // The listing lagging the event is made deterministic in test/unit/docker-runtime-listing.test.ts;
  // here the real engine's die event must lead to a listing that shows the container exited.
  it('a listing made at a container’s die event shows it exited', async () => {
    const nodeId = node();
    const id = await runtime.createContainer(request(nodeId, 'kill', spec()));
    await runtime.startContainer(id);
    expect((await runtime.listContainers(nodeId))[0]?.state).toBe('running'); // now cached as running
    const events: RuntimeEvent[] = [];
    const seenAtDie: string[] = [];
    let listing: Promise<void> | null = null;
    const unsubscribe = runtime.watchEvents(nodeId, (e) => {
      events.push(e);
      if (e.containerId !== id || e.action !== 'die' || listing) return;
      listing = runtime.listContainers(nodeId).then((list) => void seenAtDie.push(...list.filter((c) => c.id === id).map((c) => c.state)));
    });
    try {
      // The subscription is asynchronous: a probe's destroy event proves it live before the kill.
      const probe = await runtime.createContainer(request(nodeId, 'probe', spec()));
      await runtime.removeContainer(probe);
      await vi.waitFor(() => expect(events).toContainEqual({ containerId: probe, action: 'destroy' }), { timeout: 10_000, interval: 20 });
      await new Dockerode({ socketPath: DOCKER_SOCKET }).getContainer(id).kill();
      await vi.waitFor(() => expect(listing).not.toBeNull(), { timeout: 10_000, interval: 10 });
      await listing;
      expect(seenAtDie).toEqual(['exited']);
    } finally {
      unsubscribe();
    }
  });

  it('a start of a running container starts nothing, and says so', async () => {
    const nodeId = node();
    const id = await runtime.createContainer(request(nodeId, 'twice', spec()));
    expect(await runtime.startContainer(id)).toBe('started');
    expect(await runtime.startContainer(id)).toBe('already-running');
  });

  it('stops and removes idempotently', async () => {
    const nodeId = node();
    const id = await runtime.createContainer(request(nodeId, 'gone', spec()));
    await runtime.startContainer(id);
    await runtime.stopContainer(id, 5);
    await runtime.stopContainer(id, 5);
    await runtime.removeContainer(id);
    await runtime.removeContainer(id);
    await runtime.stopContainer(id, 5);
    expect(await runtime.listContainers(nodeId)).toEqual([]);
    await expect(runtime.startContainer(id)).rejects.toThrow(/No such container/i);
  });
});
