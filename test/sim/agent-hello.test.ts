/**
 * What the hub hears around an agent's hello: changes made while the hub has not welcomed it yet,
 * the first hello of an agent with a long first pass, and facts learnt after the hello.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterEach, expect, it, vi } from 'vitest';
import { Agent, RUNTIME_UNKNOWN } from '../../agent/agent.js';
import type { ContainerRuntime, EngineProbe } from '../../agent/runtime/container-runtime.js';
import { SimulatedRuntime } from '../../agent/runtime/simulated-runtime.js';
import { TargetCache } from '../../agent/target-cache.js';
import { containerSpecHash } from '../../shared/container-spec.js';
import type { AgentFrame, AssignedReplica, NodeFacts } from '../../shared/protocol.js';
import { containerSpec } from '../helpers/container-spec.js';
import { RecordingHub } from '../helpers/recording-hub.js';
import { simFacts } from '../helpers/sim-fleet.js';
import { silentLogger } from '../helpers/silent-logger.js';

let dir = '';
let hub: RecordingHub | undefined;
let agent: Agent | undefined;
/** Gates opened after each test, so a failed one does not leave the agent waiting on them. */
const gates: Array<() => void> = [];
afterEach(async () => {
  for (const open of gates.splice(0)) open();
  await agent?.stop();
  await hub?.close();
  agent = hub = undefined;
  if (dir) await rm(dir, { recursive: true, force: true });
  dir = '';
});

const waitFor = <T>(check: () => T) => vi.waitFor(check, { timeout: 10_000, interval: 10 });

function assigned(replicaId: string, image: string): AssignedReplica {
  const spec = containerSpec(image);
  return { replicaId, service: 'web', specHash: containerSpecHash(spec), container: spec };
}

/** A gate a test opens when it says. */
function gate(): { wait: Promise<void>; open: () => void } {
  let open = () => {};
  const wait = new Promise<void>((resolve) => (open = resolve));
  gates.push(open);
  return { wait, open };
}

type Runtime = ContainerRuntime & EngineProbe;

/** The simulated runtime with some calls held at a gate first. */
function gated(sim: SimulatedRuntime, hold: { pullImage?: Promise<void>; startContainer?: Promise<void> }): Runtime {
  const methods = ['version', 'ping', 'storageDir', 'onUnreachable', 'listContainers', 'hasImage', 'pullImage', 'createContainer', 'startContainer', 'stopContainer', 'removeContainer', 'watchEvents'] as const;
  const runtime = Object.fromEntries(methods.map((m) => [m, (sim[m] as (...a: unknown[]) => unknown).bind(sim)])) as unknown as Runtime;
  for (const [name, until] of Object.entries(hold) as Array<[keyof typeof hold, Promise<void>]>) {
    const inner = runtime[name] as (...a: unknown[]) => Promise<unknown>;
    (runtime as unknown as Record<string, unknown>)[name] = async (...args: unknown[]) => {
      await until;
      return inner(...args);
    };
  }
  return runtime;
}

async function startAgent(runtime: Runtime, opts: { cache?: TargetCache; facts?: NodeFacts; engineRetryIntervalMs?: number } = {}): Promise<Agent> {
  hub ??= await RecordingHub.start();
  agent = new Agent({
    identity: { hubUrl: hub.url, nodeId: 'node-1', credential: 'secret' },
    name: 'hello',
    labels: {},
    advertiseAddress: null,
    publishAddress: '127.0.0.20',
    runtime,
    targetCache: opts.cache ?? null,
    facts: opts.facts ?? simFacts(),
    logger: silentLogger,
    resyncIntervalMs: 60_000,
    reconnectBaseMs: 20,
    reconnectCapMs: 50,
    retryBaseMs: 50,
    engineRetryIntervalMs: opts.engineRetryIntervalMs,
  });
  return agent;
}

/** The frames of the newest connection: from its hello on. */
function sinceLastHello(frames: readonly AgentFrame[]): AgentFrame[] {
  const i = frames.map((f) => f.type).lastIndexOf('hello');
  return i < 0 ? [] : frames.slice(i);
}

it('an ack and a report made between the hello and the welcome reach the hub', async () => {
  const sim = new SimulatedRuntime({ images: ['a:1'] });
  const pull = gate();
  const a = await startAgent(gated(sim, { pullImage: pull.wait }));
  await a.start();
  await waitFor(() => expect(a.link.connected).toBe(true));
  hub!.sendTarget({ generation: 1, replicas: [assigned('r1', 'a:1'), assigned('r2', 'b:1')] });
  await waitFor(() => expect(hub!.ofType('ack').at(-1)).toEqual({ type: 'ack', generation: 1, pending: 1 }));

  // A hub slow to welcome: the pull ends after the agent said hello again, before the welcome.
  hub!.holdWelcomes();
  hub!.cut();
  await waitFor(() => expect(hub!.ofType('hello')).toHaveLength(2));
  const hello = hub!.ofType('hello')[1]!;
  expect(hello.appliedGeneration).toBe(1);
  expect(hello.replicas.find((r) => r.replicaId === 'r2')?.state).toBe('pending');
  pull.open();
  await waitFor(() => expect(sim.containers().filter((c) => c.state === 'running')).toHaveLength(2));

  await waitFor(() => {
    const after = sinceLastHello(hub!.frames);
    expect(after.filter((f) => f.type === 'ack').at(-1)).toEqual({ type: 'ack', generation: 1, pending: 0 });
    expect(after.flatMap((f) => (f.type === 'status' ? f.replicas : [])).find((r) => r.replicaId === 'r2')?.state).toBe('running');
  });
  expect(a.link.connected).toBe(false);
  hub!.releaseWelcomes();
  await waitFor(() => expect(a.link.connected).toBe(true));
});

it('tells the pending count of the applied generation right after the hello', async () => {
  const sim = new SimulatedRuntime({ images: ['a:1'] });
  const pull = gate();
  const a = await startAgent(gated(sim, { pullImage: pull.wait }));
  await a.start();
  await waitFor(() => expect(a.link.connected).toBe(true));
  hub!.sendTarget({ generation: 1, replicas: [assigned('r1', 'a:1'), assigned('r2', 'b:1')] });
  await waitFor(() => expect(hub!.ofType('ack').at(-1)).toEqual({ type: 'ack', generation: 1, pending: 1 }));
  hub!.holdWelcomes();
  hub!.cut();
  await waitFor(() => expect(sinceLastHello(hub!.frames).map((f) => f.type)).toEqual(['hello', 'ack']));
  expect(sinceLastHello(hub!.frames)[1]).toEqual({ type: 'ack', generation: 1, pending: 1 });
  pull.open();
  hub!.releaseWelcomes();
});

it('says hello once it has listed what runs, not after a long first pass', async () => {
  dir = await mkdtemp(path.join(os.tmpdir(), 'tether-hello-'));
  const sim = new SimulatedRuntime({ images: ['a:1'] });
  const r0 = assigned('r0', 'a:1');
  // Left running by the agent before this one: the hello must name it.
  const id = await sim.createContainer({ nodeId: 'node-1', replicaId: 'r0', service: 'web', specHash: r0.specHash, name: 'tether-r0', spec: r0.container, publishAddress: null });
  await sim.startContainer(id);
  const cache = new TargetCache(dir);
  const replicas = [r0, ...Array.from({ length: 20 }, (_, i) => assigned(`r${i + 1}`, 'a:1'))];
  await cache.save({ type: 'target', generation: 3, replicas });
  // Every start of the first pass waits: a pass that takes as long as the device likes.
  const starts = gate();
  const a = await startAgent(gated(sim, { startContainer: starts.wait }), { cache });
  const started = a.start();

  await waitFor(() => expect(hub!.ofType('hello')).toHaveLength(1));
  const hello = hub!.ofType('hello')[0]!;
  expect(hello.replicas.find((r) => r.replicaId === 'r0')).toMatchObject({ state: 'running', containerId: id });
  expect(hello.replicas.filter((r) => r.state !== 'running')).toHaveLength(20);
  starts.open();
  await started;
  await waitFor(() => expect(new Set(hub!.ofType('status').flatMap((f) => f.replicas).filter((r) => r.state === 'running').map((r) => r.replicaId)).size).toBe(20));
});

it('says hello again when its facts change while connected: the engine version learnt after an outage', async () => {
  const sim = new SimulatedRuntime();
  sim.setEngineAvailable(false);
  const a = await startAgent(sim, { facts: simFacts({ runtime: RUNTIME_UNKNOWN }), engineRetryIntervalMs: 50 });
  await a.start();
  await waitFor(() => expect(a.link.connected).toBe(true));
  expect(hub!.ofType('hello').map((h) => h.facts.runtime)).toEqual([RUNTIME_UNKNOWN]);
  sim.setEngineAvailable(true);
  const version = await sim.version();
  await waitFor(() => expect(hub!.ofType('hello').at(-1)?.facts.runtime).toBe(version));
  await waitFor(() => expect(a.link.connected).toBe(true));
  // Once: the facts told are the facts.
  await new Promise((resolve) => setTimeout(resolve, 300));
  expect(hub!.ofType('hello')).toHaveLength(2);
});
