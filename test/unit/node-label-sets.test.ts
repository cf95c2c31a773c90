/**
 * Nodes with the same labels share one labels object: most of a fleet has one of a few sets, and
 * an object per node record would cost tens of thousands of records some 60 bytes each. Shared,
 * so frozen; and a node's labels still read back in the order they were given. Records read back
 * from disk after a restart share them the same way.
 */
import { describe, expect, it } from 'vitest';
import { JoinTokens } from '../../hub/join-tokens.js';
import { NodeDirectory } from '../../hub/node-directory.js';
import { LowdbStore } from '../../hub/store/lowdb-store.js';
import { silentLogger } from '../helpers/silent-logger.js';
import { tempStores } from '../helpers/temp-stores.js';

const stores = tempStores('tether-label-sets-');

describe('node label sets', () => {
  it('are one frozen object for every node with the same labels in the same order, at join and at an operator change', async () => {
    const store = stores.keep(new LowdbStore({ dir: stores.dir }));
    await store.open();
    const tokens = new JoinTokens({ store, logger: silentLogger });
    const directory = new NodeDirectory(store, silentLogger, () => undefined, tokens);
    const { token } = await tokens.create({ ttlMs: 600_000, uses: 10 });
    const join = async (name: string, labels: Record<string, string>) => store.getNode((await directory.join(token, name, labels)).nodeId)!;

    const a = await join('edge-a', { zone: 'north', tier: 'edge' });
    const b = await join('edge-b', { zone: 'north', tier: 'edge' });
    const c = await join('edge-c', { tier: 'edge', zone: 'north' });
    const d = await join('edge-d', {});
    const e = await join('edge-e', {});
    expect(b.labels).toBe(a.labels);
    expect(e.labels).toBe(d.labels);
    expect(Object.isFrozen(a.labels)).toBe(true);
    expect(() => {
      (a.labels as Record<string, string>).zone = 'south';
    }).toThrow(TypeError);
    expect(c.labels).toEqual(a.labels);
    expect(Object.keys(c.labels)).toEqual(['tier', 'zone']);

    const changed = await directory.update(d.id, { labels: { zone: 'north', tier: 'edge' } });
    expect(changed!.labels).toBe(a.labels);
    expect(store.getNode(a.id)!.labels).toEqual({ zone: 'north', tier: 'edge' });
  });

  it('are shared again by the records a restarted hub reads back, and the facts read back whole', async () => {
    const first = new LowdbStore({ dir: stores.dir });
    await first.open();
    const tokens = new JoinTokens({ store: first, logger: silentLogger });
    const directory = new NodeDirectory(first, silentLogger, () => undefined, tokens);
    const { token } = await tokens.create({ ttlMs: 600_000, uses: 10 });
    const ids: string[] = [];
    for (const name of ['site-a', 'site-b', 'site-c']) ids.push((await directory.join(token, name, { site: 'harbour', tier: 'edge' })).nodeId);
    const other = (await directory.join(token, 'lab-a', { site: 'lab' })).nodeId;
    const facts = { hostname: 'site-a', os: 'linux', osRelease: '6.1.0', arch: 'arm64', cpus: 4, memoryBytes: 4 * 2 ** 30, diskBytes: 64 * 2 ** 30, diskFreeBytes: 20 * 2 ** 30, agentVersion: '0.1.0', runtime: 'docker 27.3.1' };
    await first.putNode({ ...first.getNode(ids[0]!)!, facts });
    await first.close();

    const reopened = stores.keep(new LowdbStore({ dir: stores.dir }));
    await reopened.open();
    const [a, b, c] = ids.map((id) => reopened.getNode(id)!);
    expect(b!.labels).toBe(a!.labels);
    expect(c!.labels).toBe(a!.labels);
    expect(Object.isFrozen(a!.labels)).toBe(true);
    expect(a!.labels).toEqual({ site: 'harbour', tier: 'edge' });
    expect(Object.keys(a!.labels)).toEqual(['site', 'tier']);
    expect(reopened.getNode(other)!.labels).toEqual({ site: 'lab' });
    expect(reopened.getNode(other)!.labels).not.toBe(a!.labels);
    expect(a!.facts).toEqual(facts);
    expect(b!.facts).toBeNull();
  });
});
