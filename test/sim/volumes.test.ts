/**
 * Volumes across the real hub and agents on the simulated runtime: a purge removes a deleted
 * service's volumes on every node (a node away does it when it returns), a plain delete keeps them;
 * an operator's move starts the replica on another node with that node's volume, and leaves the
 * data where it was.
 */
import { afterEach, describe, expect, it, vi } from 'vitest';
import { Agent } from '../../agent/agent.js';
import { engineVolumeName } from '../../agent/runtime/spec-mounts.js';
import { SimFleet, simFacts } from '../helpers/sim-fleet.js';
import { silentLogger } from '../helpers/silent-logger.js';

let fleet: SimFleet;
const extraAgents: Agent[] = [];
afterEach(async () => {
  for (const a of extraAgents.splice(0)) await a.stop();
  await fleet?.close();
});

const image = 'tether-test/busybox:1';
const until = <T>(fn: () => Promise<T> | T, timeout = 15_000) => vi.waitFor(fn, { timeout, interval: 25 });
const specWithVolume = (replicas: number) => ({ image, replicas, volumes: [{ name: 'data', target: '/data' }] });

function nodeIdOf(name: string): string {
  for (const n of fleet.hub.nodes.list()) if (n.name === name) return n.id;
  throw new Error(`no node ${name}`);
}
const volumeNames = () => fleet.runtime.volumes().map((v) => v.name).sort();
const containersOf = (service: string) => fleet.runtime.containers().filter((c) => c.service === service);

describe('volumes on a simulated fleet', () => {
  it('purges a deleted service\'s volumes on every node, an offline one when it returns, and keeps those of a plain delete', async () => {
    fleet = await SimFleet.start();
    await fleet.addAgent({ name: 'n1' });
    const n2Agent = await fleet.addAgent({ name: 'n2' });
    const [n1, n2] = [nodeIdOf('n1'), nodeIdOf('n2')];
    expect((await fleet.api('PUT', '/v1/services/keep', specWithVolume(2))).status).toBe(201);
    expect((await fleet.api('PUT', '/v1/services/db', specWithVolume(2))).status).toBe(201);
    const keepVolumes = [engineVolumeName(n1, 'keep', 'data'), engineVolumeName(n2, 'keep', 'data')];
    const dbVolumes = [engineVolumeName(n1, 'db', 'data'), engineVolumeName(n2, 'db', 'data')];
    await until(() => expect(volumeNames()).toEqual([...keepVolumes, ...dbVolumes].sort()));
    // Each volume is labelled with its node and service (what a purge checks before it removes one).
    expect(fleet.runtime.volumes().find((v) => v.name === dbVolumes[0])?.labels).toMatchObject({ 'io.tether.node-id': n1, 'io.tether.service': 'db', 'io.tether.volume': 'data' });

    expect((await fleet.api('DELETE', '/v1/services/keep')).body).toMatchObject({ volumesKept: ['data'] });
    await until(() => expect(containersOf('keep')).toEqual([]));

    // n2 goes away (its container stays, as a stopped agent leaves them); the purge waits for it.
    const identity = (n2Agent as unknown as { opts: { identity: { hubUrl: string; nodeId: string; credential: string } } }).opts.identity;
    await fleet.stopAgent(n2Agent);
    expect((await fleet.api('DELETE', '/v1/services/db?purgeVolumes=true')).body).toMatchObject({ volumesPurged: ['data'] });
    await until(() => expect(volumeNames()).toEqual([...keepVolumes, dbVolumes[1]!].sort()));
    expect(containersOf('db').map((c) => c.nodeId)).toEqual([n2]);

    // Back: its container goes, then its volume; the plain delete's volumes stay throughout.
    const back = new Agent({
      identity,
      name: 'n2',
      labels: {},
      advertiseAddress: null,
      publishAddress: '127.0.0.99',
      runtime: fleet.runtime,
      targetCache: null,
      facts: simFacts({ hostname: 'n2' }),
      logger: silentLogger,
      resyncIntervalMs: 200,
      retryBaseMs: 50,
      reconnectBaseMs: 50,
      reconnectCapMs: 500,
    });
    extraAgents.push(back);
    await back.start();
    await until(() => {
      expect(containersOf('db')).toEqual([]);
      expect(volumeNames()).toEqual(keepVolumes.sort());
    });
  });

  it('moves a replica on request: the new node makes its own volume, the old node keeps the data', async () => {
    fleet = await SimFleet.start();
    for (const name of ['n1', 'n2', 'n3']) await fleet.addAgent({ name });
    expect((await fleet.api('PUT', '/v1/services/db', specWithVolume(1))).status).toBe(201);
    await until(() => expect(containersOf('db').filter((c) => c.state === 'running')).toHaveLength(1));
    const [first] = containersOf('db');
    const from = first!.nodeId;
    const to = ['n1', 'n2', 'n3'].map(nodeIdOf).find((id) => id !== from)!;
    const moved = await fleet.api('POST', `/v1/services/db/replicas/${first!.replicaId}/move`, { toNode: to });
    expect(moved.status).toBe(202);
    await until(() => {
      const running = containersOf('db');
      expect(running.map((c) => [c.nodeId, c.replicaId, c.state])).toEqual([[to, moved.body.replacement, 'running']]);
    });
    expect(volumeNames()).toEqual([engineVolumeName(from, 'db', 'data'), engineVolumeName(to, 'db', 'data')].sort());
    const mount = containersOf('db')[0]!.inputs?.mounts.find((m) => m.type === 'volume');
    expect(mount).toMatchObject({ source: engineVolumeName(to, 'db', 'data'), target: '/data' });
  });
});
