/**
 * One node must not hurt the others: a node reports only on its own replicas, keeps no unbounded
 * state in the hub, and cannot choose its own name or labels.
 */
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import type { ReplicaReport } from '../../shared/protocol.js';
import { ADMIN_TOKEN, SimFleet, helloFrame, rawNode as connectRawNode } from '../helpers/sim-fleet.js';

const busybox = { image: 'tether-test/busybox:1', command: ['/bin/httpd', '-f', '-p', '8080'] };

interface ReplicaView {
  replicaId: string;
  nodeId: string | null;
  state: string;
  error: string | null;
}
interface ServiceView {
  status: { running: number; replicas: ReplicaView[]; states: Record<string, number> };
}

let fleet: SimFleet;
beforeEach(async () => {
  fleet = await SimFleet.start();
});
afterEach(async () => {
  await fleet.close();
});

async function joinNode(name: string, labels: Record<string, string> = {}): Promise<{ nodeId: string; credential: string }> {
  const { token } = await fleet.hub.nodes.createJoinToken(60);
  return (await fleet.hub.nodes.join(token, name, labels))!;
}

/** A device speaking the protocol by hand: whatever it chooses to send. */
const rawNode = (credential: string, hello: { name: string; labels?: Record<string, string>; replicas?: ReplicaReport[] }) =>
  connectRawNode(fleet.url, credential, helloFrame(hello.name, { labels: hello.labels ?? {}, replicas: hello.replicas ?? [] }));

const report = (replicaId: string, state: ReplicaReport['state'] = 'failed'): ReplicaReport => ({
  replicaId,
  service: 'web',
  state,
  specHash: 'forged',
  containerId: null,
  error: state === 'failed' ? 'forged failure' : null,
  restarts: 0,
});

async function waitRunning(name: string, running: number): Promise<ServiceView> {
  return vi.waitFor(
    async () => {
      const view = (await fleet.api<ServiceView>('GET', `/v1/services/${name}`)).body;
      expect(view.status.running).toBe(running);
      return view;
    },
    { timeout: 10_000, interval: 50 },
  );
}

describe('a node reports on its own replicas only', () => {
  it("refuses and counts a report about another node's replica; the service view stays right", async () => {
    await Promise.all([fleet.addAgent(), fleet.addAgent()]);
    await fleet.api('PUT', '/v1/services/web', { ...busybox, replicas: 2 });
    const before = await waitRunning('web', 2);

    const { nodeId, credential } = await joinNode('rogue');
    const rogue = await rawNode(credential, { name: 'rogue' });
    // The rogue applies its own (empty) target first: its reports are then misleading, not stale.
    await fleet.hub.loop.idle();
    const nodeView = async () => (await fleet.api<{ generation: { target: number; applied: number | null } }>('GET', `/v1/nodes/${nodeId}`)).body;
    rogue.send(JSON.stringify({ type: 'ack', generation: (await nodeView()).generation.target }));
    await vi.waitFor(async () => expect((await nodeView()).generation).toMatchObject({ applied: (await nodeView()).generation.target }), { timeout: 5_000, interval: 20 });
    rogue.send(JSON.stringify({ type: 'status', replicas: before.status.replicas.map((r) => report(r.replicaId)) }));
    await vi.waitFor(() => expect(fleet.hub.nodes.refusedReports).toBe(2), { timeout: 5_000, interval: 20 });

    const after = (await fleet.api<ServiceView>('GET', '/v1/services/web')).body;
    expect(after.status.running).toBe(2);
    expect(after.status.replicas.map((r) => [r.replicaId, r.state, r.error])).toEqual(before.status.replicas.map((r) => [r.replicaId, 'running', null]));
    const metrics = await fleet.app.inject({ url: '/metrics', headers: { authorization: `Bearer ${ADMIN_TOKEN}` } });
    // The rogue had applied its (empty) target: these are no stale reports but misleading ones.
    expect(metrics.body).toMatch(/^tether_replica_reports_refused_total\{reason="not_assigned"\} 2$/m);
    expect(metrics.body).toMatch(/^tether_replica_reports_refused_total\{reason="before_ack"\} 0$/m);
    rogue.close();
  });

  it("refuses a report about its own replica that names another service than the replica's", async () => {
    const { nodeId, credential } = await joinNode('misnamer');
    const ws = await rawNode(credential, { name: 'misnamer' });
    const targets: Array<{ type: string; generation: number; replicas?: Array<{ replicaId: string }> }> = [];
    ws.on('message', (data) => targets.push(JSON.parse(data.toString())));
    await fleet.api('PUT', '/v1/services/web', { ...busybox, replicas: 1 });
    const target = await vi.waitFor(
      () => {
        const t = targets.find((f) => f.type === 'target' && (f.replicas?.length ?? 0) === 1);
        expect(t).toBeDefined();
        return t!;
      },
      { timeout: 5_000, interval: 20 },
    );
    const replicaId = target.replicas![0]!.replicaId;
    ws.send(JSON.stringify({ type: 'ack', generation: target.generation }));
    await vi.waitFor(async () => expect((await fleet.api<{ generation: { applied: number | null } }>('GET', `/v1/nodes/${nodeId}`)).body.generation.applied).toBe(target.generation), { timeout: 5_000, interval: 20 });

    ws.send(JSON.stringify({ type: 'status', replicas: [{ ...report(replicaId), service: 'db' }] }));
    await vi.waitFor(() => expect(fleet.hub.nodes.refusedReports).toBe(1), { timeout: 5_000, interval: 20 });
    expect(fleet.hub.observed.get(replicaId)).toBeUndefined();
    // The same report naming the replica's own service is taken.
    ws.send(JSON.stringify({ type: 'status', replicas: [report(replicaId)] }));
    await vi.waitFor(() => expect(fleet.hub.observed.get(replicaId)?.report.state).toBe('failed'), { timeout: 5_000, interval: 20 });
    expect(fleet.hub.nodes.refusedReports).toBe(1);
    ws.close();
  });

  it('counts refusals from a node that has not applied its newest target apart (routine after a move)', async () => {
    const { credential } = await joinNode('behind');
    const ws = await rawNode(credential, { name: 'behind' });
    const targets: Array<{ type: string; generation: number }> = [];
    ws.on('message', (data) => targets.push(JSON.parse(data.toString())));
    await fleet.api('PUT', '/v1/services/everywhere', { ...busybox, mode: 'global' });
    await vi.waitFor(() => expect(targets.some((t) => t.type === 'target' && t.generation >= 1)).toBe(true), { timeout: 5_000, interval: 20 });
    // It never acks the new target, and reports on a replica it ran before (now another's, or gone).
    ws.send(JSON.stringify({ type: 'status', replicas: [report('from-before', 'stopped')] }));
    await vi.waitFor(() => expect(fleet.hub.nodes.refusedReportsBeforeAck).toBe(1), { timeout: 5_000, interval: 20 });
    expect(fleet.hub.nodes.refusedReports).toBe(1);
    ws.close();
  });

  it('keeps nothing of reports about unknown replicas, in status frames or at hello, however many arrive', async () => {
    await fleet.addAgent();
    await fleet.api('PUT', '/v1/services/web', { ...busybox, replicas: 1 });
    await waitRunning('web', 1);
    const assigned = fleet.hub.observed.size;
    expect(assigned).toBe(1);

    const frames = 20;
    const perFrame = 5000;
    const unknown = (frame: number) => Array.from({ length: perFrame }, (_, i) => report(`forged-${frame}-${i}`, 'running'));
    const { credential } = await joinNode('flooder');
    const flooder = await rawNode(credential, { name: 'flooder', replicas: unknown(-1) });
    for (let f = 0; f < frames; f++) flooder.send(JSON.stringify({ type: 'status', replicas: unknown(f) }));
    await vi.waitFor(() => expect(fleet.hub.nodes.refusedReports).toBe((frames + 1) * perFrame), { timeout: 20_000, interval: 50 });
    expect(fleet.hub.observed.size).toBe(assigned);
    flooder.close();
    // The hub is still serving the honest node.
    await waitRunning('web', 1);
  });

  it("forgets a replica's report when the replica leaves its node", async () => {
    await Promise.all([fleet.addAgent(), fleet.addAgent()]);
    await fleet.api('PUT', '/v1/services/web', { ...busybox, replicas: 4 });
    await waitRunning('web', 4);
    expect(fleet.hub.observed.size).toBe(4);
    await fleet.api('PUT', '/v1/services/web', { ...busybox, replicas: 1 });
    await waitRunning('web', 1);
    await vi.waitFor(() => expect(fleet.hub.observed.size).toBe(1), { timeout: 5_000, interval: 20 });
    await fleet.api('DELETE', '/v1/services/web');
    await vi.waitFor(() => expect(fleet.hub.observed.size).toBe(0), { timeout: 5_000, interval: 20 });
  });

  it('does not believe an ack of a generation it never made for the node', async () => {
    const { nodeId, credential } = await joinNode('acker');
    const ws = await rawNode(credential, { name: 'acker' });
    await fleet.hub.loop.idle();
    const target = fleet.hub.store.getNode(nodeId)!.generation;
    ws.send(JSON.stringify({ type: 'ack', generation: target + 1000 }));
    await vi.waitFor(() => expect(fleet.hub.gateway.acksRefused).toBe(1), { timeout: 5_000, interval: 20 });
    const view = (await fleet.api<{ generation: { target: number; applied: number | null } }>('GET', `/v1/nodes/${nodeId}`)).body;
    expect(view.generation.applied).not.toBe(target + 1000);
    ws.send(JSON.stringify({ type: 'ack', generation: target }));
    await vi.waitFor(async () => expect((await fleet.api<{ generation: { applied: number } }>('GET', `/v1/nodes/${nodeId}`)).body.generation.applied).toBe(target), {
      timeout: 5_000,
      interval: 20,
    });
    ws.close();
  });
});

describe("a node's name and labels are fixed at join", () => {
  interface NodeView {
    id: string;
    name: string;
    labels: Record<string, string>;
    requested: { name: string; labels: Record<string, string> } | null;
  }

  it('shows a name and labels asked for at hello as requested, and applies them only when an operator accepts', async () => {
    await fleet.addAgent({ name: 'secure-1', labels: { zone: 'secure' } });
    const { nodeId, credential } = await joinNode('field-7');
    await fleet.api('PUT', '/v1/services/vault', { ...busybox, mode: 'global', constraints: ['node.labels.zone == secure'], registryAuth: { username: 'u', password: 'registry-password' } });
    const targets: string[] = [];
    const intruder = await rawNode(credential, { name: 'secure-1', labels: { zone: 'secure' } });
    intruder.on('message', (data) => targets.push(data.toString()));

    const view = await vi.waitFor(
      async () => {
        const v = (await fleet.api<NodeView>('GET', `/v1/nodes/${nodeId}`)).body;
        expect(v.requested).toEqual({ name: 'secure-1', labels: { zone: 'secure' } });
        return v;
      },
      { timeout: 5_000, interval: 20 },
    );
    expect(view.name).toBe('field-7');
    expect(view.labels).toEqual({});
    await fleet.hub.loop.idle();
    await new Promise((r) => setTimeout(r, 300));
    const vault = (await fleet.api<ServiceView>('GET', '/v1/services/vault')).body;
    expect(vault.status.replicas.map((r) => r.nodeId)).not.toContain(nodeId);
    expect(targets.join('\n')).not.toContain('registry-password');

    // The operator decides: taking the requested name is refused (it is another node's) ...
    const clash = await fleet.api('PATCH', `/v1/nodes/${nodeId}`, { acceptRequested: true });
    expect(clash.status).toBe(409);
    expect(JSON.stringify(clash.body)).toMatch(/secure-1/);
    // ... setting the labels is accepted, and the node gets the global replica.
    const accepted = await fleet.api<NodeView>('PATCH', `/v1/nodes/${nodeId}`, { labels: { zone: 'secure' } });
    expect(accepted.status).toBe(200);
    expect(accepted.body).toMatchObject({ name: 'field-7', labels: { zone: 'secure' }, requested: { name: 'secure-1' } });
    await vi.waitFor(
      async () => {
        const v = (await fleet.api<ServiceView>('GET', '/v1/services/vault')).body;
        expect(v.status.replicas.map((r) => r.nodeId)).toContain(nodeId);
      },
      { timeout: 5_000, interval: 20 },
    );
    intruder.close();
  });

  it('accepts what the device asked for on request, and refuses bad changes with the field named', async () => {
    const { nodeId, credential } = await joinNode('dev-1', { zone: 'a' });
    const ws = await rawNode(credential, { name: 'dev-1b', labels: { zone: 'b' } });
    await vi.waitFor(async () => expect((await fleet.api<NodeView>('GET', `/v1/nodes/${nodeId}`)).body.requested).not.toBeNull(), { timeout: 5_000, interval: 20 });
    const res = await fleet.api<NodeView>('PATCH', `/v1/nodes/${nodeId}`, { acceptRequested: true });
    expect(res.status).toBe(200);
    expect(res.body).toMatchObject({ name: 'dev-1b', labels: { zone: 'b' }, requested: null });
    const again = await fleet.api<{ error: { code: string } }>('PATCH', `/v1/nodes/${nodeId}`, { acceptRequested: true });
    expect(again.status).toBe(409);
    expect(again.body.error.code).toBe('nothing_requested');

    for (const [body, path] of [
      [{}, ''],
      [{ name: '' }, 'name'],
      [{ labels: { '': 'x' } }, 'labels'],
      [{ colour: 'red' }, 'colour'],
      [{ acceptRequested: true, name: 'x' }, 'acceptRequested'],
    ] as const) {
      const bad = await fleet.api<{ error: { details: Array<{ path: string }> } }>('PATCH', `/v1/nodes/${nodeId}`, body);
      expect(bad.status, JSON.stringify(body)).toBe(400);
      if (path) expect(bad.body.error.details.map((d) => d.path).join(' ')).toContain(path);
    }
    expect((await fleet.api('PATCH', '/v1/nodes/nope', { name: 'x' })).status).toBe(404);
    ws.close();
  });

  it("keeps a join token's labels: the device's own at hello are no request, and accepting a request keeps them", async () => {
    const { token } = (await fleet.api<{ token: string }>('POST', '/v1/join-tokens', { labels: { zone: 'north' } })).body;
    const joined = (await fleet.app.inject({ method: 'POST', url: '/v1/join', payload: { joinToken: token, name: 'edge-7', labels: { rack: '4' } } })).json();
    const ws = await rawNode(joined.credential, { name: 'edge-7', labels: { rack: '4' } });
    await fleet.hub.loop.idle();
    // The facts of the hello are stored, and nothing is asked for.
    await vi.waitFor(async () => expect((await fleet.api<NodeView & { facts: unknown }>('GET', `/v1/nodes/${joined.nodeId}`)).body.facts).not.toBeNull(), {
      timeout: 5_000,
      interval: 20,
    });
    let view = (await fleet.api<NodeView>('GET', `/v1/nodes/${joined.nodeId}`)).body;
    expect(view).toMatchObject({ labels: { zone: 'north', rack: '4' }, requested: null });
    ws.close();

    // The device is later started with other labels, among them the token's key: a request.
    const again = await rawNode(joined.credential, { name: 'edge-7', labels: { rack: '5', zone: 'south' } });
    await vi.waitFor(async () => expect((await fleet.api<NodeView>('GET', `/v1/nodes/${joined.nodeId}`)).body.requested).not.toBeNull(), {
      timeout: 5_000,
      interval: 20,
    });
    view = (await fleet.api<NodeView>('PATCH', `/v1/nodes/${joined.nodeId}`, { acceptRequested: true })).body;
    expect(view).toMatchObject({ labels: { rack: '5', zone: 'north' }, requested: null });
    again.close();
  });

  it("shows no request after an operator renames or relabels a node whose device still says what it declared", async () => {
    const { nodeId, credential } = await joinNode('plain-1', { zone: 'a' });
    const renamed = await fleet.api<NodeView>('PATCH', `/v1/nodes/${nodeId}`, { name: 'plain-renamed', labels: { zone: 'b' } });
    expect(renamed.body).toMatchObject({ name: 'plain-renamed', labels: { zone: 'b' }, requested: null });
    const ws = await rawNode(credential, { name: 'plain-1', labels: { zone: 'a' } });
    await vi.waitFor(async () => expect((await fleet.api<NodeView & { facts: unknown }>('GET', `/v1/nodes/${nodeId}`)).body.facts).not.toBeNull(), {
      timeout: 5_000,
      interval: 20,
    });
    expect((await fleet.api<NodeView>('GET', `/v1/nodes/${nodeId}`)).body).toMatchObject({ name: 'plain-renamed', labels: { zone: 'b' }, requested: null });
    ws.close();
  });

  it('refuses a second node with a taken name at join (409), and applies a join token\'s labels', async () => {
    await joinNode('edge-1');
    const { token } = (await fleet.api<{ token: string }>('POST', '/v1/join-tokens', { labels: { zone: 'north' } })).body;
    const taken = await fleet.app.inject({ method: 'POST', url: '/v1/join', payload: { joinToken: token, name: 'edge-1' } });
    expect(taken.statusCode).toBe(409);
    expect(taken.json().error).toMatchObject({ code: 'node_name_taken', details: [{ path: 'name' }] });
    const joined = await fleet.app.inject({ method: 'POST', url: '/v1/join', payload: { joinToken: token, name: 'edge-2', labels: { zone: 'south', rack: '4' } } });
    expect(joined.statusCode).toBe(201);
    const node = (await fleet.api<NodeView>('GET', `/v1/nodes/${joined.json().nodeId}`)).body;
    // The token's labels are the operator's word: they win over what the device asks for.
    expect(node.labels).toEqual({ zone: 'north', rack: '4' });
  });
});
