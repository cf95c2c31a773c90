import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { StoreWriteError } from '../../hub/store/store-write-error.js';
import { SimFleet } from '../helpers/sim-fleet.js';

const busybox = { image: 'tether-test/busybox:1', command: ['/bin/httpd', '-f', '-p', '8080'] };

let fleet: SimFleet;
beforeEach(async () => {
  fleet = await SimFleet.start();
});
afterEach(async () => {
  await fleet.close();
});

describe('a delete the store cannot write', () => {
  it('leaves the service running and its replicas shown running, and a retry deletes it', async () => {
    await fleet.addAgent();
    await fleet.addAgent();
    expect((await fleet.api('PUT', '/v1/services/web', { ...busybox, replicas: 2 })).status).toBe(201);
    await vi.waitFor(async () => expect((await fleet.api('GET', '/v1/services/web')).body.status.running).toBe(2), { timeout: 10_000, interval: 50 });

    const store = fleet.hub.store;
    const realDelete = store.deleteService.bind(store);
    // The write of the delete fails (as on a full disk): the store keeps the record.
    store.deleteService = () => Promise.reject(new StoreWriteError('services-00.json', Object.assign(new Error('no space'), { code: 'ENOSPC' })));
    expect((await fleet.api('DELETE', '/v1/services/web')).status).toBe(507);
    const view = (await fleet.api('GET', '/v1/services/web')).body;
    expect(view.status.running).toBe(2);
    expect(view.status.replicas.map((r: { state: string }) => r.state)).toEqual(['running', 'running']);

    store.deleteService = realDelete;
    expect((await fleet.api('DELETE', '/v1/services/web')).status).toBe(200);
    await vi.waitFor(() => expect(fleet.runtime.containers().filter((c) => c.state === 'running')).toHaveLength(0), { timeout: 10_000, interval: 50 });
  });
});
