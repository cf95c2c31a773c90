/**
 * A hub whose nodes shard was restored from an older copy (what `tether-hub --recover` does) holds
 * generations below what its agents already applied; an agent ignores a target older than its own,
 * so without care the node would take no change for as many changes as the store lost.
 */
import { readdir, readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { afterEach, expect, it, vi } from 'vitest';
import { SimFleet } from '../helpers/sim-fleet.js';

const busybox = { image: 'tether-test/busybox:1', command: ['/bin/httpd', '-f', '-p', '8080'] };

let fleet: SimFleet;
afterEach(async () => {
  await fleet?.close();
});

const running = () => fleet.runtime.containers().filter((c) => c.service === 'web' && c.state === 'running');

/** The nodes shard files as they are now: file -> bytes. */
async function nodesShards(): Promise<Map<string, Buffer>> {
  const dir = path.join(fleet.storeDir, 'nodes');
  const out = new Map<string, Buffer>();
  for (const f of await readdir(dir)) if (/^nodes-\d+\.json$/.test(f)) out.set(path.join(dir, f), await readFile(path.join(dir, f)));
  return out;
}

it('sends a node ahead of its restored store its next target above what it applied', async () => {
  fleet = await SimFleet.start();
  const agent = await fleet.addAgent();
  const generationOf = async () => (await fleet.api<{ generation: { target: number; applied: number | null } }>('GET', `/v1/nodes/${agent.nodeId}`)).body.generation;
  /** A spec change, applied by the node: one generation more. */
  const put = async (port: string) => {
    const before = (await generationOf()).target;
    expect((await fleet.api('PUT', '/v1/services/web', { ...busybox, command: ['/bin/httpd', '-f', '-p', port] })).status).toBeLessThan(300);
    await vi.waitFor(async () => expect(await generationOf()).toMatchObject({ target: before + 1, applied: before + 1 }), { timeout: 10_000, interval: 20 });
  };
  await put('8080');
  const older = await nodesShards();
  const olderGeneration = (await generationOf()).target;
  // Three more targets reach the node after that copy.
  for (const port of ['8081', '8082', '8083']) await put(port);
  expect(await generationOf()).toMatchObject({ target: olderGeneration + 3, applied: olderGeneration + 3 });

  await fleet.stopHub();
  for (const [file, bytes] of older) await writeFile(file, bytes);
  const restored = [...older.values()].map((bytes) => JSON.parse(bytes.toString()) as { data: Record<string, { generation: number }> });
  expect(restored.find((f) => agent.nodeId in f.data)!.data[agent.nodeId]!.generation).toBeLessThanOrEqual(olderGeneration);
  await fleet.startHub();

  // One change: the node runs it, under a generation above any it had applied.
  expect((await fleet.api('PUT', '/v1/services/web', { ...busybox, image: 'tether-test/busybox:2' })).status).toBe(200);
  await vi.waitFor(() => expect(running().map((c) => c.image)).toEqual(['tether-test/busybox:2']), { timeout: 10_000, interval: 20 });
  expect(fleet.hub.store.getNode(agent.nodeId)!.generation).toBeGreaterThan(olderGeneration + 3);
}, 40_000);
