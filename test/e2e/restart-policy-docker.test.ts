/**
 * Restart policies through the whole path: the hub and an agent as real processes on the real
 * engine. A container that exits 1 at once is started again by the agent (the engine's policy is
 * "no") after delays that grow and then stay at the cap, measured from the engine's own start
 * times; the service view shows it crash-looping with its exit code and output. Under
 * `on-failure` a container that exits 0 stays stopped; under `never` one that exits 1 does.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import { afterAll, beforeAll, expect, it, onTestFailed, vi } from 'vitest';
import { describeDocker, docker } from '../helpers/docker.js';
import { startE2eFleet, type E2eFleet } from '../helpers/e2e-fleet.js';
import type { Proc } from '../helpers/processes.js';

const IMAGE = 'tether-test/busybox:1';

describeDocker('restart policies, hub and agent processes on the real engine', () => {
  const prefix = `rp-${process.pid}`;
  let fleet: E2eFleet;
  const api: E2eFleet['api'] = (...args) => fleet.api(...args);
  let agent: Proc | undefined;
  let nodeId: string | undefined;

  beforeAll(async () => {
    fleet = await startE2eFleet('restart', ['127.0.0.1']);
    agent = fleet.agents[0];
    nodeId = fleet.nodeIds[0];
  }, 60_000);

  afterAll(async () => {
    await fleet?.close();
  });

  const replicaOf = async (service: string) => (await api('GET', `/v1/services/${service}`)).body.status.replicas[0];

  /** The service's one container, once it exists. */
  const containerOf = (service: string) =>
    vi.waitFor(
      async () => {
        const [c] = await docker.listContainers([`io.tether.node-id=${nodeId}`, `io.tether.service=${service}`]);
        expect(c).toBeDefined();
        return c!;
      },
      { timeout: 30_000, interval: 100 },
    );

  it('backs off a container that exits 1 at once: the gaps between its starts grow, then stay at the cap', async () => {
    onTestFailed(() => console.log(`agent output:\n${agent?.output().slice(-6000)}`));
    const service = `${prefix}-crashy`;
    const spec = { image: IMAGE, command: ['sh', '-c', 'echo boom; exit 1'], replicas: 1, restart: { backoff: { initial: '1s', max: '4s' } } };
    expect((await api('PUT', `/v1/services/${service}`, spec)).status).toBe(201);
    const c = await containerOf(service);
    expect((await docker.inspectContainer(c.Id)).HostConfig.RestartPolicy?.Name).toBe('no');

    // The engine's own start times, polled far more often than the shortest delay.
    const starts: number[] = [];
    let sawCrashLoop: { state: string; error: string | null; crashLoop: Record<string, unknown> } | undefined;
    await vi.waitFor(
      async () => {
        const startedAt = Date.parse((await docker.inspectContainer(c.Id)).State.StartedAt);
        if (startedAt > 0 && starts.at(-1) !== startedAt) starts.push(startedAt);
        if (!sawCrashLoop) {
          const r = await replicaOf(service);
          if (r?.state === 'crash-looping') sawCrashLoop = r;
        }
        expect(starts.length).toBeGreaterThanOrEqual(7);
        expect(sawCrashLoop).toBeDefined();
      },
      { timeout: 90_000, interval: 40 },
    );
    const gapsMs = starts.slice(1).map((t, i) => t - starts[i]!);
    // The delays the agent chose, from its log: 1, 2, 4 s, then 4 s (the cap), never doubled again.
    const delaysMs = agent!
      .output()
      .split('\n')
      .filter((line) => line.includes(service) && line.includes('its restart policy starts it again'))
      .map((line) => (JSON.parse(line) as { restartInMs: number }).restartInMs);
    console.log(`restart delays chosen (ms): ${JSON.stringify(delaysMs)}; gaps between starts (ms, the engine's StartedAt): ${JSON.stringify(gapsMs)}`);
    expect(delaysMs.slice(0, 6)).toEqual([1000, 2000, 4000, 4000, 4000, 4000]);
    // A gap is the delay plus the time the agent takes to see the exit and the engine to start the
    // container (a second or more on a busy engine): never shorter than the delay.
    delaysMs.slice(0, 6).forEach((delayMs, i) => expect(gapsMs[i]).toBeGreaterThanOrEqual(delayMs - 20));

    expect(sawCrashLoop!.error).toBe('exited with code 1');
    expect(sawCrashLoop!.crashLoop).toMatchObject({ lastExitCode: 1 });
    expect(sawCrashLoop!.crashLoop.restarts).toBeGreaterThanOrEqual(3);
    expect(sawCrashLoop!.crashLoop.outputTail).toContain('boom');
    expect(Date.parse(sawCrashLoop!.crashLoop.nextRestartAt as string)).toBeGreaterThan(Date.now() - 60_000);
    expect((await api('DELETE', `/v1/services/${service}`)).status).toBe(200);
  }, 120_000);

  it.each([
    ['on-failure', 'a container that exits 0', 0, 'stopped'],
    ['never', 'a container that exits 1', 1, 'failed'],
  ])('under %s leaves %s stopped', async (policy, _what, exitCode, state) => {
    const service = `${prefix}-${policy}`;
    const spec = { image: IMAGE, command: ['sh', '-c', `echo done; exit ${exitCode}`], replicas: 1, restart: { policy, backoff: { initial: '300ms' } } };
    expect((await api('PUT', `/v1/services/${service}`, spec)).status).toBe(201);
    const c = await containerOf(service);
    await vi.waitFor(async () => expect((await replicaOf(service))?.state).toBe(state), { timeout: 30_000, interval: 100 });
    const startedAt = (await docker.inspectContainer(c.Id)).State.StartedAt;
    await sleep(2000); // several times the first delay: a restart would have come
    expect((await docker.inspectContainer(c.Id)).State.StartedAt).toBe(startedAt);
    const [listed] = await docker.listContainers([`io.tether.node-id=${nodeId}`, `io.tether.service=${service}`]);
    expect(listed?.State).toBe('exited');
    const error = policy === 'never' ? 'exited with code 1; not restarted: its restart policy is "never"' : null;
    await vi.waitFor(async () => expect(await replicaOf(service)).toMatchObject({ state, restarts: 0, crashLoop: null, error }), {
      timeout: 10_000,
      interval: 100,
    });
    expect((await api('DELETE', `/v1/services/${service}`)).status).toBe(200);
  }, 60_000);
});
