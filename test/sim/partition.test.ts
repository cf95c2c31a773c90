/**
 * A partition on the hub's side: every agent cut off from the hub at once, for twice lostAfter,
 * then healed. The devices kept running their replicas all along; the hub must not restart or
 * move any of them (fleet disruption mode), while a single node cut the same way still fails over.
 */
import { afterEach, describe, expect, it, vi } from 'vitest';
import type { Agent } from '../../agent/agent.js';
import { FaultProxy } from '../helpers/fault-proxy.js';
import { SimFleet } from '../helpers/sim-fleet.js';

const FAST = { heartbeatIntervalMs: 200, heartbeatGraceMs: 800, lostAfterMs: 1500, startupGraceMs: 1000 };
const spec = { image: 'tether-test/busybox:1', command: ['/bin/httpd', '-f', '-p', '8080'] };

let fleet: SimFleet;
const proxies: FaultProxy[] = [];
afterEach(async () => {
  await Promise.all(proxies.splice(0).map((p) => p.close()));
  await fleet?.close();
});

interface Replica {
  replicaId: string;
  nodeId: string | null;
  movedFrom: string | null;
  replacedBy: string | null;
}

async function status(name: string): Promise<{ running: number; replicas: Replica[] }> {
  return (await fleet.api<{ status: { running: number; replicas: Replica[] } }>('GET', `/v1/services/${name}`)).body.status;
}

async function fleetBehindProxies(n: number): Promise<Array<{ agent: Agent; proxy: FaultProxy }>> {
  const out = [];
  for (let i = 0; i < n; i++) {
    const proxy = await FaultProxy.start({ target: { host: '127.0.0.1', port: Number(new URL(fleet.url).port) } });
    proxies.push(proxy);
    out.push({ agent: await fleet.addAgent({ hubUrl: proxy.url }), proxy });
  }
  return out;
}

/** What the simulated engines run for a service: container id, replica, node, policy restarts. */
function containers(service: string): string[] {
  return fleet.runtime
    .containers()
    .filter((c) => c.service === service)
    .map((c) => `${c.id} ${c.replicaId}@${c.nodeId} ${c.state} restarts=${c.restartCount}`)
    .sort();
}

const placements = async (service: string) => (await status(service)).replicas.map((r) => `${r.replicaId}@${r.nodeId}`).sort();

describe('partition on the hub side', () => {
  it('every agent cut for 2x lostAfter, then healed: no replica restarted or moved', async () => {
    fleet = await SimFleet.start(FAST);
    const links = await fleetBehindProxies(4);
    await fleet.api('PUT', '/v1/services/web', { ...spec, replicas: 4 });
    await vi.waitFor(async () => expect((await status('web')).running).toBe(4), { timeout: 10_000, interval: 50 });
    const placedBefore = await placements('web');
    const containersBefore = containers('web');
    const creates = fleet.runtime.calls.createContainer;

    for (const l of links) l.proxy.cut();
    await new Promise((r) => setTimeout(r, 2 * FAST.lostAfterMs));
    const during = await fleet.api<{ state: string; fleetDisruption: unknown }>('GET', `/v1/nodes/${links[0]!.agent.nodeId}`);
    expect(during.body.state).toBe('unreachable');
    expect(during.body.fleetDisruption).toMatchObject({ awayNodes: 4, countedNodes: 4 });
    for (const l of links) l.proxy.restore();

    await vi.waitFor(async () => expect((await status('web')).running).toBe(4), { timeout: 10_000, interval: 50 });
    // Past another lostAfter, with any pass the return asked for done.
    await new Promise((r) => setTimeout(r, FAST.lostAfterMs + FAST.heartbeatGraceMs));
    await fleet.hub.loop.idle();
    const after = await status('web');
    expect(after.replicas.filter((r) => r.movedFrom !== null || r.replacedBy !== null)).toEqual([]);
    expect(await placements('web')).toEqual(placedBefore);
    expect(containers('web')).toEqual(containersBefore);
    expect(fleet.runtime.calls.createContainer).toBe(creates);
    const metrics = await fleet.app.inject({ url: '/metrics', headers: { authorization: 'Bearer tat_test-admin-token' } });
    expect(metrics.body).toMatch(/^tether_fleet_disruption 0$/m);
  }, 30_000);

  it('one node of four cut for 2x lostAfter still fails over', async () => {
    fleet = await SimFleet.start(FAST);
    const links = await fleetBehindProxies(4);
    await fleet.api('PUT', '/v1/services/web', { ...spec, replicas: 4 });
    await vi.waitFor(async () => expect((await status('web')).running).toBe(4), { timeout: 10_000, interval: 50 });
    const cut = links[0]!;
    cut.proxy.cut();
    await vi.waitFor(
      async () => {
        const s = await status('web');
        expect(s.running).toBe(4);
        expect(s.replicas.some((r) => r.movedFrom === cut.agent.nodeId && r.nodeId !== cut.agent.nodeId)).toBe(true);
      },
      { timeout: 10_000, interval: 50 },
    );
    const view = await fleet.api<{ state: string; fleetDisruption: unknown }>('GET', `/v1/nodes/${cut.agent.nodeId}`);
    expect(view.body).toMatchObject({ state: 'lost', fleetDisruption: null });
  }, 30_000);
});
