/**
 * POST /v1/services/:name/replicas/:id/move: an operator moves one replica on purpose, onto the
 * node asked for or any other that can take it. The data of its volumes does not move (the
 * response says so); a node that cannot take it is a 409 saying why; unknown names are 404s.
 */
import { afterEach, describe, expect, it, vi } from 'vitest';
import { SimFleet } from '../helpers/sim-fleet.js';

let fleet: SimFleet;
afterEach(async () => {
  await fleet?.close();
});

const image = 'tether-test/busybox:1';
const until = <T>(fn: () => Promise<T> | T, timeout = 15_000) => vi.waitFor(fn, { timeout, interval: 25 });
const spec = { image, replicas: 1, volumes: [{ name: 'data', target: '/data' }] };

interface Replica {
  replicaId: string;
  nodeId: string | null;
  state: string;
}
const replicas = async (name: string) => (await fleet.api<{ status: { replicas: Replica[] } }>('GET', `/v1/services/${name}?limit=1000`)).body.status.replicas;

function nodeIdOf(name: string): string {
  for (const n of fleet.hub.nodes.list()) if (n.name === name) return n.id;
  throw new Error(`no node ${name}`);
}

/** Three nodes and a one-replica service with a volume, running; the replica. */
async function running(): Promise<Replica> {
  fleet = await SimFleet.start();
  for (const name of ['n1', 'n2', 'n3']) await fleet.addAgent({ name });
  expect((await fleet.api('PUT', '/v1/services/db', spec)).status).toBe(201);
  let replica: Replica | undefined;
  await until(async () => {
    replica = (await replicas('db')).find((r) => r.state === 'running');
    expect(replica).toBeDefined();
  });
  return replica!;
}

const runningContainersOf = (service: string) => fleet.runtime.containers().filter((c) => c.service === service && c.state === 'running');

describe('moving a replica', () => {
  it('moves it to the node asked for, says its data stays, and stops the old one once the new one runs', async () => {
    const replica = await running();
    const to = ['n1', 'n2', 'n3'].map(nodeIdOf).find((id) => id !== replica.nodeId)!;
    const res = await fleet.api('POST', `/v1/services/db/replicas/${replica.replicaId}/move`, { toNode: to });
    expect(res.status).toBe(202);
    expect(res.body).toMatchObject({ service: 'db', replicaId: replica.replicaId, fromNode: replica.nodeId, toNode: to, dataMoved: false, volumesLeftOn: replica.nodeId });
    expect(res.body.message).toMatch(/data \(data\) does not move/);
    await until(() => {
      const now = runningContainersOf('db');
      expect(now.map((c) => [c.nodeId, c.replicaId])).toEqual([[to, res.body.replacement]]);
    });
    // Settled: the move is not undone by a later pass.
    expect((await replicas('db')).map((r) => r.nodeId)).toEqual([to]);
  });

  it('picks another node that can take it when none is named, never the one it leaves', async () => {
    const replica = await running();
    const res = await fleet.api('POST', `/v1/services/db/replicas/${replica.replicaId}/move`);
    expect(res.status).toBe(202);
    expect(res.body).toMatchObject({ fromNode: replica.nodeId, toNode: null, dataMoved: false });
    await until(() => {
      const now = runningContainersOf('db');
      expect(now).toHaveLength(1);
      expect(now[0]!.replicaId).toBe(res.body.replacement);
      expect(now[0]!.nodeId).not.toBe(replica.nodeId);
    });
  });

  it('refuses with a 409 saying why when the node cannot take it, and changes nothing', async () => {
    const replica = await running();
    const others = ['n1', 'n2', 'n3'].map(nodeIdOf).filter((id) => id !== replica.nodeId);
    expect((await fleet.api('POST', `/v1/nodes/${others[0]}/cordon`)).status).toBe(200);
    const cordoned = await fleet.api('POST', `/v1/services/db/replicas/${replica.replicaId}/move`, { toNode: others[0] });
    expect(cordoned.status).toBe(409);
    expect(cordoned.body.error).toMatchObject({ code: 'move_refused', message: expect.stringMatching(/cordoned/) });
    const same = await fleet.api('POST', `/v1/services/db/replicas/${replica.replicaId}/move`, { toNode: replica.nodeId });
    expect(same.status).toBe(409);
    expect(same.body.error.message).toMatch(/already on node/);
    const unknown = await fleet.api('POST', `/v1/services/db/replicas/${replica.replicaId}/move`, { toNode: 'no-such-node' });
    expect(unknown.status).toBe(409);
    expect(unknown.body.error.message).toMatch(/no node with id "no-such-node"/);
    // With the last other node cordoned too, no node can take it.
    expect((await fleet.api('POST', `/v1/nodes/${others[1]}/cordon`)).status).toBe(200);
    const none = await fleet.api('POST', `/v1/services/db/replicas/${replica.replicaId}/move`);
    expect(none.status).toBe(409);
    expect(none.body.error.message).toMatch(/no other node can take replica/);
    expect(await replicas('db')).toEqual([expect.objectContaining({ replicaId: replica.replicaId, nodeId: replica.nodeId })]);
    const bad = await fleet.api('POST', `/v1/services/db/replicas/${replica.replicaId}/move`, { toNode: 7 });
    expect(bad.status).toBe(400);
  });

  it('answers 404 for an unknown service or replica', async () => {
    await running();
    const noService = await fleet.api('POST', '/v1/services/nope/replicas/nope.0000000000/move');
    expect(noService.status).toBe(404);
    expect(noService.body.error.code).toBe('service_not_found');
    const noReplica = await fleet.api('POST', '/v1/services/db/replicas/db.0000000000/move');
    expect(noReplica.status).toBe(404);
    expect(noReplica.body.error.code).toBe('replica_not_found');
  });
});
