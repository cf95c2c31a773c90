/**
 * A reconcile pass that plans on a service write still in flight, which then fails: the refused
 * scale must leave nothing behind, neither replicas it added (in the dispatcher's index, so in the
 * agents' targets) nor the loss of the observed states of replicas it would have removed.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import { afterEach, expect, it, vi } from 'vitest';
import { SimFleet } from '../helpers/sim-fleet.js';

let fleet: SimFleet | undefined;
const faults = { delayThenFail: false };
afterEach(async () => {
  faults.delayThenFail = false;
  await fleet?.close();
});

const spec = { image: 'tether-test/busybox:1', command: ['/bin/httpd', '-f', '-p', '8080'] };

for (const [from, to] of [[2, 4], [4, 1]] as const) {
  it(`a refused scale ${from} -> ${to}, planned on by a reconcile pass while its write was in flight, leaves nothing behind`, async () => {
    const f = (fleet = await SimFleet.start({}, {
      beforeWrite: (file) => {
        if (faults.delayThenFail && file.includes('services-')) {
          return sleep(200).then(() => {
            throw Object.assign(new Error('ENOSPC: simulated'), { code: 'ENOSPC' });
          });
        }
      },
    }));
    await f.addAgent();
    await f.addAgent();
    expect((await f.api('PUT', '/v1/services/web', { ...spec, replicas: from })).status).toBe(201);
    const running = async () => (await f.api('GET', '/v1/services/web')).body.status.running;
    await vi.waitFor(async () => expect(await running()).toBe(from), { timeout: 10_000 });

    faults.delayThenFail = true;
    const refused = f.api('PUT', '/v1/services/web', { ...spec, replicas: to });
    // Another writer acts while the write is in flight: a reconcile pass (a hello, a report, the resync timer).
    await sleep(50);
    f.hub.loop.markDirty();
    expect((await refused).status).toBe(507);
    faults.delayThenFail = false;

    await sleep(3000);
    const containers = f.runtime.containers().filter((c) => c.service === 'web' && c.state === 'running');
    expect(containers).toHaveLength(from);
    expect(await running()).toBe(from);
  }, 30_000);
}

it('an API change queued behind a refused placement write is refused too, and no container of it runs', async () => {
  let armed = false;
  const f = (fleet = await SimFleet.start({}, {
    beforeWrite: (file) => {
      if (armed && file.includes('services-')) {
        armed = false;
        return sleep(300).then(() => {
          throw Object.assign(new Error('ENOSPC: simulated'), { code: 'ENOSPC' });
        });
      }
    },
  }));
  await f.addAgent();
  await f.addAgent();
  expect((await f.api('PUT', '/v1/services/web', { ...spec, replicas: 2 })).status).toBe(201);
  const view = async () => (await f.api('GET', '/v1/services/web')).body;
  await vi.waitFor(async () => expect((await view()).status.running).toBe(2), { timeout: 10_000 });
  // The scale's own write lands; the next services write is the pass placing the new replica,
  // which is held, then fails.
  expect((await f.api('PUT', '/v1/services/web', { ...spec, replicas: 3 })).status).toBe(200);
  armed = true;
  await sleep(100);
  // While that write is in flight, a new image: built on the unsaved placements, so refused with them.
  const changed = await f.api('PUT', '/v1/services/web', { ...spec, image: 'tether-test/busybox:2', replicas: 3 });
  expect(changed.status).toBe(507);
  expect((await view()).spec.image).toBe('tether-test/busybox:1');
  // The hub plans the third replica again on the old image; nothing of the refused image runs.
  await vi.waitFor(async () => expect((await view()).status.running).toBe(3), { timeout: 10_000 });
  await sleep(500);
  const images = f.runtime.containers().filter((c) => c.service === 'web').map((c) => c.image);
  expect(images).toHaveLength(3);
  expect(images.every((image) => image === 'tether-test/busybox:1')).toBe(true);
});
