/**
 * A rollback and a scale as agents see them: what runs on the (simulated) engines afterwards, not
 * only what the hub stores.
 */
import { afterEach, beforeEach, expect, it, vi } from 'vitest';
import { SimFleet } from '../helpers/sim-fleet.js';

const command = ['/bin/httpd', '-f', '-p', '8080'];
/** Every replica at once: this test is about what a rollback restores, not about its batches. */
const update = { parallelism: 5, monitor: '0s' };

let fleet: SimFleet;
beforeEach(async () => {
  fleet = await SimFleet.start();
});
afterEach(async () => {
  await fleet.close();
});

/** The images of the service's running containers, sorted. */
const runningImages = (service: string) =>
  fleet.runtime
    .containers()
    .filter((c) => c.service === service && c.state === 'running')
    .map((c) => c.image)
    .sort();

/** Waits until exactly `images` run for the service, and the hub's view agrees. */
async function waitRunning(service: string, images: string[]): Promise<void> {
  await vi.waitFor(
    async () => {
      expect(runningImages(service)).toEqual(images);
      const view = await fleet.api('GET', `/v1/services/${service}`);
      expect(view.body.status.running).toBe(images.length);
      expect(view.body.status.replicas).toHaveLength(images.length);
    },
    { timeout: 10_000, interval: 50 },
  );
}

it('a rollback brings back the old image on the agents, a scale only the count', async () => {
  await Promise.all([fleet.addAgent(), fleet.addAgent()]);
  const v1 = 'tether-test/busybox:1';
  const v2 = 'tether-test/busybox:2';
  expect((await fleet.api('PUT', '/v1/services/web', { image: v1, command, replicas: 3, update })).status).toBe(201);
  await waitRunning('web', [v1, v1, v1]);
  expect((await fleet.api('PUT', '/v1/services/web', { image: v2, command, replicas: 3, update })).body).toMatchObject({ revision: 2 });
  await waitRunning('web', [v2, v2, v2]);

  const rolled = await fleet.api('POST', '/v1/services/web/rollback');
  expect(rolled.status).toBe(200);
  expect(rolled.body).toMatchObject({ outcome: 'rolled-back', revision: 3, rolledBackTo: 1 });
  await waitRunning('web', [v1, v1, v1]);

  // Scaling keeps what runs and adds to it.
  const running = new Set(fleet.runtime.containers().filter((c) => c.state === 'running').map((c) => c.id));
  expect((await fleet.api('POST', '/v1/services/web/scale', { replicas: 5 })).body).toMatchObject({ outcome: 'updated', revision: 4 });
  await waitRunning('web', [v1, v1, v1, v1, v1]);
  const after = fleet.runtime.containers().filter((c) => c.state === 'running').map((c) => c.id);
  expect(after.filter((id) => running.has(id))).toHaveLength(3);
});
