/**
 * Health checks at the hub (protocol version 3): a container carrying a check only ever goes to an
 * agent that reads it, replicas elsewhere say why they wait, agents' health reports show in the
 * service view, and an older agent that reports health breaks its protocol. Devices speak the
 * protocol by hand, so that each test says exactly what a node of each version sees and says.
 */
import WebSocket from 'ws';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { CloseCode, type ReplicaReport, type TargetFrame } from '../../shared/protocol.js';
import { rawDevices } from '../helpers/raw-device.js';
import { SimFleet, helloFrame } from '../helpers/sim-fleet.js';

let fleet: SimFleet;
const devices = rawDevices(() => fleet);
afterEach(async () => {
  devices.closeAll();
  await fleet?.close();
});

const connectDevice = devices.connect;

interface Replica {
  replicaId: string;
  nodeId: string | null;
  state: string;
  error: string | null;
  nodeState: string | null;
  health: string | null;
  healthOutput: string | null;
}
interface Status {
  running: number;
  health: { healthy: number; unhealthy: number; starting: number };
  replicas: Replica[];
}

const status = async (name: string) => (await fleet.api<{ status: Status }>('GET', `/v1/services/${name}`)).body.status;
const until = <T>(fn: () => Promise<T> | T) => vi.waitFor(fn, { timeout: 10_000, interval: 25 });
const tcpCheck = { type: 'tcp', port: 8080, interval: '1s', timeout: '500ms' };
const image = 'tether-test/busybox:1';
const carriesCheck = (t: TargetFrame) => t.replicas.some((r) => r.container.healthcheck !== undefined);

describe('health checks at the hub', () => {
  it('sends a container with a check only to a version 3 agent; a version 2 node says why it waits', async () => {
    fleet = await SimFleet.start();
    const old = await connectDevice('old', 2);
    const current = await connectDevice('current', 3);

    expect((await fleet.api('PUT', '/v1/services/web', { image, replicas: 3, healthcheck: tcpCheck })).status).toBe(201);
    expect((await fleet.api('PUT', '/v1/services/pinned', { image, healthcheck: tcpCheck, constraints: ['node.name == old'] })).status).toBe(201);
    expect((await fleet.api('PUT', '/v1/services/mon', { image, mode: 'global', healthcheck: tcpCheck })).status).toBe(201);
    expect((await fleet.api('PUT', '/v1/services/plain', { image, mode: 'global' })).status).toBe(201);

    // The version 3 agent gets every checked replica, with its check in the container.
    await until(() => {
      const target = current.lastTarget;
      expect(target?.replicas.filter((r) => r.service === 'web')).toHaveLength(3);
      expect(target?.replicas.map((r) => r.service).sort()).toEqual(['mon', 'plain', 'web', 'web', 'web']);
    });
    const webContainer = current.lastTarget!.replicas.find((r) => r.service === 'web')!.container;
    expect(webContainer.healthcheck).toEqual({
      type: 'tcp',
      port: 8080,
      path: null,
      statusMin: null,
      statusMax: null,
      command: null,
      intervalMs: 1000,
      timeoutMs: 500,
      retries: 3,
      startPeriodMs: 0,
    });

    // The version 2 agent runs what it can read, and never sees a check.
    await until(() => expect(old.lastTarget?.replicas.map((r) => r.service)).toEqual(['plain']));
    const pinned = await until(async () => {
      const s = await status('pinned');
      expect(s.replicas[0]?.error).not.toBeNull();
      return s;
    });
    expect(pinned.replicas[0]).toMatchObject({
      state: 'pending',
      nodeId: null,
      error: '0 of 1 matching node fits: 1 has an agent of protocol 2 (health checks need an agent of protocol 3 or later)',
      health: null,
    });
    const mon = await status('mon');
    expect(mon.replicas.find((r) => r.nodeId === old.nodeId)).toMatchObject({
      state: 'pending',
      error: "health checks need an agent of protocol 3 or later; node's agent speaks 2",
    });

    // A spec that gains a check moves its replicas off the version 2 agent.
    expect((await fleet.api('PUT', '/v1/services/plain', { image, mode: 'global', healthcheck: tcpCheck })).status).toBe(200);
    await until(() => expect(old.lastTarget?.replicas).toEqual([]));
    await until(() => expect(current.lastTarget?.replicas.filter((r) => r.service === 'plain' && r.container.healthcheck)).toHaveLength(1));
    expect(old.targets.some(carriesCheck)).toBe(false);
  });

  it('never sends a check to a node whose agent comes back older, and moves its replicas', async () => {
    fleet = await SimFleet.start();
    const first = await connectDevice('downgraded', 3);
    const other = await connectDevice('other', 3);
    await fleet.api('PUT', '/v1/services/web', { image, replicas: 2, healthcheck: tcpCheck });
    await until(() => expect(first.lastTarget?.replicas).toHaveLength(1));
    await until(() => expect(other.lastTarget?.replicas).toHaveLength(1));
    first.run();
    const applied = first.lastTarget!.generation;
    first.close();

    // The same device, its agent replaced by a version 2 one, up to date with that target.
    const again = await connectDevice('downgraded', 2, first, applied);
    await until(() => expect(other.lastTarget?.replicas).toHaveLength(2));
    await until(() => expect(again.lastTarget?.replicas).toEqual([]));
    expect(again.targets.some(carriesCheck)).toBe(false);
    expect(again.ws.readyState).toBe(WebSocket.OPEN);
  });

  it('places a waiting replica once the agent of its node comes back newer', async () => {
    fleet = await SimFleet.start();
    const old = await connectDevice('upgraded', 2);
    await fleet.api('PUT', '/v1/services/mon', { image, mode: 'global', healthcheck: tcpCheck });
    await until(async () => expect((await status('mon')).replicas[0]?.error).toMatch(/node's agent speaks 2/));
    // The agent is upgraded: its connection ends, the new one says hello with version 3.
    old.close();
    await until(async () => expect((await status('mon')).replicas[0]?.nodeState).toBe('unreachable'));
    const upgraded = await connectDevice('upgraded', 3, old, old.lastTarget?.generation ?? 0);
    await until(() => expect(upgraded.lastTarget?.replicas.filter((r) => r.container.healthcheck)).toHaveLength(1));
    expect((await status('mon')).replicas[0]).toMatchObject({ nodeId: old.nodeId, error: null });
  });

  it('shows what agents report of health, and healthy for a running replica without a check', async () => {
    fleet = await SimFleet.start();
    const device = await connectDevice('d1', 3);
    await fleet.api('PUT', '/v1/services/web', { image, replicas: 2, healthcheck: tcpCheck });
    await fleet.api('PUT', '/v1/services/plain', { image, replicas: 1 });
    await until(() => expect(device.lastTarget?.replicas).toHaveLength(3));

    // Running, no result yet: starting.
    device.run();
    let web = await until(async () => {
      const s = await status('web');
      expect(s.running).toBe(2);
      return s;
    });
    expect(web.health).toEqual({ healthy: 0, unhealthy: 0, starting: 2 });
    expect(web.replicas.map((r) => [r.health, r.healthOutput])).toEqual([
      ['starting', null],
      ['starting', null],
    ]);
    const plain = await until(async () => {
      const s = await status('plain');
      expect(s.running).toBe(1);
      return s;
    });
    expect(plain.health).toEqual({ healthy: 1, unhealthy: 0, starting: 0 });
    expect(plain.replicas[0]).toMatchObject({ health: 'healthy', healthOutput: null });

    device.run({ service: 'web', health: { status: 'unhealthy', output: 'dial tcp 172.17.0.5:8080: connection refused' } });
    web = await until(async () => {
      const s = await status('web');
      expect(s.health.unhealthy).toBe(2);
      return s;
    });
    expect(web.replicas[0]).toMatchObject({ health: 'unhealthy', healthOutput: 'dial tcp 172.17.0.5:8080: connection refused' });

    device.run({ service: 'web', health: { status: 'healthy', output: null } });
    web = await until(async () => {
      const s = await status('web');
      expect(s.health).toEqual({ healthy: 2, unhealthy: 0, starting: 0 });
      return s;
    });
    expect(web.replicas[1]).toMatchObject({ health: 'healthy', healthOutput: null });
  });

  it.each([
    ['a status frame', false],
    ['its hello', true],
  ])('closes a version 2 session that reports health in %s with badFrame, and only that one', async (_what, inHello) => {
    fleet = await SimFleet.start();
    const bystander = await connectDevice('bystander', 2);
    const report: ReplicaReport = {
      replicaId: 'web-x',
      service: 'web',
      state: 'running',
      specHash: '0123456789abcdef',
      containerId: 'c',
      error: null,
      restarts: 0,
      health: { status: 'healthy', output: null },
    };
    let closed: { code: number; reason: string };
    if (inHello) {
      const { token } = await fleet.hub.nodes.createJoinToken(60);
      const joined = (await fleet.hub.nodes.join(token, 'liar', {}))!;
      const ws = new WebSocket(`${fleet.url.replace('http', 'ws')}/v1/agent/connect`, { headers: { authorization: `Bearer ${joined.credential}` } });
      ws.on('error', () => undefined);
      const closing = new Promise<{ code: number; reason: string }>((resolve) => ws.once('close', (code, reason) => resolve({ code, reason: reason.toString() })));
      await new Promise<void>((resolve) => ws.once('open', () => resolve()));
      ws.send(JSON.stringify(helloFrame('liar', { protocolVersion: 2, replicas: [report] })));
      closed = await closing;
    } else {
      const liar = await connectDevice('liar', 2);
      liar.send({ type: 'status', replicas: [report] });
      closed = await liar.closedWith;
    }
    expect(closed.code).toBe(CloseCode.badFrame);
    expect(closed.reason).toBe('replica health is not part of protocol version 2');
    expect(bystander.ws.readyState).toBe(WebSocket.OPEN);
  });
});
