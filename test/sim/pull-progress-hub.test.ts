/**
 * Pull progress at the hub (protocol version 5): what an agent reports of the pull of a replica's
 * new image shows under that replica in the service view, and goes once the pull is over; an
 * older agent that reports it breaks its protocol. Devices speak the protocol by hand.
 */
import WebSocket from 'ws';
import { afterEach, expect, it, vi } from 'vitest';
import { CloseCode, type ReplicaReport } from '../../shared/protocol.js';
import { rawDevices } from '../helpers/raw-device.js';
import { SimFleet } from '../helpers/sim-fleet.js';

let fleet: SimFleet;
const devices = rawDevices(() => fleet);
afterEach(async () => {
  devices.closeAll();
  await fleet?.close();
});

interface Replica {
  state: string;
  pull: { bytesDone: number; bytesTotal: number | null; layersDone: number; layersTotal: number; percent: number | null } | null;
}
const replicaView = async (name: string) => (await fleet.api<{ status: { replicas: Replica[] } }>('GET', `/v1/services/${name}`)).body.status.replicas[0];
const until = <T>(fn: () => Promise<T> | T) => vi.waitFor(fn, { timeout: 10_000, interval: 25 });
const image = 'tether-test/busybox:1';

it('shows the pull of a replica image under the replica, with its share done, until the pull is over', async () => {
  fleet = await SimFleet.start();
  const device = await devices.connect('d1', 5);
  await fleet.api('PUT', '/v1/services/web', { image, replicas: 1 });
  await until(() => expect(device.lastTarget?.replicas).toHaveLength(1));
  const r = device.lastTarget!.replicas[0]!;
  const report = (over: Partial<ReplicaReport>): ReplicaReport => ({
    replicaId: r.replicaId,
    service: r.service,
    state: 'pending',
    specHash: r.specHash,
    containerId: null,
    error: null,
    restarts: 0,
    ...over,
  });
  expect((await replicaView('web'))?.pull).toBeNull();
  device.send({ type: 'status', replicas: [report({ pull: { bytesDone: 1000, bytesTotal: null, layersDone: 1, layersTotal: 3 } })] });
  // Sizes not all known yet: no share.
  await until(async () => expect((await replicaView('web'))?.pull).toEqual({ bytesDone: 1000, bytesTotal: null, layersDone: 1, layersTotal: 3, percent: null }));
  device.send({ type: 'status', replicas: [report({ pull: { bytesDone: 3000, bytesTotal: 8000, layersDone: 1, layersTotal: 3 } })] });
  await until(async () => expect((await replicaView('web'))?.pull).toEqual({ bytesDone: 3000, bytesTotal: 8000, layersDone: 1, layersTotal: 3, percent: 37 }));
  // A device that says more is done than there is: shown as all of it, never past.
  device.send({ type: 'status', replicas: [report({ pull: { bytesDone: 9000, bytesTotal: 8000, layersDone: 5, layersTotal: 3 } })] });
  await until(async () => expect((await replicaView('web'))?.pull).toEqual({ bytesDone: 8000, bytesTotal: 8000, layersDone: 3, layersTotal: 3, percent: 100 }));
  expect((await replicaView('web'))?.state).toBe('pending');
  device.run();
  await until(async () => expect(await replicaView('web')).toMatchObject({ state: 'running', pull: null }));
});

it.each([
  ['a version 5 session whose pull progress is out of bounds', 5, { bytesDone: 1, bytesTotal: 2, layersDone: 0, layersTotal: 100_000 }, null],
  ['a version 4 session that reports pull progress', 4, { bytesDone: 1, bytesTotal: 2, layersDone: 0, layersTotal: 1 }, 'pull progress is not part of protocol version 4'],
] as const)('closes %s with badFrame, and only that one', async (_what, version, pull, reason) => {
  fleet = await SimFleet.start();
  const bystander = await devices.connect('bystander', version);
  const liar = await devices.connect('liar', version);
  const replica: ReplicaReport = { replicaId: 'web-x', service: 'web', state: 'pending', specHash: '0123456789abcdef', containerId: null, error: null, restarts: 0, pull };
  liar.send({ type: 'status', replicas: [replica] });
  const closed = await liar.closedWith;
  expect(closed.code).toBe(CloseCode.badFrame);
  if (reason !== null) expect(closed.reason).toBe(reason);
  expect(bystander.ws.readyState).toBe(WebSocket.OPEN);
});
