/**
 * The agent's target cache on a device whose disk fills up: a save that fails is retried until the
 * newest target is on disk, and an agent restarted without the hub never lets a possibly stale
 * cache remove or replace what runs.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterEach, expect, it, vi } from 'vitest';
import { Agent } from '../../agent/agent.js';
import type { NodeIdentity } from '../../agent/node-identity.js';
import { SimulatedRuntime } from '../../agent/runtime/simulated-runtime.js';
import { TargetCache } from '../../agent/target-cache.js';
import type { TargetFrame } from '../../shared/protocol.js';
import { SimFleet, simFacts } from '../helpers/sim-fleet.js';
import { silentLogger } from '../helpers/silent-logger.js';

/** A cache on a disk that is full while `full` is set. */
class DiskFullCache extends TargetCache {
  full = false;
  saves = 0;
  override async save(target: TargetFrame): Promise<void> {
    this.saves++;
    if (this.full) throw Object.assign(new Error('ENOSPC: no space left on device, write'), { code: 'ENOSPC' });
    return super.save(target);
  }
}

let fleet: SimFleet | undefined;
let dir = '';
const agents: Agent[] = [];
afterEach(async () => {
  await Promise.all(agents.splice(0).map((a) => a.stop()));
  await fleet?.close();
  fleet = undefined;
  if (dir) await rm(dir, { recursive: true, force: true });
});

// Both replicas change in one target (one batch, no monitor wait): this test is about what the
// cache holds across targets, and a rolling update's two targets would stretch the full-disk spell.
const spec = (version: number) => ({
  image: `tether-test/busybox:${version}`,
  command: ['/bin/httpd', '-f', '-p', '8080'],
  replicas: 2,
  update: { parallelism: 2, monitor: '0s' },
});

function startAgent(identity: NodeIdentity, runtime: SimulatedRuntime, cache: TargetCache): Agent {
  const agent = new Agent({
    identity,
    name: 'cached',
    labels: {},
    advertiseAddress: null,
    publishAddress: '127.0.0.9',
    runtime,
    targetCache: cache,
    facts: simFacts({ hostname: 'cached' }),
    logger: silentLogger,
    resyncIntervalMs: 200,
    reconnectBaseMs: 50,
    reconnectCapMs: 200,
    retryBaseMs: 50,
  });
  agents.push(agent);
  return agent;
}

it('retries a target save that failed until the newest target is cached, and a stale cache removes and replaces nothing', async () => {
  dir = await mkdtemp(path.join(os.tmpdir(), 'tether-cache-'));
  const hub = await SimFleet.start();
  fleet = hub;
  const runtime = new SimulatedRuntime({ images: ['tether-test/busybox:1', 'tether-test/busybox:2'] });
  const { token } = await hub.hub.nodes.createJoinToken(60);
  const joined = (await hub.hub.nodes.join(token, 'cached', {}))!;
  const identity = { hubUrl: hub.url, nodeId: joined.nodeId, credential: joined.credential };
  const cache = new DiskFullCache(dir);
  const first = startAgent(identity, runtime, cache);
  await first.start();
  await hub.api('PUT', '/v1/services/web', spec(1));
  await vi.waitFor(async () => expect((await cache.load())?.replicas).toHaveLength(2), { timeout: 10_000, interval: 50 });
  const v1Generation = (await cache.load())!.generation;

  // The disk fills up; the service moves to version 2, and the agent runs it.
  cache.full = true;
  await hub.api('PUT', '/v1/services/web', spec(2));
  const running = () => runtime.containers().filter((c) => c.state === 'running');
  await vi.waitFor(() => expect(running().map((c) => c.image)).toEqual(['tether-test/busybox:2', 'tether-test/busybox:2']), { timeout: 10_000, interval: 50 });
  await vi.waitFor(() => expect(cache.saves).toBeGreaterThanOrEqual(3), { timeout: 10_000, interval: 50 });
  expect((await cache.load())!.generation).toBe(v1Generation);
  // Space comes back: the retry caches version 2 with no new target from the hub.
  cache.full = false;
  await vi.waitFor(async () => expect((await cache.load())!.generation).toBeGreaterThan(v1Generation), { timeout: 10_000, interval: 50 });
  const v2Generation = (await cache.load())!.generation;

  // Full again; the service changes once more (another command: new containers).
  cache.full = true;
  await hub.api('PUT', '/v1/services/web', { ...spec(2), command: ['/bin/httpd', '-f', '-p', '8081'] });
  await vi.waitFor(
    async () => {
      // Running counts the replicas an update has not reached yet: wait for the update's end.
      const view = (await hub.api<{ status: { running: number }; rollout: { state: string } | null }>('GET', '/v1/services/web')).body;
      expect(view.rollout?.state).toBe('completed');
      expect(view.status.running).toBe(2);
      expect(running()).toHaveLength(2);
    },
    { timeout: 10_000, interval: 50 },
  );
  expect((await cache.load())!.generation).toBe(v2Generation);

  // The agent and the hub go away, the device reboots with the stale cache (the previous command).
  await first.stop();
  await hub.stopHub();
  const before = running().map((c) => c.id).sort();
  const second = startAgent(identity, runtime, cache);
  await second.start();
  await new Promise((r) => setTimeout(r, 1000));
  // Nothing removed, nothing downgraded: the version 2 containers run on.
  expect(running().map((c) => c.id).sort()).toEqual(before);
  expect(runtime.containers()).toHaveLength(2);

  // Space comes back and the hub returns: the newest target is cached, and the hub's word rules.
  cache.full = false;
  await hub.startHub();
  await vi.waitFor(async () => expect((await cache.load())!.generation).toBeGreaterThan(v2Generation), { timeout: 15_000, interval: 50 });
  expect(running().map((c) => c.id).sort()).toEqual(before);
}, 40_000);
