/**
 * The routes of a node's identity: removal (DELETE /v1/nodes/:id) and credential rotation
 * (POST /v1/nodes/:id/rotate-credential), their refusals, and that a removal survives a restart.
 */
import { describe, expect, it } from 'vitest';
import { apiHubPerTest } from '../helpers/api-hub.js';

const TOKEN = 'tat_node_identity_test_token';
const api = apiHubPerTest('tether-node-identity-', TOKEN);
const call = api.call.bind(api);

async function join(name: string): Promise<string> {
  const { token } = await api.hub.nodes.createJoinToken(120);
  return (await api.hub.nodes.join(token, name, {}))!.nodeId;
}

describe('DELETE /v1/nodes/:id', () => {
  it('removes the node durably: gone after a restart, its name free again; 404 once gone and for an unknown id', async () => {
    const id = await join('edge-1');
    const removed = await call('DELETE', `/v1/nodes/${id}`);
    expect(removed.statusCode).toBe(200);
    expect(removed.json()).toMatchObject({ removed: { id, name: 'edge-1' }, replicas: [], message: expect.stringMatching(/removed/) });
    expect((await call('GET', `/v1/nodes/${id}`)).statusCode).toBe(404);
    const again = await call('DELETE', `/v1/nodes/${id}`);
    expect(again.statusCode).toBe(404);
    expect(again.json().error.code).toBe('node_not_found');
    expect((await call('DELETE', '/v1/nodes/no-such-node')).statusCode).toBe(404);

    await api.restart();
    expect((await call('GET', `/v1/nodes/${id}`)).statusCode).toBe(404);
    expect((await call('GET', '/v1/nodes')).json().nodes).toEqual([]);
    await join('edge-1');
  });

  it('needs the admin token', async () => {
    const id = await join('edge-2');
    const res = await api.app.inject({ method: 'DELETE', url: `/v1/nodes/${id}` });
    expect(res.statusCode).toBe(401);
    expect((await call('GET', `/v1/nodes/${id}`)).statusCode).toBe(200);
  });
});

describe('POST /v1/nodes/:id/rotate-credential', () => {
  it('404 for an unknown node, 409 for one not connected, 400 for a body with parameters; the credential stays', async () => {
    expect((await call('POST', '/v1/nodes/no-such-node/rotate-credential')).statusCode).toBe(404);
    const id = await join('edge-3');
    const digest = api.hub.store.getNode(id)!.credentialHash;
    const away = await call('POST', `/v1/nodes/${id}/rotate-credential`, {});
    expect(away.statusCode).toBe(409);
    expect(away.json().error).toMatchObject({ code: 'node_not_connected', message: expect.stringMatching(/not connected/) });
    expect((await call('POST', `/v1/nodes/${id}/rotate-credential`, { ttl: '1h' })).statusCode).toBe(400);
    expect(api.hub.store.getNode(id)!.credentialHash).toBe(digest);
  });
});
