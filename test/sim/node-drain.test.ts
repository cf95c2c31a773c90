/**
 * Cordon, drain, uncordon and relabelling with the real hub and agents on the simulated runtime:
 * what a user sees of the fleet's containers and of the node and service views. A drain moves
 * every replica off, each old container stopping only after its replacement serves; a global
 * service leaves; moves follow the update parallelism; an uncordon stops a drain; a node's new
 * labels move what no longer matches; a scale-down removes the unhealthy replica first.
 */
import { afterEach, describe, expect, it, vi } from 'vitest';
import type { SimulatedContainer } from '../../agent/runtime/simulated-runtime.js';
import { SimFleet } from '../helpers/sim-fleet.js';

let fleet: SimFleet;
afterEach(async () => {
  await fleet?.close();
});

const image = 'tether-test/busybox:1';
const until = <T>(fn: () => Promise<T> | T, timeout = 15_000) => vi.waitFor(fn, { timeout, interval: 25 });

interface Replica {
  replicaId: string;
  nodeId: string | null;
  state: string;
  health: string | null;
  replacedBy: string | null;
}
interface Status {
  running: number;
  handingOver: number;
  replicas: Replica[];
}
interface NodeView {
  id: string;
  name: string;
  scheduling: string;
  drain: { replicasLeft: number } | null;
}

const status = async (name: string) => (await fleet.api<{ status: Status }>('GET', `/v1/services/${name}?limit=1000`)).body.status;
const nodeView = async (id: string) => (await fleet.api<NodeView>('GET', `/v1/nodes/${id}`)).body;

/** The node id of the agent named `name`. */
function nodeIdOf(name: string): string {
  for (const n of fleet.hub.nodes.list()) if (n.name === name) return n.id;
  throw new Error(`no node ${name}`);
}

/** The service's containers that run, by node id. */
function running(service: string): SimulatedContainer[] {
  return fleet.runtime.containers().filter((c) => c.service === service && c.state === 'running');
}
const runningOn = (service: string, nodeId: string) => running(service).filter((c) => c.nodeId === nodeId);

/** Three agents, n1 to n3; their node ids. */
async function threeNodes(): Promise<[string, string, string]> {
  await fleet.addAgent({ name: 'n1' });
  await fleet.addAgent({ name: 'n2' });
  await fleet.addAgent({ name: 'n3' });
  return [nodeIdOf('n1'), nodeIdOf('n2'), nodeIdOf('n3')];
}

async function put(name: string, spec: Record<string, unknown>): Promise<void> {
  const res = await fleet.api('PUT', `/v1/services/${name}`, { image, ...spec });
  expect(res.status, JSON.stringify(res.body)).toBeLessThan(300);
}

describe('draining a node', () => {
  it('moves each replica off, the old container stopping only once its replacement is healthy', async () => {
    fleet = await SimFleet.start();
    const [n1] = await threeNodes();
    // A check that turns healthy only when the test says (its default turn is a minute away).
    await put('web', { replicas: 3, healthcheck: { type: 'tcp', port: 8080, interval: '1m', timeout: '1s' }, constraints: ['node.name == n1'] });
    await until(() => expect(runningOn('web', n1)).toHaveLength(3));
    for (const c of running('web')) fleet.runtime.setHealth(c.id, { status: 'healthy', output: null });
    await put('web', { replicas: 3, healthcheck: { type: 'tcp', port: 8080, interval: '1m', timeout: '1s' } });

    const drained = await fleet.api<NodeView>('POST', `/v1/nodes/${n1}/drain`);
    expect(drained.status).toBe(200);
    expect(drained.body.scheduling).toBe('draining');

    const olds = new Set(runningOn('web', n1).map((c) => c.id));
    for (let moved = 0; moved < 3; moved++) {
      // One replacement at a time (parallelism 1), elsewhere; every old container still runs.
      const replacement = await until(() => {
        const fresh = running('web').filter((c) => c.nodeId !== n1 && c.healthSetByTest === null);
        expect(fresh).toHaveLength(1);
        return fresh[0] as SimulatedContainer;
      });
      expect(runningOn('web', n1)).toHaveLength(3 - moved);
      // Not healthy yet: nothing on n1 stops, however long it takes.
      await new Promise((r) => setTimeout(r, 1500));
      expect(runningOn('web', n1)).toHaveLength(3 - moved);
      expect((await nodeView(n1)).drain).toEqual({ replicasLeft: 3 - moved });
      fleet.runtime.setHealth(replacement.id, { status: 'healthy', output: null });
      await until(() => expect(runningOn('web', n1)).toHaveLength(2 - moved));
    }
    expect(running('web').filter((c) => olds.has(c.id))).toEqual([]);
    await until(async () => expect((await nodeView(n1)).drain).toEqual({ replicasLeft: 0 }));
    const s = await status('web');
    expect(s.replicas.filter((r) => r.nodeId === n1)).toEqual([]);
    expect(s.running).toBe(3);
  });

  it('moves as many at once as the update parallelism, a global service leaves, and nothing comes back', async () => {
    fleet = await SimFleet.start();
    await fleet.addAgent({ name: 'n1' });
    const n1 = nodeIdOf('n1');
    await put('web', { replicas: 6, update: { parallelism: 2 } });
    await put('mon', { mode: 'global' });
    await until(() => expect(runningOn('web', n1)).toHaveLength(6));
    await fleet.addAgent({ name: 'n2' });
    await fleet.addAgent({ name: 'n3' });
    await until(() => expect(running('mon')).toHaveLength(3));

    expect((await fleet.api('POST', `/v1/nodes/${n1}/drain`)).status).toBe(200);
    // Watched until the drain is done: never more than two moves at once, and two at first.
    let mostAtOnce = 0;
    await until(async () => {
      const s = await status('web');
      mostAtOnce = Math.max(mostAtOnce, s.handingOver);
      expect(runningOn('web', n1)).toHaveLength(0);
      expect(s.handingOver).toBe(0);
    }, 30_000);
    expect(mostAtOnce).toBe(2);
    expect(running('web')).toHaveLength(6);
    // The global service's replica left the drained node, and no other node got a second one.
    expect(runningOn('mon', n1)).toHaveLength(0);
    expect(running('mon').map((c) => c.nodeId).sort()).toEqual([nodeIdOf('n2'), nodeIdOf('n3')].sort());

    // Scaling up while it drains places nothing there.
    await put('web', { replicas: 9, update: { parallelism: 2 } });
    await until(() => expect(running('web')).toHaveLength(9));
    expect(runningOn('web', n1)).toHaveLength(0);
    expect((await nodeView(n1)).drain).toEqual({ replicasLeft: 0 });
  });
});

describe('cordon and uncordon', () => {
  it('a cordoned node keeps what runs and takes nothing new; uncordoned, it takes new replicas again', async () => {
    fleet = await SimFleet.start();
    const [n1, n2] = await threeNodes();
    await put('web', { replicas: 3 });
    await until(() => expect(running('web')).toHaveLength(3));
    expect(runningOn('web', n1)).toHaveLength(1);

    expect((await fleet.api<NodeView>('POST', `/v1/nodes/${n1}/cordon`)).body.scheduling).toBe('cordoned');
    await put('web', { replicas: 7 });
    await until(() => expect(running('web')).toHaveLength(7));
    expect(runningOn('web', n1)).toHaveLength(1);
    expect(runningOn('web', n2)).toHaveLength(3);

    expect((await fleet.api<NodeView>('POST', `/v1/nodes/${n1}/uncordon`)).body.scheduling).toBe('active');
    await put('web', { replicas: 9 });
    await until(() => expect(running('web')).toHaveLength(9));
    expect(runningOn('web', n1)).toHaveLength(3);
  });

  it('an uncordon stops a drain: the move not yet served is called off and the replica stays', async () => {
    fleet = await SimFleet.start();
    const [n1] = await threeNodes();
    const check = { type: 'tcp', port: 8080, interval: '1m', timeout: '1s' };
    await put('web', { replicas: 2, healthcheck: check, constraints: ['node.name == n1'] });
    await until(() => expect(runningOn('web', n1)).toHaveLength(2));
    for (const c of running('web')) fleet.runtime.setHealth(c.id, { status: 'healthy', output: null });
    await put('web', { replicas: 2, healthcheck: check });
    const before = runningOn('web', n1).map((c) => c.replicaId).sort();

    await fleet.api('POST', `/v1/nodes/${n1}/drain`);
    // A replacement starts elsewhere and never turns healthy.
    await until(() => expect(running('web').filter((c) => c.nodeId !== n1)).toHaveLength(1));
    expect((await fleet.api('POST', `/v1/nodes/${n1}/uncordon`)).status).toBe(200);
    await until(() => expect(running('web').filter((c) => c.nodeId !== n1)).toHaveLength(0));
    expect(runningOn('web', n1).map((c) => c.replicaId).sort()).toEqual(before);
    const s = await status('web');
    expect(s.handingOver).toBe(0);
    expect(s.replicas.map((r) => r.replicaId).sort()).toEqual(before);
  });
});

describe('a node relabelled by its operator', () => {
  it('moves the replicas that no longer match, each old one kept until its replacement runs', async () => {
    fleet = await SimFleet.start();
    await fleet.addAgent({ name: 'n1', labels: { zone: 'a' } });
    await fleet.addAgent({ name: 'n2', labels: { zone: 'a' } });
    await fleet.addAgent({ name: 'n3', labels: { zone: 'b' } });
    const [n1, n2, n3] = [nodeIdOf('n1'), nodeIdOf('n2'), nodeIdOf('n3')];
    await put('web', { replicas: 4, constraints: ['node.labels.zone == a'] });
    await until(() => expect(runningOn('web', n1)).toHaveLength(2));

    const res = await fleet.api<{ labels: Record<string, string> }>('PATCH', `/v1/nodes/${n1}`, { labels: { zone: 'b' } });
    expect(res.status).toBe(200);
    expect(res.body.labels).toEqual({ zone: 'b' });
    // Never fewer than 4 running on the way: each old one stops after its replacement runs.
    let fewest = 4;
    await until(() => {
      fewest = Math.min(fewest, running('web').length);
      expect(runningOn('web', n1)).toHaveLength(0);
      expect(running('web')).toHaveLength(4);
    });
    expect(fewest).toBe(4);
    expect(runningOn('web', n2)).toHaveLength(4);
    expect(runningOn('web', n3)).toHaveLength(0);
  });
});

describe('scale-down order', () => {
  it('removes the unhealthy replica before healthy ones', async () => {
    fleet = await SimFleet.start();
    await threeNodes();
    await put('web', { replicas: 4, healthcheck: { type: 'tcp', port: 8080, interval: '1m', timeout: '1s' } });
    await until(() => expect(running('web')).toHaveLength(4));
    const [sick, ...well] = running('web');
    fleet.runtime.setHealth(sick!.id, { status: 'unhealthy', output: 'connection refused' });
    for (const c of well) fleet.runtime.setHealth(c.id, { status: 'healthy', output: null });
    await until(async () => expect((await status('web')).replicas.find((r) => r.replicaId === sick!.replicaId)?.health).toBe('unhealthy'));

    await put('web', { replicas: 3, healthcheck: { type: 'tcp', port: 8080, interval: '1m', timeout: '1s' } });
    await until(() => expect(running('web')).toHaveLength(3));
    expect(running('web').map((c) => c.replicaId).sort()).toEqual(well.map((c) => c.replicaId).sort());
  });
});
