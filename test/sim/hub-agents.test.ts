import WebSocket from 'ws';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { SimulatedRuntime } from '../../agent/runtime/simulated-runtime.js';
import { CloseCode, MIN_PROTOCOL_VERSION, PROTOCOL_VERSION } from '../../shared/protocol.js';
import { ADMIN_TOKEN, SimFleet, helloFrame } from '../helpers/sim-fleet.js';

const busybox = { image: 'tether-test/busybox:1', command: ['/bin/httpd', '-f', '-p', '8080'] };

interface ReplicaView {
  replicaId: string;
  nodeId: string | null;
  state: string;
  containerId: string | null;
  error: string | null;
}
interface ServiceView {
  revision: number;
  outcome?: string;
  status: { desired: number; running: number; replicas: ReplicaView[] };
}

let fleet: SimFleet;
beforeEach(async () => {
  fleet = await SimFleet.start();
});
afterEach(async () => {
  await fleet.close();
});

async function service(name: string): Promise<ServiceView> {
  const res = await fleet.api<ServiceView>('GET', `/v1/services/${name}`);
  expect(res.status).toBe(200);
  return res.body;
}

/** Waits until the service view shows `running` replicas running and no others. */
async function waitRunning(name: string, running: number): Promise<ServiceView> {
  return vi.waitFor(
    async () => {
      const view = await service(name);
      expect(view.status.running).toBe(running);
      expect(view.status.replicas).toHaveLength(running);
      return view;
    },
    { timeout: 10_000, interval: 50 },
  );
}

const liveContainers = (service: string) =>
  fleet.runtime.containers().filter((c) => c.service === service && c.state === 'running');

describe('hub and agents on a simulated runtime', () => {
  it('deploys, spreads, scales up and down, and deletes', async () => {
    const agents = await Promise.all([fleet.addAgent(), fleet.addAgent(), fleet.addAgent()]);
    const put = await fleet.api<ServiceView>('PUT', '/v1/services/web', { ...busybox, replicas: 4 });
    expect(put.status).toBe(201);
    expect(put.body.outcome).toBe('created');

    let view = await waitRunning('web', 4);
    const perNode = new Map<string, number>();
    for (const r of view.status.replicas) perNode.set(r.nodeId!, (perNode.get(r.nodeId!) ?? 0) + 1);
    expect([...perNode.values()].sort()).toEqual([1, 1, 2]);
    expect(new Set(perNode.keys())).toEqual(new Set(agents.map((a) => a.nodeId)));
    await vi.waitFor(() => expect(liveContainers('web')).toHaveLength(4));
    const firstIds = view.status.replicas.map((r) => r.replicaId).sort();

    const up = await fleet.api<ServiceView>('PUT', '/v1/services/web', { ...busybox, replicas: 6 });
    expect(up.status).toBe(200);
    expect(up.body.revision).toBe(2);
    view = await waitRunning('web', 6);
    // Scaling up keeps the replicas that were there.
    expect(view.status.replicas.map((r) => r.replicaId)).toEqual(expect.arrayContaining(firstIds));

    await fleet.api('PUT', '/v1/services/web', { ...busybox, replicas: 2 });
    await waitRunning('web', 2);
    await vi.waitFor(() => expect(liveContainers('web')).toHaveLength(2));

    const del = await fleet.api('DELETE', '/v1/services/web');
    expect(del.status).toBe(200);
    expect((await fleet.api('GET', '/v1/services/web')).status).toBe(404);
    await vi.waitFor(() => expect(fleet.runtime.containers().filter((c) => c.service === 'web')).toHaveLength(0));
  });

  it('counts every replica but lists one page of them; a bad page is a 400 naming the field', async () => {
    await Promise.all([fleet.addAgent(), fleet.addAgent()]);
    await fleet.api('PUT', '/v1/services/web', { ...busybox, replicas: 5 });
    const all = await waitRunning('web', 5);
    type Paged = ServiceView & {
      status: { states: Record<string, number>; onDownNodes: number; handingOver: number; replicaPage: { offset: number; limit: number; total: number } };
    };
    const page = (await fleet.api<Paged>('GET', '/v1/services/web?offset=1&limit=2')).body.status;
    expect(page.replicas.map((r) => r.replicaId)).toEqual(all.status.replicas.slice(1, 3).map((r) => r.replicaId));
    expect(page.replicaPage).toEqual({ offset: 1, limit: 2, total: 5 });
    expect(page).toMatchObject({ desired: 5, running: 5, states: { running: 5 }, onDownNodes: 0, handingOver: 0 });
    const summary = (await fleet.api<Paged>('GET', '/v1/services/web?limit=0')).body.status;
    expect(summary.replicas).toEqual([]);
    expect(summary.running).toBe(5);
    // The list gives counts only, unless a limit asks for replicas.
    const list = await fleet.api<{ services: Paged[] }>('GET', '/v1/services');
    expect(list.body.services[0]!.status).toMatchObject({ running: 5, replicas: [], replicaPage: { total: 5 } });
    for (const [query, field] of [['limit=10001', 'limit'], ['limit=-1', 'limit'], ['offset=x', 'offset']] as const) {
      const bad = await fleet.api<{ error: { code: string; details: Array<{ path: string }> } }>('GET', `/v1/services/web?${query}`);
      expect(bad.status).toBe(400);
      expect(bad.body.error.code).toBe('invalid_query');
      expect(bad.body.error.details[0]!.path).toBe(field);
    }
  });

  it('spaces passes out under a burst of triggers, and runs none for nodes coming and going while all is settled', async () => {
    await fleet.addAgent();
    await fleet.api('PUT', '/v1/services/web', { ...busybox, replicas: 1 });
    await waitRunning('web', 1);
    await fleet.hub.loop.idle();
    const loop = fleet.hub.loop;

    // Settled: ready/unreachable changes cannot move anything, so they cost no pass.
    let before = loop.passes;
    for (let i = 0; i < 50; i++) loop.nodesChanged();
    await new Promise((r) => setTimeout(r, 400));
    expect(loop.passes).toBe(before);

    // A trigger every 20 ms for a second: passes at least 200 ms apart, not one per trigger.
    before = loop.passes;
    for (let i = 0; i < 50; i++) {
      loop.markDirty();
      await new Promise((r) => setTimeout(r, 20));
    }
    await loop.idle();
    expect(loop.passes - before).toBeGreaterThanOrEqual(2);
    expect(loop.passes - before).toBeLessThanOrEqual(7);

    // A replica that fits nowhere is pending: now a node coming or going may place it.
    await fleet.api('PUT', '/v1/services/nowhere', { ...busybox, replicas: 1, constraints: ['node.labels.zone == mars'] });
    await loop.idle();
    before = loop.passes;
    loop.nodesChanged();
    await loop.idle();
    expect(loop.passes).toBe(before + 1);
  });

  it('exposes Prometheus metrics behind the admin token: nodes by state, sessions, passes, store writes', async () => {
    await fleet.addAgent();
    await fleet.api('PUT', '/v1/services/web', { ...busybox, replicas: 1 });
    await waitRunning('web', 1);
    // One upgrade with a wrong credential, to see it counted by reason.
    const intruder = new WebSocket(`${fleet.url.replace('http', 'ws')}/v1/agent/connect`, { headers: { authorization: 'Bearer tnc_nobody.AAAAAAAAAAAAAAAAAAAA' } });
    intruder.on('error', () => undefined);
    await new Promise((resolve) => intruder.once('unexpected-response', resolve));
    intruder.terminate();
    expect((await fleet.app.inject({ url: '/metrics' })).statusCode).toBe(401);
    const res = await fleet.app.inject({ url: '/metrics', headers: { authorization: `Bearer ${ADMIN_TOKEN}` } });
    expect(res.statusCode).toBe(200);
    expect(res.headers['content-type']).toMatch(/^text\/plain/);
    const value = (series: string): number => {
      const line = res.body.split('\n').find((l) => l.startsWith(`${series} `));
      if (!line) throw new Error(`no ${series} in the metrics`);
      return Number(line.slice(series.length + 1));
    };
    expect(value('tether_nodes{state="ready"}')).toBe(1);
    expect(value('tether_nodes{state="lost"}')).toBe(0);
    expect(value('tether_agent_sessions')).toBe(1);
    expect(value('tether_services')).toBe(1);
    expect(value('tether_scheduler_passes_total')).toBeGreaterThanOrEqual(1);
    expect(value('tether_scheduler_plan_seconds_count')).toBe(value('tether_scheduler_passes_total'));
    expect(value('tether_store_writes_total')).toBeGreaterThanOrEqual(2);
    expect(value('tether_store_written_bytes_total')).toBeGreaterThan(0);
    expect(value('tether_agent_busy_refusals_total')).toBe(0);
    expect(value('tether_agent_upgrades_refused_total{reason="unauthorized"}')).toBe(1);
    expect(value('tether_agent_upgrades_refused_total{reason="address_busy"}')).toBe(0);
    expect(value('tether_agent_handshakes_superseded_total')).toBe(0);
    expect(value('tether_observed_replicas')).toBe(1);
    expect(value('tether_replica_reports_refused_total{reason="not_assigned"}')).toBe(0);
    expect(value('process_resident_memory_bytes')).toBeGreaterThan(0);
    expect(res.body).toMatch(/^nodejs_eventloop_lag_p99_seconds /m);
  });

  it('the same spec again changes nothing and restarts nothing; a new command replaces containers', async () => {
    await fleet.addAgent();
    await fleet.addAgent();
    await fleet.api('PUT', '/v1/services/web', { ...busybox, replicas: 2, env: { A: '1', B: '2' } });
    const before = await waitRunning('web', 2);
    const containerIds = liveContainers('web').map((c) => c.id).sort();

    // Same spec, keys in another order.
    const again = await fleet.api<ServiceView>('PUT', '/v1/services/web', { env: { B: '2', A: '1' }, replicas: 2, ...busybox });
    expect(again.status).toBe(200);
    expect(again.body.outcome).toBe('unchanged');
    expect(again.body.revision).toBe(before.revision);
    await fleet.hub.loop.idle();
    expect(liveContainers('web').map((c) => c.id).sort()).toEqual(containerIds);
    expect(fleet.runtime.calls.removeContainer).toBe(0);

    await fleet.api('PUT', '/v1/services/web', { ...busybox, command: ['/bin/httpd', '-f', '-p', '9090'], replicas: 2 });
    await vi.waitFor(
      async () => {
        const view = await waitRunning('web', 2);
        // Same replicas, new containers.
        expect(view.status.replicas.map((r) => r.replicaId).sort()).toEqual(before.status.replicas.map((r) => r.replicaId).sort());
        const now = liveContainers('web');
        expect(now).toHaveLength(2);
        for (const c of now) expect(containerIds).not.toContain(c.id);
      },
      { timeout: 10_000, interval: 50 },
    );
  });

  it('keeps a replica pending with a reason until a node fits, then places it', async () => {
    await fleet.api('PUT', '/v1/services/edge', { ...busybox, replicas: 1, constraints: ['node.labels.zone == eu-1'] });
    await fleet.hub.loop.idle();
    let view = await service('edge');
    expect(view.status.replicas).toHaveLength(1);
    expect(view.status.replicas[0]!.state).toBe('pending');
    expect(view.status.replicas[0]!.error).toMatch(/node/);

    await fleet.addAgent({ labels: { zone: 'us-1' } });
    await fleet.hub.loop.idle();
    view = await service('edge');
    expect(view.status.replicas[0]!.state).toBe('pending');

    const eu = await fleet.addAgent({ labels: { zone: 'eu-1' } });
    view = await waitRunning('edge', 1);
    expect(view.status.replicas[0]!.nodeId).toBe(eu.nodeId);
  });

  it('never puts two replicas needing one host port on the same node', async () => {
    await fleet.addAgent();
    await fleet.addAgent();
    await fleet.api('PUT', '/v1/services/web', { ...busybox, replicas: 3, ports: [{ containerPort: 8080, hostPort: 18080 }] });
    await vi.waitFor(async () => expect((await service('web')).status.running).toBe(2), { timeout: 10_000, interval: 50 });
    const view = await service('web');
    const nodes = view.status.replicas.filter((r) => r.state === 'running').map((r) => r.nodeId);
    expect(new Set(nodes).size).toBe(2);
    const pending = view.status.replicas.filter((r) => r.state === 'pending');
    expect(pending).toHaveLength(1);
    expect(pending[0]!.error).toMatch(/18080/);
  });

  it('runs a global service on every matching node and follows nodes joining', async () => {
    await fleet.addAgent({ labels: { role: 'sensor' } });
    await fleet.addAgent({ labels: { role: 'gateway' } });
    await fleet.api('PUT', '/v1/services/probe', { ...busybox, mode: 'global', constraints: ['node.labels.role == sensor'] });
    await waitRunning('probe', 1);
    await fleet.addAgent({ labels: { role: 'sensor' } });
    const view = await waitRunning('probe', 2);
    expect(view.status.desired).toBe(2);
    expect(new Set(view.status.replicas.map((r) => r.nodeId)).size).toBe(2);
  });

  it('reports an image that cannot be pulled as the replica error', async () => {
    await fleet.addAgent({ runtime: new SimulatedRuntime({ pullableImages: [] }) });
    await fleet.api('PUT', '/v1/services/bad', { image: 'registry.invalid/nope:1', replicas: 1 });
    await vi.waitFor(
      async () => {
        const r = (await service('bad')).status.replicas[0]!;
        expect(r.state).toBe('failed');
        expect(r.error).toMatch(/pull/i);
      },
      { timeout: 10_000, interval: 50 },
    );
  });

  it('lists nodes with their state, facts and labels', async () => {
    const agent = await fleet.addAgent({ name: 'pi-7', labels: { zone: 'eu-1' } });
    await vi.waitFor(async () => {
      const { body } = await fleet.api<any>('GET', `/v1/nodes/${agent.nodeId}`);
      expect(body).toMatchObject({ id: agent.nodeId, name: 'pi-7', state: 'ready', labels: { zone: 'eu-1' }, facts: { arch: 'x64', cpus: 4 } });
      expect(body.lastSeenAt).toEqual(expect.any(String));
    });
    const list = await fleet.api<any>('GET', '/v1/nodes');
    expect(list.body.nodes.map((n: { id: string }) => n.id)).toEqual([agent.nodeId]);
    await fleet.stopAgent(agent);
    await vi.waitFor(async () => expect((await fleet.api<any>('GET', `/v1/nodes/${agent.nodeId}`)).body.state).toBe('unreachable'));
  });

  it('survives a hub restart: placements kept, nothing restarted', async () => {
    await fleet.addAgent();
    await fleet.addAgent();
    await fleet.api('PUT', '/v1/services/web', { ...busybox, replicas: 3 });
    const before = await waitRunning('web', 3);
    const containerIds = liveContainers('web').map((c) => c.id).sort();
    const creates = fleet.runtime.calls.createContainer;

    await fleet.stopHub();
    await fleet.startHub();
    const after = await waitRunning('web', 3);
    expect(after.status.replicas.map((r) => [r.replicaId, r.nodeId]).sort()).toEqual(before.status.replicas.map((r) => [r.replicaId, r.nodeId]).sort());
    await fleet.hub.loop.idle();
    expect(liveContainers('web').map((c) => c.id).sort()).toEqual(containerIds);
    expect(fleet.runtime.calls.createContainer).toBe(creates);
  });
});

describe('an update that cannot be applied', () => {
  it('shows the replica failed with the reason while its old container keeps serving', async () => {
    await fleet.close();
    fleet = await SimFleet.start();
    const runtime = new SimulatedRuntime({ pullableImages: ['tether-test/busybox:1'] });
    await fleet.addAgent({ runtime });
    await fleet.api('PUT', '/v1/services/web', { ...busybox, replicas: 1 });
    await waitRunning('web', 1);
    const old = runtime.containers().filter((c) => c.service === 'web' && c.state === 'running');
    expect(old).toHaveLength(1);

    // Paused on failure rather than rolled back (the default), so that the failed replica stays to be seen.
    await fleet.api('PUT', '/v1/services/web', { ...busybox, image: 'tether-test/busybox:missing', replicas: 1, update: { failureAction: 'pause' } });
    const view = await vi.waitFor(
      async () => {
        const v = await service('web');
        expect(v.status.replicas[0]).toMatchObject({ state: 'failed', error: expect.stringMatching(/pull access denied/) });
        return v;
      },
      { timeout: 10_000, interval: 50 },
    );
    expect(view.status.running).toBe(0);
    await vi.waitFor(async () => expect((await fleet.api('GET', '/v1/services/web')).body.rollout.state).toBe('paused'), { timeout: 10_000, interval: 50 });
    // The old version still serves, untouched.
    expect(runtime.containers().filter((c) => c.service === 'web' && c.state === 'running').map((c) => c.id)).toEqual(old.map((c) => c.id));
  });
});

describe('the agent endpoint refuses bad peers and keeps serving the rest', () => {
  async function rawConnection(credential: string): Promise<WebSocket> {
    const ws = new WebSocket(`${fleet.url.replace('http', 'ws')}/v1/agent/connect`, { headers: { authorization: `Bearer ${credential}` } });
    await new Promise<void>((resolve, reject) => {
      ws.once('open', () => resolve());
      ws.once('error', reject);
    });
    return ws;
  }
  const closed = (ws: WebSocket) =>
    new Promise<{ code: number; reason: string }>((resolve) => ws.once('close', (code, reason) => resolve({ code, reason: reason.toString() })));

  async function credentialFor(name: string): Promise<string> {
    const { token } = await fleet.hub.nodes.createJoinToken(60);
    return (await fleet.hub.nodes.join(token, name, {}))!.credential;
  }

  const hello = helloFrame('raw');

  it.each([
    ['not JSON', 'hello there', /not valid JSON/],
    ['an unknown frame type', JSON.stringify({ type: 'gossip' }), /unknown frame type/],
    ['a heartbeat before hello', JSON.stringify({ type: 'heartbeat' }), /expected hello first/],
    ['a hello missing its facts', JSON.stringify({ ...hello, facts: undefined }), /facts/],
  ])('closes the connection with 4000 on %s', async (_what, frame, reason) => {
    const healthy = await fleet.addAgent();
    const ws = await rawConnection(await credentialFor('raw'));
    const done = closed(ws);
    ws.send(frame);
    const { code, reason: text } = await done;
    expect(code).toBe(CloseCode.badFrame);
    expect(text).toMatch(reason);
    // Everyone else is unaffected.
    expect(healthy.link.connected).toBe(true);
    expect((await fleet.app.inject({ url: '/healthz' })).statusCode).toBe(200);
  });

  it.each([
    ['newer', PROTOCOL_VERSION + 1],
    ['older', MIN_PROTOCOL_VERSION - 1],
  ])('refuses a %s protocol version than it serves, naming the range it speaks', async (_what, version) => {
    const ws = await rawConnection(await credentialFor('old'));
    const done = closed(ws);
    ws.send(JSON.stringify({ ...hello, protocolVersion: version }));
    const { code, reason } = await done;
    expect(code).toBe(CloseCode.versionMismatch);
    expect(reason).toBe(`protocol version ${version} is not supported: this hub speaks versions ${MIN_PROTOCOL_VERSION} to ${PROTOCOL_VERSION}`);
  });

  it.each([...Array(PROTOCOL_VERSION - MIN_PROTOCOL_VERSION + 1).keys()].map((i) => MIN_PROTOCOL_VERSION + i))(
    'serves an agent of protocol version %i, answering in that version',
    async (version) => {
      const ws = await rawConnection(await credentialFor(`v${version}`));
      const welcome = new Promise<{ type: string; protocolVersion: number }>((resolve) => ws.once('message', (data) => resolve(JSON.parse(data.toString()))));
      ws.send(JSON.stringify({ ...hello, protocolVersion: version }));
      expect(await welcome).toMatchObject({ type: 'welcome', protocolVersion: version });
      ws.close();
    },
  );

  it('closes with 1009 on an oversized frame', async () => {
    const ws = await rawConnection(await credentialFor('big'));
    const done = closed(ws);
    ws.send(JSON.stringify({ ...hello, name: 'x'.repeat(2 * 1024 * 1024) }));
    expect((await done).code).toBe(1009);
  });

  it('refuses an unknown credential at the upgrade with 401', async () => {
    const ws = new WebSocket(`${fleet.url.replace('http', 'ws')}/v1/agent/connect`, {
      headers: { authorization: 'Bearer tnc_00000000-0000-0000-0000-000000000000.AAAAAAAAAAAAAAAAAAAAAAAA' },
    });
    const status = await new Promise<number>((resolve) => ws.once('unexpected-response', (_req, res) => resolve(res.statusCode ?? 0)));
    expect(status).toBe(401);
    ws.on('error', () => undefined);
    ws.terminate();
  });

  it('turns agents away with 503 and a Retry-After while its handshake slots are full, and lets them in later', async () => {
    await fleet.close();
    fleet = await SimFleet.start({ maxPendingHandshakes: 1 });
    // A connection that never says hello holds the only slot.
    const blocker = await rawConnection(await credentialFor('blocker'));
    const refused = new WebSocket(`${fleet.url.replace('http', 'ws')}/v1/agent/connect`, {
      headers: { authorization: `Bearer ${await credentialFor('second')}` },
    });
    refused.on('error', () => undefined);
    const res = await new Promise<{ status: number; retryAfter: string | undefined }>((resolve) =>
      refused.once('unexpected-response', (_req, r) => resolve({ status: r.statusCode ?? 0, retryAfter: r.headers['retry-after'] as string | undefined })),
    );
    refused.terminate();
    expect(res.status).toBe(503);
    expect(Number(res.retryAfter)).toBeGreaterThanOrEqual(1);
    expect(fleet.hub.gateway.refusedBusy).toBe(1);

    const agent = fleet.addAgent();
    await vi.waitFor(() => expect(fleet.hub.gateway.refusedBusy).toBeGreaterThanOrEqual(2), { timeout: 5_000, interval: 20 });
    blocker.terminate();
    // Retry-After is 1 s here; the agent comes back within 0.5-1.5 s of its refusal.
    expect((await agent).link.connected).toBe(true);
  });
});
