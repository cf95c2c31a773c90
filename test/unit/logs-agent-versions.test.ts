/**
 * The hub's side of log streams over real sockets with devices that speak the protocol by hand:
 * an agent older than protocol 8 is never asked (its replica gets a line saying so) and may not
 * send log frames; a node is asked for its own replicas only, and cannot answer for another's.
 */
import { afterEach, describe, expect, it, vi } from 'vitest';
import type { LogsOpenFrame } from '../../shared/protocol.js';
import { RawDevice } from '../helpers/raw-device.js';
import { ADMIN_TOKEN, SimFleet } from '../helpers/sim-fleet.js';

let fleet: SimFleet;
const devices: RawDevice[] = [];
afterEach(async () => {
  for (const d of devices.splice(0)) d.close();
  await fleet?.close();
});

async function device(name: string, protocolVersion: number): Promise<{ d: RawDevice; opens: LogsOpenFrame[] }> {
  const d = await RawDevice.connect(fleet, name, { protocolVersion });
  devices.push(d);
  const opens: LogsOpenFrame[] = [];
  d.ws.on('message', (data) => {
    const frame = JSON.parse(data.toString()) as { type: string };
    if (frame.type === 'logs.open') opens.push(frame as LogsOpenFrame);
  });
  return { d, opens };
}

async function placedOn(service: string, replicas: number): Promise<Array<{ replicaId: string; nodeId: string }>> {
  let placed: Array<{ replicaId: string; nodeId: string }> = [];
  await vi.waitFor(async () => {
    const { body } = await fleet.api('GET', `/v1/services/${service}`);
    placed = body.status.replicas.filter((r: { nodeId: string | null }) => r.nodeId !== null);
    expect(placed).toHaveLength(replicas);
  });
  return placed;
}

const logs = (service: string, query = '') => fetch(`${fleet.url}/v1/services/${service}/logs?${query}`, { headers: { authorization: `Bearer ${ADMIN_TOKEN}` } });

describe('log streams and agent versions', () => {
  it('answers a line for a replica on an agent older than protocol 8, and closes such an agent sending log frames', async () => {
    fleet = await SimFleet.start();
    const old = await device('old', 7);
    expect((await fleet.api('PUT', '/v1/services/web', { image: 'busybox:1', replicas: 1 })).status).toBe(201);
    const [replica] = await placedOn('web', 1);
    const res = await logs('web', 'follow=1');
    expect(res.status).toBe(200);
    expect((await res.text()).trim().split('\n').map((l) => JSON.parse(l))).toEqual([
      { replica: replica!.replicaId, node: old.d.nodeId, error: 'agent too old for logs (protocol < 8)' },
    ]);
    expect(old.opens).toEqual([]);
    old.d.send({ type: 'logs.end', stream: 'whatever' });
    expect(await old.d.closedWith).toEqual({ code: 4000, reason: 'logs.end frames are not part of protocol version 7' });
  });

  it("asks each node for its own replicas only, and relays nothing a node sends for another's stream", async () => {
    fleet = await SimFleet.start();
    const a = await device('a', 8);
    const b = await device('b', 8);
    await fleet.api('PUT', '/v1/services/web', { image: 'busybox:1', replicas: 2, });
    const placed = await placedOn('web', 2);
    const res = await logs('web', 'follow=1&tail=5');
    await vi.waitFor(() => expect(a.opens.length + b.opens.length).toBe(2));
    for (const { d, opens } of [a, b]) {
      expect(opens.map((o) => o.replicaId)).toEqual(placed.filter((p) => p.nodeId === d.nodeId).map((p) => p.replicaId));
    }
    const streamOfA = a.opens[0]!.stream;
    // Node b answers for a's stream: nothing of it reaches the client. Then a answers, and ends.
    b.d.send({ type: 'logs.chunk', stream: streamOfA, lines: [{ stream: 'stdout', line: 'forged' }] });
    a.d.send({ type: 'logs.chunk', stream: streamOfA, lines: [{ stream: 'stdout', line: 'from a' }] });
    a.d.send({ type: 'logs.end', stream: streamOfA });
    b.d.send({ type: 'logs.error', stream: b.opens[0]!.stream, message: 'no container here' });
    const lines = (await res.text()).trim().split('\n').map((l) => JSON.parse(l));
    // Interleaved as they come: two sockets, no order between them.
    expect(lines).toHaveLength(2);
    expect(lines).toEqual(expect.arrayContaining([
      { replica: a.opens[0]!.replicaId, node: a.d.nodeId, stream: 'stdout', line: 'from a' },
      { replica: b.opens[0]!.replicaId, node: b.d.nodeId, error: 'no container here' },
    ]));
  });

  it('answers 429 for more streams on one node than it serves at once, naming ?replica=', async () => {
    fleet = await SimFleet.start();
    const one = await device('one', 8);
    await fleet.api('PUT', '/v1/services/many', { image: 'busybox:1', replicas: 9 });
    const placed = await placedOn('many', 9);
    const res = await logs('many', 'follow=1');
    expect(res.status).toBe(429);
    expect((await res.json()).error).toEqual({ code: 'too_many_log_streams', message: expect.stringMatching(/serves 8 log streams at once.*\?replica=/) });
    expect(one.opens).toEqual([]);
    // One replica is fine.
    const single = await logs('many', `replica=${placed[0]!.replicaId}`);
    await vi.waitFor(() => expect(one.opens).toHaveLength(1));
    one.d.send({ type: 'logs.end', stream: one.opens[0]!.stream });
    expect(single.status).toBe(200);
    expect(await single.text()).toBe('');
  });

  it('ends a followed replica with a line when its node disconnects, and says so of a node away before the request', async () => {
    fleet = await SimFleet.start();
    const a = await device('a', 8);
    await fleet.api('PUT', '/v1/services/web', { image: 'busybox:1', replicas: 1 });
    const [replica] = await placedOn('web', 1);
    const res = await logs('web', 'follow=1');
    await vi.waitFor(() => expect(a.opens).toHaveLength(1));
    a.d.close();
    const lines = (await res.text()).trim().split('\n').map((l) => JSON.parse(l));
    expect(lines).toEqual([{ replica: replica!.replicaId, node: a.d.nodeId, error: `the connection to node ${a.d.nodeId} ended` }]);
    const later = await logs('web');
    expect(await later.json()).toEqual({ replica: replica!.replicaId, node: a.d.nodeId, error: `node ${a.d.nodeId} is not connected` });
  });
});
