/**
 * Rolling updates as agents see them (simulated engines, real hub and agents): a change goes out
 * a batch at a time, never more replicas down than the update's parallelism; a broken release
 * rolls back by itself; a paused one resumes on request.
 */
import { afterEach, expect, it, vi } from 'vitest';
import { SimulatedRuntime } from '../../agent/runtime/simulated-runtime.js';
import { SimFleet } from '../helpers/sim-fleet.js';

const command = ['/bin/httpd', '-f', '-p', '8080'];
const v1 = 'tether-test/busybox:1';
const v2 = 'tether-test/busybox:2';
const broken = 'tether-test/busybox:broken';
/** A check the simulated engine passes one interval after a start. */
const healthcheck = { type: 'tcp', port: 8080, interval: '100ms', timeout: '100ms', retries: 1 };

let fleet: SimFleet;
afterEach(async () => {
  await fleet?.close();
});

/** Two agents on one engine where a container of `broken` will not start. */
async function startFleet(): Promise<SimulatedRuntime> {
  fleet = await SimFleet.start();
  const runtime = new SimulatedRuntime({ startFails: (image) => (image === broken ? 'exec: "/bin/httpd": not found' : null) });
  await Promise.all([fleet.addAgent({ runtime }), fleet.addAgent({ runtime })]);
  return runtime;
}

const running = (runtime: SimulatedRuntime, service: string) =>
  runtime.containers().filter((c) => c.service === service && c.state === 'running');

interface RolloutView {
  state: string;
  progress: { updated: number; total: number };
  reason: string | null;
  rollbackOf: number | null;
  failed: { count: number };
}

async function rolloutOf(service: string): Promise<RolloutView> {
  return (await fleet.api('GET', `/v1/services/${service}`)).body.rollout as RolloutView;
}

async function waitAllRunning(runtime: SimulatedRuntime, service: string, image: string, count: number): Promise<void> {
  await vi.waitFor(
    () => {
      const now = running(runtime, service);
      expect(now.map((c) => c.image)).toEqual(Array(count).fill(image));
    },
    { timeout: 15_000, interval: 20 },
  );
}

it('replaces one replica at a time (stop-first), the next once the one before serves, and completes after the monitor period', async () => {
  const runtime = await startFleet();
  const spec = { command, replicas: 4, healthcheck, update: { parallelism: 1, monitor: '300ms' } };
  expect((await fleet.api('PUT', '/v1/services/web', { image: v1, ...spec })).status).toBe(201);
  await waitAllRunning(runtime, 'web', v1, 4);
  expect(await rolloutOf('web')).toBeNull();

  const put = await fleet.api('PUT', '/v1/services/web', { image: v2, ...spec });
  expect(put.body.rollout).toMatchObject({ state: 'updating', fromRevision: 1, toRevision: 2, progress: { updated: 0, total: 4 } });
  // Each replica says which revision it runs until the update reaches it.
  expect(put.body.status.replicas.map((r: { revision: number | null }) => r.revision)).toEqual([1, 1, 1, 1]);

  // Sampled throughout: never fewer than 3 replicas running (parallelism 1 of 4).
  let fewest = 4;
  let mixed = false;
  const sampler = setInterval(() => {
    const now = running(runtime, 'web');
    fewest = Math.min(fewest, now.length);
    if (new Set(now.map((c) => c.image)).size > 1) mixed = true;
  }, 5);
  try {
    await vi.waitFor(async () => expect((await rolloutOf('web')).state).toBe('completed'), { timeout: 20_000, interval: 50 });
  } finally {
    clearInterval(sampler);
  }
  await waitAllRunning(runtime, 'web', v2, 4);
  expect(fewest).toBeGreaterThanOrEqual(3);
  // It was a rolling update: both versions ran side by side for a while.
  expect(mixed).toBe(true);
  expect(await rolloutOf('web')).toMatchObject({ progress: { updated: 4, total: 4 }, failed: { count: 0 } });
  const done = (await fleet.api('GET', '/v1/services/web')).body;
  expect(done.status.replicas.map((r: { revision: number | null }) => r.revision)).toEqual([null, null, null, null]);
});

it('counts replicas the update has not reached yet as running: they serve their own revision', async () => {
  const runtime = await startFleet();
  // A monitor long enough that the update stays on its first batch while the view is read.
  const spec = { command, replicas: 3, update: { parallelism: 1, monitor: '1m' } };
  expect((await fleet.api('PUT', '/v1/services/web', { image: v1, ...spec })).status).toBe(201);
  await waitAllRunning(runtime, 'web', v1, 3);
  expect((await fleet.api('PUT', '/v1/services/web', { image: v2, ...spec })).status).toBe(200);
  await vi.waitFor(() => expect(running(runtime, 'web').map((c) => c.image).sort()).toEqual([v1, v1, v2]), { timeout: 10_000, interval: 20 });
  // Once the agents have reported the new container, the view counts every serving replica.
  const view = await vi.waitFor(
    async () => {
      const body = (await fleet.api('GET', '/v1/services/web')).body;
      expect(body.status.replicas.find((r: { revision: number | null }) => r.revision === null)?.state).toBe('running');
      return body;
    },
    { timeout: 10_000, interval: 20 },
  );
  expect(view.rollout).toMatchObject({ state: 'updating', progress: { updated: 1, total: 3 } });
  expect(view.status).toMatchObject({ desired: 3, running: 3, states: { running: 3 }, health: { healthy: 3 } });
  const byRevision = view.status.replicas.map((r: { revision: number | null; state: string; containerId: string | null }) => [r.revision, r.state, r.containerId !== null]);
  expect(byRevision).toHaveLength(3);
  expect(byRevision).toEqual(
    expect.arrayContaining([
      [1, 'running', true],
      [null, 'running', true],
    ]),
  );
  expect(byRevision.filter(([revision]: [number | null]) => revision === 1)).toHaveLength(2);
});

it('a change that replaces no container (a scale) is no update', async () => {
  const runtime = await startFleet();
  expect((await fleet.api('PUT', '/v1/services/web', { image: v1, command, replicas: 2 })).status).toBe(201);
  await waitAllRunning(runtime, 'web', v1, 2);
  const scaled = await fleet.api('POST', '/v1/services/web/scale', { replicas: 3 });
  expect(scaled.body.rollout).toBeNull();
  await waitAllRunning(runtime, 'web', v1, 3);
});

it('rolls back by itself when a new replica fails, and the old version serves throughout', async () => {
  const runtime = await startFleet();
  const spec = { command, replicas: 3, healthcheck, update: { parallelism: 1, monitor: '200ms' } };
  await fleet.api('PUT', '/v1/services/web', { image: v1, ...spec });
  await waitAllRunning(runtime, 'web', v1, 3);
  let fewest = 3;
  const sampler = setInterval(() => (fewest = Math.min(fewest, running(runtime, 'web').length)), 5);
  try {
    const put = await fleet.api('PUT', '/v1/services/web', { image: broken, ...spec });
    expect(put.body.revision).toBe(2);
    await vi.waitFor(async () => expect((await rolloutOf('web')).state).toBe('rolled-back'), { timeout: 20_000, interval: 50 });
  } finally {
    clearInterval(sampler);
  }
  const view = (await fleet.api('GET', '/v1/services/web')).body;
  // The rollback is a revision of its own, with the spec of revision 1.
  expect(view.revision).toBe(3);
  expect(view.spec.image).toBe(v1);
  expect(view.rollout).toMatchObject({ rollbackOf: 2, fromRevision: 2, toRevision: 3, progress: { updated: 3, total: 3 } });
  expect(view.rollout.reason).toMatch(/update to revision 2 failed.*not found.*rolling back to revision 1/);
  await waitAllRunning(runtime, 'web', v1, 3);
  // The failed replica's old container stood in while its new one would not start: stop-first
  // with a fallback never left more than one replica down.
  expect(fewest).toBeGreaterThanOrEqual(2);
  const revisions = (await fleet.api('GET', '/v1/services/web/revisions')).body.revisions.map((r: { revision: number }) => r.revision);
  expect(revisions).toEqual([3, 2, 1]);
});

it('pauses on failure when told to, and resumes on request', async () => {
  const runtime = await startFleet();
  const spec = { command, replicas: 2, healthcheck, update: { parallelism: 1, monitor: '200ms', failureAction: 'pause' } };
  await fleet.api('PUT', '/v1/services/web', { image: v1, ...spec });
  await waitAllRunning(runtime, 'web', v1, 2);
  const notPaused = await fleet.api('POST', '/v1/services/web/resume');
  expect(notPaused.status).toBe(409);
  expect(notPaused.body.error).toMatchObject({ code: 'not_paused', message: expect.stringMatching(/has had no update/) });

  await fleet.api('PUT', '/v1/services/web', { image: broken, ...spec });
  await vi.waitFor(async () => expect((await rolloutOf('web')).state).toBe('paused'), { timeout: 20_000, interval: 50 });
  const paused = await rolloutOf('web');
  expect(paused.reason).toMatch(/^update paused: replica .* failed: .*not found/);
  expect(paused.progress.updated).toBe(1);
  // Paused: the second replica is left alone, still the old version.
  await new Promise((r) => setTimeout(r, 500));
  expect((await rolloutOf('web')).progress.updated).toBe(1);
  expect(running(runtime, 'web').some((c) => c.image === v1)).toBe(true);

  const resumed = await fleet.api('POST', '/v1/services/web/resume');
  expect(resumed.status).toBe(200);
  expect(resumed.body.rollout.state).toBe('updating');
  // The next batch fails the same way: paused again, the whole service now on the broken revision.
  await vi.waitFor(async () => expect(await rolloutOf('web')).toMatchObject({ state: 'paused', progress: { updated: 2 } }), { timeout: 20_000, interval: 50 });
  expect((await fleet.api('POST', '/v1/services/nope/resume')).status).toBe(404);
});

it('a crash of a replica in its monitor period pauses the update; resumed, what happened while paused counts for nothing', async () => {
  const runtime = await startFleet();
  // Long enough that the first new replica is still watched when it crashes.
  const spec = { command, replicas: 3, update: { parallelism: 1, monitor: '30s', failureAction: 'pause' } };
  await fleet.api('PUT', '/v1/services/web', { image: v1, ...spec });
  await waitAllRunning(runtime, 'web', v1, 3);
  await fleet.api('PUT', '/v1/services/web', { image: v2, ...spec });
  // Two batches serve and are watched; the update goes on meanwhile.
  await vi.waitFor(async () => expect((await fleet.api('GET', '/v1/services/web')).body.rollout.monitoring).toHaveLength(2), { timeout: 10_000, interval: 25 });
  const first = runtime.containers().find((c) => c.service === 'web' && c.image === v2 && c.state === 'running')!;
  runtime.crash(first.id, 1, 'boom\n');
  runtime.tick();
  await vi.waitFor(async () => expect((await rolloutOf('web')).state).toBe('paused'), { timeout: 10_000, interval: 25 });
  expect((await rolloutOf('web')).reason).toMatch(/restarted 1 time/);
  // While it is paused, another watched new replica restarts: nothing watches it now.
  const watchedIds = (await fleet.api('GET', '/v1/services/web')).body.rollout.monitoring as string[];
  expect(watchedIds).toEqual([]); // not shown while paused
  const other = runtime.containers().find((c) => c.service === 'web' && c.image === v2 && c.state === 'running' && c.id !== first.id)!;
  runtime.crash(other.id, 1, 'boom\n');
  runtime.tick();

  // Resumed: what happened while it was paused is no failure of the update; it goes on.
  expect((await fleet.api('POST', '/v1/services/web/resume')).status).toBe(200);
  await waitAllRunning(runtime, 'web', v2, 3);
  await vi.waitFor(async () => expect((await rolloutOf('web')).state).toBe('updating'), { timeout: 5_000, interval: 25 });
  await new Promise((r) => setTimeout(r, 500));
  expect((await rolloutOf('web')).state).toBe('updating');
  const view = (await fleet.api('GET', '/v1/services/web')).body.rollout as RolloutView & { monitoring: string[] };
  expect(view.monitoring.length).toBeGreaterThan(0);
});

it('start-first runs each new replica beside the old one, which stops only once the new one serves', async () => {
  const runtime = await startFleet();
  const spec = { command, replicas: 2, healthcheck, update: { parallelism: 1, order: 'start-first', monitor: '200ms' } };
  await fleet.api('PUT', '/v1/services/web', { image: v1, ...spec });
  await waitAllRunning(runtime, 'web', v1, 2);
  let fewest = 2;
  let most = 2;
  const sampler = setInterval(() => {
    const n = running(runtime, 'web').length;
    fewest = Math.min(fewest, n);
    most = Math.max(most, n);
  }, 5);
  try {
    await fleet.api('PUT', '/v1/services/web', { image: v2, ...spec });
    await vi.waitFor(async () => expect((await rolloutOf('web')).state).toBe('completed'), { timeout: 20_000, interval: 50 });
    await waitAllRunning(runtime, 'web', v2, 2);
  } finally {
    clearInterval(sampler);
  }
  // Never fewer than the two it had; at most one more (parallelism 1).
  expect(fewest).toBe(2);
  expect(most).toBe(3);
  const view = (await fleet.api('GET', '/v1/services/web')).body;
  expect(view.status.replicas).toHaveLength(2);
});
