/**
 * DELETE /v1/services/:name keeps the service's volumes and says so; ?purgeVolumes=true asks every
 * node to remove them (durably: it is in the node records, so a node away does it when it returns).
 */
import { describe, expect, it } from 'vitest';
import { apiHubPerTest } from '../helpers/api-hub.js';

const TOKEN = 'tat_delete_volumes_test_token';
const api = apiHubPerTest('tether-delete-volumes-', TOKEN);
const call = api.call.bind(api);

async function join(name: string): Promise<string> {
  const token = (await call('POST', '/v1/join-tokens', { ttlSeconds: 120 })).json().token as string;
  return (await call('POST', '/v1/join', { joinToken: token, name, labels: {} })).json().nodeId as string;
}

const withVolumes = { image: 'busybox:1', replicas: 1, volumes: [{ name: 'data', target: '/data' }, { name: 'cache', target: '/cache' }] };

describe('deleting a service with volumes', () => {
  it('keeps the volumes on a plain delete and says so', async () => {
    const n1 = await join('n1');
    expect((await call('PUT', '/v1/services/db', withVolumes)).statusCode).toBe(201);
    const res = await call('DELETE', '/v1/services/db');
    expect(res.statusCode).toBe(200);
    expect(res.json()).toMatchObject({ name: 'db', deleted: true, volumesKept: ['cache', 'data'], volumesPurged: [] });
    expect(res.json().message).toMatch(/kept/);
    expect(api.hub.store.getNode(n1)?.volumePurges).toBeUndefined();
  });

  it('asks every node, durably, to remove them with ?purgeVolumes=true', async () => {
    const n1 = await join('n1');
    const n2 = await join('n2');
    expect((await call('PUT', '/v1/services/db', withVolumes)).statusCode).toBe(201);
    const res = await call('DELETE', '/v1/services/db?purgeVolumes=true');
    expect(res.statusCode).toBe(200);
    expect(res.json()).toMatchObject({ deleted: true, volumesKept: [], volumesPurged: ['cache', 'data'] });
    expect(res.json().message).toMatch(/removed from every node/);
    // Neither node is connected: the instruction waits in their records, across a restart.
    await api.restart();
    expect(api.hub.store.getNode(n1)?.volumePurges).toEqual(['db']);
    expect(api.hub.store.getNode(n2)?.volumePurges).toEqual(['db']);
    expect(api.hub.dispatcher.targetOf(n1).purgeVolumes).toEqual(['db']);
  });

  it('calls the purge off where it is pending when a service of that name is created again', async () => {
    const n1 = await join('n1');
    expect((await call('PUT', '/v1/services/db', withVolumes)).statusCode).toBe(201);
    expect((await call('DELETE', '/v1/services/db?purgeVolumes=true')).statusCode).toBe(200);
    expect((await call('PUT', '/v1/services/db', withVolumes)).statusCode).toBe(201);
    expect(api.hub.store.getNode(n1)?.volumePurges).toBeUndefined();
    expect(api.hub.dispatcher.targetOf(n1).purgeVolumes).toEqual([]);
  });

  it('answers as before for a service without volumes, and refuses a purgeVolumes that is not a boolean', async () => {
    expect((await call('PUT', '/v1/services/web', { image: 'busybox:1', replicas: 1 })).statusCode).toBe(201);
    const bad = await call('DELETE', '/v1/services/web?purgeVolumes=yes');
    expect(bad.statusCode).toBe(400);
    expect(bad.json().error.details).toEqual([expect.objectContaining({ path: 'purgeVolumes' })]);
    expect((await call('GET', '/v1/services/web')).statusCode).toBe(200);
    const res = await call('DELETE', '/v1/services/web?purgeVolumes=true');
    expect(res.json()).toEqual({ name: 'web', deleted: true });
    expect((await call('DELETE', '/v1/services/web')).statusCode).toBe(404);
  });
});
