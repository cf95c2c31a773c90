/**
 * Image retention on a node (real hub and agent, simulated engine): the images of the revision
 * the replicas run and of the one before stay, so that a rollback needs no download; older images
 * the agent pulled go once no container uses them; an image the agent did not pull (loaded onto
 * the device by its operator) stays whatever happens.
 */
import { afterEach, expect, it, vi } from 'vitest';
import { SimulatedRuntime } from '../../agent/runtime/simulated-runtime.js';
import { SimFleet } from '../helpers/sim-fleet.js';

let fleet: SimFleet;
afterEach(async () => {
  await fleet?.close();
});

const command = ['/bin/httpd', '-f', '-p', '8080'];
const update = { parallelism: 2, monitor: '0s' };
const until = (fn: () => unknown) => vi.waitFor(fn, { timeout: 10_000, interval: 25 });
/** Time for the agent's pass to end, its image sweep included, after the replicas converged. */
const settle = () => new Promise((r) => setTimeout(r, 300));

async function deploy(image: string): Promise<void> {
  const res = await fleet.api('PUT', '/v1/services/web', { image, command, replicas: 2, update });
  expect(res.status).toBeLessThan(300);
}

function runningImages(runtime: SimulatedRuntime): string[] {
  return runtime
    .containers()
    .filter((c) => c.service === 'web' && c.state === 'running')
    .map((c) => c.image);
}

async function rolledOutTo(runtime: SimulatedRuntime, image: string): Promise<void> {
  await until(async () => {
    expect(runningImages(runtime)).toEqual([image, image]);
    expect(runtime.containers().filter((c) => c.service === 'web')).toHaveLength(2);
    const rollout = (await fleet.api<{ rollout: { state: string } | null }>('GET', '/v1/services/web')).body.rollout;
    if (rollout) expect(['completed', 'rolled-back']).toContain(rollout.state);
  });
}

it('keeps the current and the previous revision images, removes older ones it pulled, and rolls back without a download', async () => {
  fleet = await SimFleet.start();
  const runtime = new SimulatedRuntime({ images: [] });
  await fleet.addAgent({ runtime });
  const [v1, v2, v3] = ['127.0.0.1:5000/app:1', '127.0.0.1:5000/app:2', '127.0.0.1:5000/app:3'];

  await deploy(v1);
  await rolledOutTo(runtime, v1);
  await deploy(v2);
  await rolledOutTo(runtime, v2);
  // v1 is the previous revision: kept (given the agent time for the sweep that follows its pass).
  await settle();
  expect(runtime.hasImageNow(v1)).toBe(true);

  await deploy(v3);
  await rolledOutTo(runtime, v3);
  // v2 is now the previous revision; v1 is older, unused, and was pulled by the agent: removed.
  await until(() => expect(runtime.hasImageNow(v1)).toBe(false));
  expect(runtime.hasImageNow(v2)).toBe(true);
  expect(runtime.hasImageNow(v3)).toBe(true);
  expect(runtime.calls.pullImage).toBe(3);

  // Back to the previous revision: its image is there, nothing is downloaded.
  expect((await fleet.api('POST', '/v1/services/web/rollback')).status).toBeLessThan(300);
  await rolledOutTo(runtime, v2);
  expect(runtime.calls.pullImage).toBe(3);
  // The rolled-back-from v3 is now the previous one, and stays.
  await settle();
  expect(runtime.hasImageNow(v3)).toBe(true);

  // A deleted service's images go once its containers have.
  expect((await fleet.api('DELETE', '/v1/services/web')).status).toBeLessThan(300);
  await until(() => {
    expect(runtime.containers().filter((c) => c.service === 'web')).toHaveLength(0);
    expect(runtime.hasImageNow(v2)).toBe(false);
    expect(runtime.hasImageNow(v3)).toBe(false);
  });
});

it('never removes an image the agent did not pull itself', async () => {
  fleet = await SimFleet.start();
  const loaded = ['tether-test/busybox:1', 'tether-test/busybox:2'];
  const runtime = new SimulatedRuntime({ images: [...loaded] });
  await fleet.addAgent({ runtime });
  const pulled = '127.0.0.1:5000/app:9';

  await deploy(loaded[0]!);
  await rolledOutTo(runtime, loaded[0]!);
  await deploy(loaded[1]!);
  await rolledOutTo(runtime, loaded[1]!);
  await deploy(pulled);
  await rolledOutTo(runtime, pulled);
  expect((await fleet.api('DELETE', '/v1/services/web')).status).toBeLessThan(300);
  await until(() => {
    expect(runtime.containers()).toHaveLength(0);
    // The pulled one goes; what the operator loaded stays, though nothing uses it.
    expect(runtime.hasImageNow(pulled)).toBe(false);
  });
  for (const image of loaded) expect(runtime.hasImageNow(image)).toBe(true);
  expect(runtime.calls.removeImage).toBeGreaterThan(0);
});

