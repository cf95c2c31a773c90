/**
 * The real agent program with its Docker socket behind a proxy the test stops, starts and freezes.
 * An agent started with no engine keeps running (it used to exit with code 2) and runs its
 * container once the engine appears; an engine that goes away or hangs while the agent runs is
 * reported to the hub within seconds, and back when it returns, with what runs left alone.
 */
import { randomUUID } from 'node:crypto';
import { existsSync } from 'node:fs';
import { mkdir, mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterEach, expect, it, vi } from 'vitest';
import { saveIdentity } from '../../agent/node-identity.js';
import { LABELS } from '../../agent/runtime/container-runtime.js';
import { DockerRuntime } from '../../agent/runtime/docker-runtime.js';
import { containerSpecHash } from '../../shared/container-spec.js';
import type { NodeConditions } from '../../shared/protocol.js';
import { cleanupNode, describeDocker, docker, sleeperSpec } from '../helpers/docker.js';
import { EngineProxy } from '../helpers/engine-proxy.js';
import { hubClient, startHub, startProgram, stopProgram, type Proc } from '../helpers/processes.js';
import { RecordingHub } from '../helpers/recording-hub.js';

const IMAGE = 'tether-test/busybox:1';

let dir = '';
let proxy: EngineProxy | undefined;
let recording: RecordingHub | undefined;
const procs: Proc[] = [];
const nodeIds: string[] = [];

afterEach(async () => {
  for (const p of procs.splice(0)) await stopProgram(p);
  await proxy?.close();
  await recording?.close();
  proxy = recording = undefined;
  for (const id of nodeIds.splice(0)) await cleanupNode(id);
  if (dir) await rm(dir, { recursive: true, force: true });
});

const running = async (nodeId: string) =>
  (await docker.listContainers([`${LABELS.nodeId}=${nodeId}`])).filter((c) => c.State === 'running').map((c) => c.Id);

describeDocker('the agent program and an engine that comes and goes', () => {
  it('starts with no engine, keeps running, and runs its container once the engine appears', async () => {
    dir = await mkdtemp(path.join(os.tmpdir(), 'tether-engine-away-'));
    const hub = await startHub({ dataDir: path.join(dir, 'hub') });
    procs.push(hub);
    const { url } = hub;
    const api = await hubClient(url, path.join(dir, 'hub'));
    const { token } = (await api<{ token: string }>('POST', '/v1/join-tokens', {})).body;

    const socketPath = path.join(dir, 'docker.sock'); // nothing listens there yet
    const agent = startProgram('agent', ['--hub', url, '--join-token', token, '--data-dir', path.join(dir, 'agent'), '--name', 'no-engine', '--docker-socket', socketPath]);
    procs.push(agent);
    // Joined, connected and saying its engine is away, where it used to exit with code 2 right
    // after joining (and the node stayed unreachable).
    type NodeView = { id: string; name: string; state: string; stateReason: string | null; facts: { runtime: string } };
    const mine = async (): Promise<NodeView | undefined> =>
      (await api<{ nodes: NodeView[] }>('GET', '/v1/nodes')).body.nodes.find((n) => n.name === 'no-engine');
    const node = await vi.waitFor(
      async () => {
        const view = await mine();
        expect(view?.state).toBe('not_ready');
        return view!;
      },
      { timeout: 30_000, interval: 200 },
    );
    nodeIds.push(node.id);
    expect(node.stateReason).toMatch(/^container engine unavailable: .*ENOENT/);
    expect(agent.child.exitCode).toBeNull();

    await api('PUT', '/v1/services/outage', { image: IMAGE, command: ['/bin/sleep', '300'], replicas: 1 });
    await new Promise((r) => setTimeout(r, 1000));
    expect(agent.child.exitCode).toBeNull();

    proxy = await EngineProxy.start(socketPath);
    await vi.waitFor(async () => expect(await running(node.id)).toHaveLength(1), { timeout: 30_000, interval: 200 });
    await vi.waitFor(async () => expect((await mine())?.state).toBe('ready'), { timeout: 15_000, interval: 200 });
    await vi.waitFor(() => expect(agent.output()).toContain('the container engine answers again'), { timeout: 10_000, interval: 100 });
    // The engine's version is known from its return: the agent says hello again to tell the hub.
    await vi.waitFor(async () => expect((await mine())?.facts.runtime).toMatch(/^docker \d+\.\d+/), { timeout: 15_000, interval: 200 });
    expect((await mine())?.state).toBe('ready');
    await api('DELETE', '/v1/services/outage');
  }, 90_000);

  it('started on a hung engine, reaches the hub and says so, then carries on once the engine answers', async () => {
    dir = await mkdtemp(path.join(os.tmpdir(), 'tether-engine-hung-'));
    const hub = await startHub({ dataDir: path.join(dir, 'hub') });
    procs.push(hub);
    const { url } = hub;
    const api = await hubClient(url, path.join(dir, 'hub'));
    const { token } = (await api<{ token: string }>('POST', '/v1/join-tokens', {})).body;
    const socketPath = path.join(dir, 'docker.sock');
    proxy = await EngineProxy.start(socketPath);
    proxy.frozen = true;
    const agent = startProgram('agent', ['--hub', url, '--join-token', token, '--data-dir', path.join(dir, 'agent'), '--name', 'hung-engine', '--docker-socket', socketPath]);
    procs.push(agent);
    type NodeView = { id: string; name: string; state: string; stateReason: string | null };
    const mine = async (): Promise<NodeView | undefined> =>
      (await api<{ nodes: NodeView[] }>('GET', '/v1/nodes')).body.nodes.find((n) => n.name === 'hung-engine');
    const node = await vi.waitFor(
      async () => {
        const view = await mine();
        expect(view?.state).toBe('not_ready');
        return view!;
      },
      { timeout: 30_000, interval: 200 },
    );
    nodeIds.push(node.id);
    expect(node.stateReason).toMatch(/did not answer/);
    proxy.frozen = false;
    await vi.waitFor(async () => expect((await mine())?.state).toBe('ready'), { timeout: 20_000, interval: 200 });
    expect(agent.child.exitCode).toBeNull();
  }, 90_000);

  it('reports an engine that goes away or hangs, and its return, leaving the running container alone', async () => {
    dir = await mkdtemp(path.join(os.tmpdir(), 'tether-engine-outage-'));
    const socketPath = path.join(dir, 'docker.sock');
    proxy = await EngineProxy.start(socketPath);
    recording = await RecordingHub.start();
    const hub = recording;
    const nodeId = `outage-${randomUUID().slice(0, 8)}`;
    nodeIds.push(nodeId);
    const dataDir = path.join(dir, 'agent');
    await mkdir(dataDir, { mode: 0o700 });
    await saveIdentity(dataDir, { hubUrl: hub.url, nodeId, credential: 'test' });
    const agent = startProgram('agent', ['--data-dir', dataDir, '--docker-socket', socketPath]);
    procs.push(agent);

    await vi.waitFor(() => expect(hub.ofType('hello')).toHaveLength(1), { timeout: 20_000, interval: 100 });
    const hello = hub.ofType('hello')[0]!;
    expect(hello.conditions).toMatchObject({ engine: { available: true, error: null }, targetCache: { current: true }, dataDisk: { path: dataDir } });
    // Asked of the engine before the first hello, as the program no longer asks before it starts.
    expect(hello.facts.runtime).toMatch(/^docker \d+\.\d+/);
    const rootDir = await new DockerRuntime().storageDir();
    if (rootDir !== null && existsSync(rootDir)) expect(hello.conditions!.engineDisk?.path).toBe(rootDir);

    const spec = sleeperSpec(IMAGE);
    hub.sendTarget({ generation: 1, replicas: [{ replicaId: 'r1', service: 'web', specHash: containerSpecHash(spec), container: spec }] });
    await vi.waitFor(async () => expect(await running(nodeId)).toHaveLength(1), { timeout: 30_000, interval: 200 });
    const [containerId] = await running(nodeId);
    const startedAt = (await docker.inspectContainer(containerId!)).State.StartedAt;
    const engineOf = (): NodeConditions['engine'] | undefined => hub.ofType('conditions').at(-1)?.conditions.engine;

    // The engine goes away (its socket with it).
    await proxy.close();
    await vi.waitFor(() => expect(engineOf()).toEqual({ available: false, error: expect.stringMatching(/^docker /) }), { timeout: 10_000, interval: 50 });
    proxy = await EngineProxy.start(socketPath);
    await vi.waitFor(() => expect(engineOf()).toEqual({ available: true, error: null }), { timeout: 10_000, interval: 50 });

    // The engine hangs: accepts and never answers.
    proxy.frozen = true;
    await vi.waitFor(() => expect(engineOf()).toEqual({ available: false, error: expect.stringMatching(/did not answer/) }), { timeout: 30_000, interval: 50 });
    proxy.frozen = false;
    await vi.waitFor(() => expect(engineOf()).toEqual({ available: true, error: null }), { timeout: 15_000, interval: 50 });

    // Nothing was removed or restarted for the outage.
    expect(await running(nodeId)).toEqual([containerId]);
    expect((await docker.inspectContainer(containerId!)).State.StartedAt).toBe(startedAt);
    expect(agent.child.exitCode).toBeNull();
  }, 120_000);
});
