/**
 * Restart policies at the hub (protocol version 4): a container with a policy only goes to an
 * agent that applies it, replicas elsewhere say why they wait, an agent's crash-loop report shows
 * in the service view, and an older agent that reports one breaks its protocol. Devices speak the
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
  restarts: number;
  crashLoop: { restarts: number; lastExitCode: number | null; outputTail: string | null; nextRestartAt: string | null } | null;
}
interface Status {
  running: number;
  states: Record<string, number>;
  replicas: Replica[];
}

const status = async (name: string) => (await fleet.api<{ status: Status }>('GET', `/v1/services/${name}`)).body.status;
const until = <T>(fn: () => Promise<T> | T) => vi.waitFor(fn, { timeout: 10_000, interval: 25 });
const image = 'tether-test/busybox:1';
const restart = { policy: 'on-failure', maxAttempts: 5, backoff: { initial: '2s', max: '1m' } };
const carriesPolicy = (t: TargetFrame) => t.replicas.some((r) => r.container.restart !== undefined);

describe('restart policies at the hub', () => {
  it('refuses a bad policy with 400 naming the field, and stores nothing', async () => {
    fleet = await SimFleet.start();
    const res = await fleet.api<{ error: { code: string; details: Array<{ path: string; message: string }> } }>('PUT', '/v1/services/bad', {
      image,
      restart: { policy: 'never', maxAttempts: 3, backoff: { initial: '10s', max: '5s' } },
    });
    expect(res.status).toBe(400);
    expect(res.body.error.code).toBe('invalid_spec');
    expect(res.body.error.details.map((d) => d.path).sort()).toEqual(['restart.backoff.max', 'restart.maxAttempts']);
    expect((await fleet.api('GET', '/v1/services/bad')).status).toBe(404);
  });

  it('sends a container with a policy only to a version 4 agent; a version 3 node says why it waits', async () => {
    fleet = await SimFleet.start();
    const old = await connectDevice('old', 3);
    const current = await connectDevice('current', 4);

    expect((await fleet.api('PUT', '/v1/services/web', { image, replicas: 2, restart })).status).toBe(201);
    expect((await fleet.api('PUT', '/v1/services/pinned', { image, restart, constraints: ['node.name == old'] })).status).toBe(201);
    expect((await fleet.api('PUT', '/v1/services/plain', { image, mode: 'global' })).status).toBe(201);

    await until(() => expect(current.lastTarget?.replicas.map((r) => r.service).sort()).toEqual(['plain', 'web', 'web']));
    expect(current.lastTarget!.replicas.find((r) => r.service === 'web')!.container.restart).toEqual({
      policy: 'on-failure',
      maxAttempts: 5,
      backoffInitialMs: 2000,
      backoffMaxMs: 60_000,
      resetAfterMs: 600_000,
    });
    await until(() => expect(old.lastTarget?.replicas.map((r) => r.service)).toEqual(['plain']));
    const pinned = await until(async () => {
      const s = await status('pinned');
      expect(s.replicas[0]?.error).not.toBeNull();
      return s;
    });
    expect(pinned.replicas[0]).toMatchObject({
      state: 'pending',
      nodeId: null,
      error: '0 of 1 matching node fits: 1 has an agent of protocol 3 (restart policies need an agent of protocol 4 or later)',
      crashLoop: null,
    });

    // A spec that gains a policy moves its replicas off the version 3 agent.
    expect((await fleet.api('PUT', '/v1/services/plain', { image, mode: 'global', restart: {} })).status).toBe(200);
    await until(() => expect(old.lastTarget?.replicas).toEqual([]));
    expect(old.targets.some(carriesPolicy)).toBe(false);
    const plain = await until(async () => {
      const s = await status('plain');
      expect(s.replicas.find((r) => r.nodeId === old.nodeId)?.state).toBe('pending');
      return s;
    });
    expect(plain.replicas.find((r) => r.nodeId === old.nodeId)?.error).toBe(
      "restart policies need an agent of protocol 4 or later; node's agent speaks 3",
    );
  });

  it('never sends a policy to a node whose agent comes back older, and moves its replicas', async () => {
    fleet = await SimFleet.start();
    const first = await connectDevice('downgraded', 4);
    const other = await connectDevice('other', 4);
    await fleet.api('PUT', '/v1/services/web', { image, replicas: 2, restart });
    await until(() => expect(first.lastTarget?.replicas).toHaveLength(1));
    await until(() => expect(other.lastTarget?.replicas).toHaveLength(1));
    first.run();
    const applied = first.lastTarget!.generation;
    first.close();

    const again = await connectDevice('downgraded', 3, first, applied);
    await until(() => expect(other.lastTarget?.replicas).toHaveLength(2));
    await until(() => expect(again.lastTarget?.replicas).toEqual([]));
    expect(again.targets.some(carriesPolicy)).toBe(false);
    expect(again.ws.readyState).toBe(WebSocket.OPEN);
  });

  it('shows a crash-looping replica with its exit code, output and next restart; one given up on as failed', async () => {
    fleet = await SimFleet.start();
    const device = await connectDevice('d1', 4);
    await fleet.api('PUT', '/v1/services/web', { image, replicas: 1, restart });
    await until(() => expect(device.lastTarget?.replicas).toHaveLength(1));
    const r = device.lastTarget!.replicas[0]!;
    const nextRestartAtMs = Date.UTC(2026, 10, 30, 22, 0, 0);
    const report = (over: Partial<ReplicaReport>): ReplicaReport => ({
      replicaId: r.replicaId,
      service: r.service,
      state: 'failed',
      specHash: r.specHash,
      containerId: 'c1',
      error: 'exited with code 1',
      restarts: 4,
      ...over,
    });
    device.send({ type: 'status', replicas: [report({ crashLoop: { restarts: 4, lastExitCode: 1, outputTail: 'boom\n', nextRestartAtMs } })] });
    const looping = await until(async () => {
      const s = await status('web');
      expect(s.replicas[0]?.state).toBe('crash-looping');
      return s;
    });
    expect(looping.states).toEqual({ 'crash-looping': 1 });
    expect(looping.running).toBe(0);
    expect(looping.replicas[0]).toMatchObject({
      error: 'exited with code 1',
      restarts: 4,
      crashLoop: { restarts: 4, lastExitCode: 1, outputTail: 'boom\n', nextRestartAt: '2026-11-30T22:00:00.000Z' },
    });

    // Started again and running between two crashes: still crash-looping.
    device.send({ type: 'status', replicas: [report({ state: 'running', error: null, crashLoop: { restarts: 4, lastExitCode: 1, outputTail: 'boom\n', nextRestartAtMs } })] });
    await until(async () => expect((await status('web')).replicas[0]).toMatchObject({ state: 'crash-looping', error: null }));

    // The policy gave up: it stays down, and says so.
    const gaveUp = 'exited with code 1; not restarted again: 5 restarts in a row, its restart policy allows 5';
    device.send({ type: 'status', replicas: [report({ error: gaveUp, crashLoop: { restarts: 5, lastExitCode: 1, outputTail: 'boom\n', nextRestartAtMs: null } })] });
    await until(async () =>
      expect((await status('web')).replicas[0]).toMatchObject({
        state: 'failed',
        error: gaveUp,
        crashLoop: { restarts: 5, lastExitCode: 1, outputTail: 'boom\n', nextRestartAt: null },
      }),
    );

    // A good report clears it.
    device.run();
    await until(async () => expect((await status('web')).replicas[0]).toMatchObject({ state: 'running', crashLoop: null }));
  });

  it('shows a replica that keeps crashing on a real agent (simulated engine) as crash-looping, then running once it holds', async () => {
    fleet = await SimFleet.start();
    await fleet.addAgent({ name: 'edge' });
    const spec = { image, replicas: 1, restart: { backoff: { initial: '200ms', max: '1s' } } };
    expect((await fleet.api('PUT', '/v1/services/crashy', spec)).status).toBe(201);
    // Every time the agent starts it, it dies at once, printing why.
    let crashes = 0;
    const crasher = setInterval(() => {
      for (const c of fleet.runtime.containers()) {
        if (c.service === 'crashy' && c.state === 'running') {
          fleet.runtime.crash(c.id, 1, `boom ${++crashes}\n`);
        }
      }
    }, 5);
    try {
      const looping = await until(async () => {
        const s = await status('crashy');
        expect(s.replicas[0]?.state).toBe('crash-looping');
        return s;
      });
      const replica = looping.replicas[0]!;
      expect(replica.crashLoop).toMatchObject({ lastExitCode: 1 });
      expect(replica.crashLoop!.restarts).toBeGreaterThanOrEqual(3);
      expect(replica.crashLoop!.outputTail).toContain('boom');
      expect(Date.parse(replica.crashLoop!.nextRestartAt!)).toBeGreaterThan(Date.now() - 5000);
      expect(replica.error).toBe('exited with code 1');
      expect(looping.states).toEqual({ 'crash-looping': 1 });
    } finally {
      clearInterval(crasher);
    }
    // It holds once started again: running, the crash loop over.
    await vi.waitFor(async () => expect((await status('crashy')).replicas[0]).toMatchObject({ state: 'running', crashLoop: null }), {
      timeout: 10_000,
      interval: 50,
    });
  });

  it.each([
    ['a status frame', false],
    ['its hello', true],
  ])('closes a version 3 session that reports a crash loop in %s with badFrame, and only that one', async (_what, inHello) => {
    fleet = await SimFleet.start();
    const bystander = await connectDevice('bystander', 3);
    const report: ReplicaReport = {
      replicaId: 'web-x',
      service: 'web',
      state: 'failed',
      specHash: '0123456789abcdef',
      containerId: 'c',
      error: null,
      restarts: 3,
      crashLoop: { restarts: 3, lastExitCode: 1, outputTail: null, nextRestartAtMs: 1 },
    };
    let closed: { code: number; reason: string };
    if (inHello) {
      const { token } = await fleet.hub.nodes.createJoinToken(60);
      const joined = (await fleet.hub.nodes.join(token, 'liar', {}))!;
      const ws = new WebSocket(`${fleet.url.replace('http', 'ws')}/v1/agent/connect`, { headers: { authorization: `Bearer ${joined.credential}` } });
      ws.on('error', () => undefined);
      const closing = new Promise<{ code: number; reason: string }>((resolve) => ws.once('close', (code, reason) => resolve({ code, reason: reason.toString() })));
      await new Promise<void>((resolve) => ws.once('open', () => resolve()));
      ws.send(JSON.stringify(helloFrame('liar', { protocolVersion: 3, replicas: [report] })));
      closed = await closing;
    } else {
      const liar = await connectDevice('liar', 3);
      liar.send({ type: 'status', replicas: [report] });
      closed = await liar.closedWith;
    }
    expect(closed.code).toBe(CloseCode.badFrame);
    expect(closed.reason).toBe('a replica crash loop is not part of protocol version 3');
    expect(bystander.ws.readyState).toBe(WebSocket.OPEN);
  });
});
