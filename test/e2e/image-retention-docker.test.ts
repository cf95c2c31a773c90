/**
 * Image retention through a real hub and agent on the real engine: three releases of an image that
 * exists only in the registry. After two updates the node keeps the current and the previous
 * release and has removed the first; a rollback then needs no download; deleting the service
 * removes what the agent pulled for it.
 */
import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, expect, it, vi } from 'vitest';
import { describeDocker, docker } from '../helpers/docker.js';
import { startE2eFleet, type E2eFleet } from '../helpers/e2e-fleet.js';
import { makeRegistryOnlyImage, run } from '../helpers/made-image.js';

const BASE = '127.0.0.1:5000/busybox:1';
const tag = randomUUID().slice(0, 8);
/** Each release its own image (its own layer), so that removing one leaves the others whole. */
const releases = [1, 2, 3].map((n) => `127.0.0.1:5000/tether-retention-${tag}:${n}`);
const command = ['/bin/sleep', '3600'];

async function present(image: string): Promise<boolean> {
  try {
    await docker.inspectImage(image);
    return true;
  } catch {
    return false;
  }
}

describeDocker('image retention through the agent on the real engine', () => {
  let fleet: E2eFleet;

  beforeAll(async () => {
    // Only in the registry: the agent pulls each one itself.
    for (const [i, image] of releases.entries()) await makeRegistryOnlyImage(BASE, image, `echo ${i} > /release`);
    fleet = await startE2eFleet('retention', ['127.0.0.1']);
  }, 120_000);

  afterAll(async () => {
    await fleet?.close();
    await run('docker', ['rmi', ...releases]).catch(() => undefined);
  });

  const deploy = async (image: string) => {
    const res = await fleet.api('PUT', '/v1/services/kept', { image, command, replicas: 2, update: { parallelism: 2, monitor: '0s' } });
    expect(res.status).toBeLessThan(300);
  };
  const runs = (image: string) =>
    vi.waitFor(
      async () => {
        const view = (await fleet.api<{ status: { running: number }; rollout: { state: string } | null }>('GET', '/v1/services/kept')).body;
        expect(view.status.running).toBe(2);
        if (view.rollout) expect(['completed', 'rolled-back']).toContain(view.rollout.state);
        const containers = await docker.listContainers([`io.tether.node-id=${fleet.nodeIds[0]}`]);
        expect(containers.map((c) => [c.State, c.Labels['io.tether.image']])).toEqual([
          ['running', image],
          ['running', image],
        ]);
      },
      { timeout: 60_000, interval: 250 },
    );
  const pullsOf = (image: string) => fleet.agents[0]!.output().split('\n').filter((l) => l.includes('"pulled image"') && l.includes(image)).length;

  it('keeps the current and previous release, removes the older one, rolls back without a download', async () => {
    await deploy(releases[0]!);
    await runs(releases[0]!);
    await deploy(releases[1]!);
    await runs(releases[1]!);
    await deploy(releases[2]!);
    await runs(releases[2]!);
    // Removed once its 10 s grace is over (another agent on the engine might have been about to use it).
    await vi.waitFor(async () => expect(await present(releases[0]!)).toBe(false), { timeout: 40_000, interval: 250 });
    expect(await present(releases[1]!)).toBe(true);
    expect(await present(releases[2]!)).toBe(true);
    expect(pullsOf(releases[1]!)).toBe(1);

    expect((await fleet.api('POST', '/v1/services/kept/rollback')).status).toBeLessThan(300);
    await runs(releases[1]!);
    // Started from the kept image: no second pull of it.
    expect(pullsOf(releases[1]!)).toBe(1);

    expect((await fleet.api('DELETE', '/v1/services/kept')).status).toBeLessThan(300);
    await vi.waitFor(
      async () => {
        expect(await present(releases[1]!)).toBe(false);
        expect(await present(releases[2]!)).toBe(false);
      },
      { timeout: 40_000, interval: 250 },
    );
    // The base image the releases were made from was never the agent's to remove.
    expect(await present(BASE)).toBe(true);
  }, 180_000);
});
