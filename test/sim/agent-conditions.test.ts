/**
 * What an agent tells its hub about its own condition: the hello carries the engine, the target
 * cache and the data disk; a change goes out as a conditions frame while connected, and nothing
 * is queued while disconnected.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterEach, expect, it, vi } from 'vitest';
import { Agent } from '../../agent/agent.js';
import { SimulatedRuntime } from '../../agent/runtime/simulated-runtime.js';
import { TargetCache } from '../../agent/target-cache.js';
import { containerSpecHash } from '../../shared/container-spec.js';
import type { NodeConditions, TargetFrame } from '../../shared/protocol.js';
import { containerSpec } from '../helpers/container-spec.js';
import { RecordingHub } from '../helpers/recording-hub.js';
import { simFacts } from '../helpers/sim-fleet.js';
import { silentLogger } from '../helpers/silent-logger.js';

/** A cache on a disk that is full while `full` is set. */
class DiskFullCache extends TargetCache {
  full = false;
  override async save(target: TargetFrame): Promise<void> {
    if (this.full) throw Object.assign(new Error('ENOSPC: no space left on device, write'), { code: 'ENOSPC' });
    return super.save(target);
  }
}

let dir = '';
let hub: RecordingHub | undefined;
let agent: Agent | undefined;
afterEach(async () => {
  await agent?.stop();
  await hub?.close();
  agent = hub = undefined;
  if (dir) await rm(dir, { recursive: true, force: true });
});

const IMAGE = 'tether-test/busybox:1';
const spec = containerSpec(IMAGE);
const replica = { replicaId: 'r1', service: 'web', specHash: containerSpecHash(spec), container: spec };
const waitFor = <T>(check: () => T) => vi.waitFor(check, { timeout: 10_000, interval: 20 });

async function start(runtime: SimulatedRuntime, cache: TargetCache): Promise<{ hub: RecordingHub; agent: Agent }> {
  hub = await RecordingHub.start();
  agent = new Agent({
    identity: { hubUrl: hub.url, nodeId: 'node-1', credential: 'secret' },
    name: 'cond',
    labels: {},
    advertiseAddress: null,
    publishAddress: '127.0.0.20',
    runtime,
    dataDir: dir,
    targetCache: cache,
    facts: simFacts({ hostname: 'cond' }),
    logger: silentLogger,
    resyncIntervalMs: 200,
    reconnectBaseMs: 50,
    reconnectCapMs: 200,
    retryBaseMs: 50,
    engineRetryIntervalMs: 50,
  });
  await agent.start();
  return { hub, agent };
}

const lastConditions = (h: RecordingHub): NodeConditions | undefined => h.ofType('conditions').at(-1)?.conditions;

it('reports the engine, the target cache and the data disk at hello, and each change once while connected', async () => {
  dir = await mkdtemp(path.join(os.tmpdir(), 'tether-conditions-'));
  const runtime = new SimulatedRuntime({ images: [IMAGE] });
  const cache = new DiskFullCache(dir);
  const { hub } = await start(runtime, cache);

  await waitFor(() => expect(hub.ofType('hello')).toHaveLength(1));
  const hello = hub.ofType('hello')[0]!;
  expect(hello.conditions).toMatchObject({
    engine: { available: true, error: null },
    targetCache: { current: true, error: null },
    dataDisk: { path: dir },
    // The simulated engine has no storage of its own to describe.
    engineDisk: null,
  });
  expect(hello.conditions!.dataDisk!.totalBytes).toBeGreaterThan(0);

  // A target that cannot be cached: the hub hears the cache is not current, and why.
  cache.full = true;
  hub.sendTarget({ generation: 1, replicas: [replica] });
  await waitFor(() => expect(lastConditions(hub)?.targetCache).toEqual({ current: false, error: expect.stringMatching(/generation 1: ENOSPC/) }));
  // The retry works once space returns.
  cache.full = false;
  await waitFor(() => expect(lastConditions(hub)?.targetCache).toEqual({ current: true, error: null }));

  // The engine goes away, and comes back; what runs is left alone.
  await waitFor(() => expect(runtime.containers().map((c) => c.state)).toEqual(['running']));
  const running = runtime.containers()[0]!.id;
  runtime.setEngineAvailable(false);
  await waitFor(() => expect(lastConditions(hub)?.engine).toEqual({ available: false, error: expect.stringMatching(/ECONNREFUSED/) }));
  runtime.setEngineAvailable(true);
  await waitFor(() => expect(lastConditions(hub)?.engine).toEqual({ available: true, error: null }));
  expect(runtime.containers().map((c) => [c.id, c.state])).toEqual([[running, 'running']]);
  expect(runtime.calls.removeContainer + runtime.calls.stopContainer).toBe(0);
  expect(hub.ofType('conditions').map((f) => [f.conditions.engine.available, f.conditions.targetCache.current])).toEqual([
    [true, false],
    [true, true],
    [false, true],
    [true, true],
  ]);
}, 30_000);

it('queues nothing while disconnected: the next hello carries the state of that moment', async () => {
  dir = await mkdtemp(path.join(os.tmpdir(), 'tether-conditions-'));
  const runtime = new SimulatedRuntime({ images: [IMAGE] });
  const { hub: first, agent: a } = await start(runtime, new TargetCache(dir));
  await waitFor(() => expect(a.link.connected).toBe(true));
  const url = first.url;
  await first.close();
  await waitFor(() => expect(a.link.connected).toBe(false));
  runtime.setEngineAvailable(false);
  await waitFor(() => expect(a.conditions.current().engine.available).toBe(false));

  // The same address again: the agent reconnects by itself.
  const port = Number(new URL(url).port);
  const again = (hub = await RecordingHub.start(port));
  await waitFor(() => expect(again.ofType('hello')).toHaveLength(1));
  expect(again.ofType('hello')[0]!.conditions!.engine.available).toBe(false);
  await new Promise((r) => setTimeout(r, 1500));
  expect(again.ofType('conditions')).toEqual([]);
}, 30_000);


it('tells a hub it reconnects to how many replicas of the applied generation still wait for their image', async () => {
  dir = await mkdtemp(path.join(os.tmpdir(), 'tether-conditions-'));
  const slowImage = 'tether-test/busybox:2';
  const runtime = new SimulatedRuntime({ images: [IMAGE], pullDelayMs: 3_000 });
  const { hub } = await start(runtime, new TargetCache(dir));
  await waitFor(() => expect(hub.ofType('hello')).toHaveLength(1));
  const slowSpec = containerSpec(slowImage);
  hub.sendTarget({
    generation: 1,
    replicas: [replica, { replicaId: 'r2', service: 'web', specHash: containerSpecHash(slowSpec), container: slowSpec }],
  });
  await waitFor(() => expect(hub.ofType('ack').map((a) => [a.generation, a.pending])).toContainEqual([1, 1]));

  // The link drops while the image is still being pulled: the hello says generation 1, not that
  // one replica of it still waits; the hub must hear that too.
  const before = hub.frames.length;
  hub.cut();
  await waitFor(() => expect(hub.ofType('hello')).toHaveLength(2));
  await waitFor(() => expect(hub.frames.slice(before).filter((f) => f.type === 'ack').map((a) => [a.generation, a.pending])).toContainEqual([1, 1]));
  await waitFor(() => expect(hub.ofType('ack').at(-1)).toMatchObject({ generation: 1, pending: 0 }));
});
