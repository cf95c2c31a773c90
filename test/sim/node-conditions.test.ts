/**
 * Node conditions (protocol version 2) at the hub: what agents say of their engine, target cache
 * and disks, as the node view, the scheduler, the service view, the logs and /metrics show it;
 * and partial acks. Devices speak the protocol by hand here, so that each test says exactly what
 * a node reports and when.
 */
import WebSocket from 'ws';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { CloseCode, type NodeConditions, type ReplicaReport } from '../../shared/protocol.js';
import { RawDevice } from '../helpers/raw-device.js';
import { ADMIN_TOKEN, SimFleet } from '../helpers/sim-fleet.js';

const GiB = 1024 ** 3;
const MiB = 1024 ** 2;
const FAST = { heartbeatIntervalMs: 200, heartbeatGraceMs: 1000, lostAfterMs: 2000, startupGraceMs: 500 };
const spec = { image: 'tether-test/busybox:1', command: ['/bin/httpd', '-f', '-p', '8080'] };

const healthy: NodeConditions = {
  engine: { available: true, error: null },
  targetCache: { current: true, error: null },
  dataDisk: { path: '/var/lib/tether', totalBytes: 32 * GiB, freeBytes: 20 * GiB },
  engineDisk: { path: '/var/lib/docker', totalBytes: 32 * GiB, freeBytes: 20 * GiB },
};
const engineDown: NodeConditions = { ...healthy, engine: { available: false, error: 'connect ENOENT /var/run/docker.sock' } };

let fleet: SimFleet;
const nodes: RawDevice[] = [];
afterEach(async () => {
  for (const n of nodes.splice(0)) n.close();
  await fleet?.close();
});

/** A device speaking protocol version 2 (or 1) by hand; closed after each test. */
async function connectNode(name: string, hello: { protocolVersion?: number; conditions?: NodeConditions } = {}): Promise<RawDevice> {
  const node = await RawDevice.connect(fleet, name, { protocolVersion: 2, ...hello });
  nodes.push(node);
  return node;
}

interface NodeView {
  state: string;
  stateReason: string | null;
  downSince: string | null;
  notReadySince: string | null;
  generation: { target: number; applied: number | null; pending: number | null };
  conditions: {
    reportedAt: string | null;
    engine: NodeConditions['engine'] | null;
    targetCache: NodeConditions['targetCache'] | null;
    dataDisk: NodeConditions['dataDisk'];
    engineDisk: NodeConditions['engineDisk'];
  };
  warnings: string[];
}
interface Replica {
  replicaId: string;
  nodeId: string | null;
  state: string;
  nodeState: string | null;
  movedFrom: string | null;
  replacedBy: string | null;
}
interface ServiceStatus {
  running: number;
  states: Record<string, number>;
  replicas: Replica[];
}

const nodeView = async (nodeId: string) => (await fleet.api<NodeView>('GET', `/v1/nodes/${nodeId}`)).body;
const status = async (name: string) => (await fleet.api<{ status: ServiceStatus }>('GET', `/v1/services/${name}`)).body.status;
const until = <T>(fn: () => Promise<T> | T) => vi.waitFor(fn, { timeout: 10_000, interval: 25 });

describe('node conditions at the hub', () => {
  it('shows the conditions a hello brings, replaces them with each conditions frame, and keeps the last while the node is away', async () => {
    fleet = await SimFleet.start();
    const warn = vi.spyOn(fleet.app.log, 'warn');
    const node = await connectNode('c1', { conditions: healthy });
    let view = await nodeView(node.nodeId);
    expect(view.state).toBe('ready');
    expect(view.conditions).toMatchObject({ engine: healthy.engine, targetCache: healthy.targetCache, dataDisk: healthy.dataDisk, engineDisk: healthy.engineDisk });
    expect(view.conditions.reportedAt).not.toBeNull();
    expect(view.warnings).toEqual([]);

    const stale: NodeConditions = { ...healthy, targetCache: { current: false, error: 'ENOSPC: no space left on device' } };
    node.send({ type: 'conditions', conditions: stale });
    node.send({ type: 'conditions', conditions: stale });
    view = await until(async () => {
      const v = await nodeView(node.nodeId);
      expect(v.conditions.targetCache).toEqual(stale.targetCache);
      return v;
    });
    expect(view.warnings).toEqual([expect.stringMatching(/^target not cached on the device: ENOSPC/)]);
    expect(view.state).toBe('ready');
    // One warning for the change, not one per frame.
    expect(warn.mock.calls.filter((c) => /could not cache its target/.test(String(c[1])))).toHaveLength(1);

    node.close();
    await until(async () => expect((await nodeView(node.nodeId)).state).toBe('unreachable'));
    // Soft state, but the last known is kept (with when it was said) while the node is away.
    expect((await nodeView(node.nodeId)).conditions.targetCache).toEqual(stale.targetCache);
  });

  it('shows no conditions (null) for a version 1 agent', async () => {
    fleet = await SimFleet.start();
    const node = await connectNode('v1', { protocolVersion: 1 });
    const view = await nodeView(node.nodeId);
    expect(view.state).toBe('ready');
    expect(view.conditions).toEqual({ reportedAt: null, engine: null, targetCache: null, dataDisk: null, engineDisk: null });
    expect(view.generation.pending).toBeNull();
  });

  it.each([
    ['a conditions frame', { type: 'conditions', conditions: healthy }, /conditions frames are not part of protocol version 1/],
    ['a partial ack', { type: 'ack', generation: 0, pending: 1 }, /ack.pending is not part of protocol version 1/],
  ])('closes a version 1 session that sends %s with badFrame, and only that one', async (_what, frame, reason) => {
    fleet = await SimFleet.start();
    const bystander = await connectNode('v2', { conditions: healthy });
    const old = await connectNode('v1', { protocolVersion: 1 });
    old.send(frame);
    const closed = await old.closedWith;
    expect(closed.code).toBe(CloseCode.badFrame);
    expect(closed.reason).toMatch(reason);
    expect(bystander.ws.readyState).toBe(WebSocket.OPEN);
    expect((await nodeView(bystander.nodeId)).state).toBe('ready');
  });

  it('closes only the connection that sends a malformed conditions frame, with badFrame', async () => {
    fleet = await SimFleet.start();
    const bystander = await connectNode('good', { conditions: healthy });
    const bad = await connectNode('bad', { conditions: healthy });
    bad.send({ type: 'conditions', conditions: { ...healthy, engine: { available: 'maybe', error: null } } });
    const closed = await bad.closedWith;
    expect(closed.code).toBe(CloseCode.badFrame);
    expect(closed.reason).toMatch(/engine/);
    expect(bystander.ws.readyState).toBe(WebSocket.OPEN);
    expect((await nodeView(bystander.nodeId)).conditions.engine).toEqual(healthy.engine);
  });

  it('warns of a low disk in the node view, and logs one line per change, not per frame', async () => {
    fleet = await SimFleet.start();
    const warn = vi.spyOn(fleet.app.log, 'warn');
    const lowEngineDisk: NodeConditions = {
      ...healthy,
      // 4% free of a 29.8 GiB disk: under 10%, and under 2 GiB.
      engineDisk: { path: '/var/lib/docker', totalBytes: Math.round(29.8 * GiB), freeBytes: Math.round(1.2 * GiB) },
      // 3 GiB free of 1 TiB is 0.3%, but more than 2 GiB: not low.
      dataDisk: { path: '/var/lib/tether', totalBytes: 1024 * GiB, freeBytes: 3 * GiB },
    };
    const node = await connectNode('disks', { conditions: lowEngineDisk });
    expect((await nodeView(node.nodeId)).warnings).toEqual(['engine disk low: 1.2 GiB free of 29.8 GiB (4%)']);
    // The same again, and a small data disk with 300 MiB of 4 GiB (7%) left: low too.
    node.send({ type: 'conditions', conditions: lowEngineDisk });
    const bothLow: NodeConditions = { ...lowEngineDisk, dataDisk: { path: '/var/lib/tether', totalBytes: 4 * GiB, freeBytes: 300 * MiB } };
    node.send({ type: 'conditions', conditions: bothLow });
    node.send({ type: 'conditions', conditions: bothLow });
    await until(async () =>
      expect((await nodeView(node.nodeId)).warnings).toEqual(['data disk low: 300.0 MiB free of 4.0 GiB (7%)', 'engine disk low: 1.2 GiB free of 29.8 GiB (4%)']),
    );
    const diskLines = () => warn.mock.calls.filter((call) => /disk low/.test(String(call[1])));
    expect(diskLines().map((call) => call[1])).toEqual([
      'node engine disk low: 1.2 GiB free of 29.8 GiB (4%)',
      'node data disk low: 300.0 MiB free of 4.0 GiB (7%)',
    ]);

    const metrics = await fleet.app.inject({ url: '/metrics', headers: { authorization: `Bearer ${ADMIN_TOKEN}` } });
    expect(metrics.statusCode).toBe(200);
    const text = metrics.body;
    expect(text).toMatch(/tether_node_conditions\{condition="engine_disk_low"\} 1/);
    expect(text).toMatch(/tether_node_conditions\{condition="data_disk_low"\} 1/);
    expect(text).toMatch(/tether_node_conditions\{condition="engine_unavailable"\} 0/);
  });

  it('shows a partial ack: the applied generation and how many replicas still wait for their images', async () => {
    fleet = await SimFleet.start();
    const node = await connectNode('pull', { conditions: healthy });
    await fleet.api('PUT', '/v1/services/web', { ...spec, replicas: 3 });
    await until(() => expect(node.lastTarget?.replicas).toHaveLength(3));
    const generation = node.lastTarget!.generation;
    node.send({ type: 'ack', generation, pending: 2 });
    await until(async () => expect((await nodeView(node.nodeId)).generation).toEqual({ target: generation, applied: generation, pending: 2 }));
    node.send({ type: 'ack', generation, pending: 0 });
    await until(async () => expect((await nodeView(node.nodeId)).generation).toEqual({ target: generation, applied: generation, pending: 0 }));
  });

  it('counts reports on unassigned replicas as routine (before_ack) while a partial ack leaves replicas pending', async () => {
    fleet = await SimFleet.start();
    const node = await connectNode('pulling', { conditions: healthy });
    await fleet.api('PUT', '/v1/services/web', { ...spec, replicas: 2 });
    await until(() => expect(node.lastTarget?.replicas).toHaveLength(2));
    const generation = node.lastTarget!.generation;
    const stray: ReplicaReport = { replicaId: 'old.0123456789', service: 'old', state: 'running', specHash: 'x', containerId: 'c', error: null, restarts: 0 };

    // Still pulling: the node has not applied the whole target, so what it says of others is stale.
    node.send({ type: 'ack', generation, pending: 1 });
    node.send({ type: 'status', replicas: [stray] });
    await until(() => expect(fleet.hub.nodes.refusedReports).toBe(1));
    expect(fleet.hub.nodes.refusedReportsBeforeAck).toBe(1);

    // All applied: the same report is one to alert on.
    node.send({ type: 'ack', generation, pending: 0 });
    node.send({ type: 'status', replicas: [stray] });
    await until(() => expect(fleet.hub.nodes.refusedReports).toBe(2));
    expect(fleet.hub.nodes.refusedReportsBeforeAck).toBe(1);
  });
});

describe('a node whose container engine is unavailable', () => {
  it('gets no new replicas: they go to the nodes whose engine answers', async () => {
    fleet = await SimFleet.start(FAST);
    const down = await connectNode('down', { conditions: healthy });
    const up = await connectNode('up', { conditions: healthy });
    down.send({ type: 'conditions', conditions: engineDown });
    await until(async () => expect((await nodeView(down.nodeId)).state).toBe('not_ready'));
    expect((await nodeView(down.nodeId)).stateReason).toBe('container engine unavailable: connect ENOENT /var/run/docker.sock');
    expect((await nodeView(down.nodeId)).warnings[0]).toMatch(/^container engine unavailable/);

    await fleet.api('PUT', '/v1/services/web', { ...spec, replicas: 4 });
    await until(async () => expect((await status('web')).replicas.map((r) => r.nodeId)).toEqual(Array(4).fill(up.nodeId)));
    expect(down.lastTarget?.replicas ?? []).toEqual([]);

    const metrics = (await fleet.app.inject({ url: '/metrics', headers: { authorization: `Bearer ${ADMIN_TOKEN}` } })).body;
    expect(metrics).toMatch(/^tether_nodes\{state="not_ready"\} 1$/m);
    expect(metrics).toMatch(/^tether_nodes\{state="ready"\} 1$/m);
    expect(metrics).toMatch(/^tether_node_conditions\{condition="engine_unavailable"\} 1$/m);
  });

  it('shows since when it is not ready: the time that counts toward lostAfter, carried on when it goes away', async () => {
    fleet = await SimFleet.start({ ...FAST, lostAfterMs: 60_000 });
    const node = await connectNode('down', { conditions: healthy });
    expect((await nodeView(node.nodeId)).notReadySince).toBeNull();
    const beforeMs = Date.now();
    node.send({ type: 'conditions', conditions: engineDown });
    await until(async () => expect((await nodeView(node.nodeId)).state).toBe('not_ready'));
    const view = await nodeView(node.nodeId);
    expect(view.downSince).toBeNull();
    expect(view.notReadySince).not.toBeNull();
    const sinceMs = Date.parse(view.notReadySince!);
    expect(sinceMs).toBeGreaterThanOrEqual(beforeMs);
    expect(sinceMs).toBeLessThanOrEqual(Date.now());
    // The reason is the warning's own wording, not a copy of it.
    expect(view.warnings[0]!.startsWith(view.stateReason!)).toBe(true);
    const metrics = (await fleet.app.inject({ url: '/metrics', headers: { authorization: `Bearer ${ADMIN_TOKEN}` } })).body;
    expect(metrics).toMatch(/^# HELP tether_node_conditions .*\(a disk is low under min\(10% of it, 2 GiB\) free\)$/m);
    // Gone away: its away-time runs on from the outage's start.
    node.close();
    await until(async () => expect((await nodeView(node.nodeId)).state).toBe('unreachable'));
    const away = await nodeView(node.nodeId);
    // (Within a millisecond: times are shown to the millisecond, the hub's clock is finer.)
    expect(Math.abs(Date.parse(away.downSince!) - sinceMs)).toBeLessThanOrEqual(1);
    expect(away.notReadySince).toBeNull();
  });

  it('is lost, and remembered lost, when it goes away after its outage passed lostAfter', async () => {
    fleet = await SimFleet.start({ ...FAST, lostAfterMs: 1000 });
    const node = await connectNode('down', { conditions: healthy });
    await connectNode('a', { conditions: healthy });
    await connectNode('b', { conditions: healthy });
    node.send({ type: 'conditions', conditions: engineDown });
    await until(async () => expect((await nodeView(node.nodeId)).state).toBe('not_ready'));
    const sinceMs = Date.parse((await nodeView(node.nodeId)).notReadySince!);
    await until(() => expect(Date.now() - sinceMs).toBeGreaterThan(1500));
    node.close();
    await until(async () => expect((await nodeView(node.nodeId)).state).toBe('lost'));
    // Kept in the store, so that a restarted hub holds it lost too.
    await until(() => expect(fleet.hub.store.getNode(node.nodeId)?.lostSince).toEqual(expect.any(String)));
  });

  it('keeps its replicas (shown unknown) within lostAfter, moves them after, and takes them back when the engine returns', async () => {
    // lostAfter long enough that a loaded machine still checks "within" within it.
    fleet = await SimFleet.start({ ...FAST, lostAfterMs: 4000 });
    const info = vi.spyOn(fleet.app.log, 'info');
    const warn = vi.spyOn(fleet.app.log, 'warn');
    const flaky = await connectNode('flaky', { conditions: healthy });
    await fleet.api('PUT', '/v1/services/web', { ...spec, replicas: 2 });
    await until(() => expect(flaky.lastTarget?.replicas).toHaveLength(2));
    flaky.run();
    await until(async () => expect((await status('web')).running).toBe(2));
    const originals = (await status('web')).replicas.map((r) => r.replicaId).sort();
    // Joins after the replicas were placed: the only place they can move to.
    const spare = await connectNode('spare', { conditions: healthy });

    flaky.send({ type: 'conditions', conditions: engineDown });
    flaky.send({ type: 'conditions', conditions: engineDown });
    let s = await until(async () => {
      const v = await status('web');
      expect(v.replicas.every((r) => r.state === 'unknown' && r.nodeState === 'not_ready')).toBe(true);
      return v;
    });
    expect(s.running).toBe(0);
    expect(s.states).toEqual({ unknown: 2 });
    // A pass within lostAfter moves nothing.
    fleet.hub.loop.markDirty();
    await fleet.hub.loop.idle();
    s = await status('web');
    expect(s.replicas.map((r) => [r.replicaId, r.nodeId, r.movedFrom]).sort()).toEqual(originals.map((id) => [id, flaky.nodeId, null]));
    expect(spare.lastTarget?.replicas ?? []).toEqual([]);

    // Past lostAfter: replacements on the spare node, as for a lost node; the originals stay in
    // the flaky node's target meanwhile, handing over.
    s = await until(async () => {
      const v = await status('web');
      expect(v.replicas.filter((r) => r.movedFrom === flaky.nodeId && r.nodeId === spare.nodeId)).toHaveLength(2);
      return v;
    });
    expect(s.replicas.filter((r) => originals.includes(r.replicaId)).every((r) => r.replacedBy !== null)).toBe(true);
    await until(() => expect(spare.lastTarget?.replicas).toHaveLength(2));
    expect(flaky.lastTarget!.replicas.map((r) => r.replicaId).sort()).toEqual(originals);

    // The engine is back before the replacements run: the move is called off, as for a lost node
    // that comes back, and the node is ready again.
    flaky.send({ type: 'conditions', conditions: healthy });
    await until(async () => expect((await nodeView(flaky.nodeId)).state).toBe('ready'));
    flaky.run();
    await until(async () => {
      const v = await status('web');
      expect(v.replicas.map((r) => r.replicaId).sort()).toEqual(originals);
      expect(v.running).toBe(2);
    });
    await until(() => expect(spare.lastTarget?.replicas).toEqual([]));

    // One line for each change of the engine, however many frames said it.
    expect(warn.mock.calls.filter((c) => /container engine is unavailable/.test(String(c[1])))).toHaveLength(1);
    expect(info.mock.calls.filter((c) => /container engine is available again/.test(String(c[1])))).toHaveLength(1);
  });
});
