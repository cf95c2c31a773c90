import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { Dispatcher } from '../../hub/dispatcher.js';
import { LowdbStore } from '../../hub/store/lowdb-store.js';
import type { NodeRecord, ServiceRecord, StoreChange } from '../../hub/store/store.js';
import { validateServiceSpec } from '../../hub/spec/service-spec.js';

let dir: string;
const control = { fail: false, hold: null as Promise<void> | null };

beforeEach(async () => {
  dir = await mkdtemp(path.join(os.tmpdir(), 'tether-store-notifies-'));
  control.fail = false;
  control.hold = null;
});
afterEach(async () => {
  await rm(dir, { recursive: true, force: true });
});

async function openStore(): Promise<LowdbStore> {
  const store = new LowdbStore({
    dir,
    nodeShards: 2,
    serviceShards: 2,
    beforeWrite: async () => {
      if (control.hold) await control.hold;
      if (control.fail) throw Object.assign(new Error('simulated'), { code: 'ENOSPC' });
    },
  });
  await store.open();
  return store;
}

const node = (id: string): NodeRecord => ({ id, name: id, labels: {}, credentialHash: 'h', advertiseAddress: null, facts: null, generation: 0, targetHash: '', joinedAt: 'j' });

function service(name: string, nodeId: string): ServiceRecord {
  const v = validateServiceSpec({ image: 'nginx:1' });
  if (!v.ok) throw new Error('bad spec');
  return { name, spec: v.value, revision: 1, createdAt: '', updatedAt: '', placements: [{ replicaId: `${name}.r1`, nodeId, pendingReason: null }] };
}

describe('Store: subscribers hear of every change of memory', () => {
  it('puts, lazy puts, deletes and the undo of a refused write, with before, after and the write', async () => {
    const store = await openStore();
    const seen: StoreChange[] = [];
    const stop = store.subscribe((c) => seen.push(c));

    const a = node('a');
    const written = store.putNode(a);
    expect(seen).toEqual([{ collection: 'nodes', key: 'a', before: undefined, after: a, written }]);
    await written;

    const facts = { ...a, name: 'renamed' };
    const lazy = store.putNode(facts, { lazy: true });
    expect(seen[1]).toMatchObject({ collection: 'nodes', key: 'a', before: a, after: facts });
    expect(seen[1]!.written).toBe(lazy);
    await store.close();

    control.fail = true;
    const web = service('web', 'a');
    const refused = store.putService(web);
    expect(seen[2]).toMatchObject({ collection: 'services', key: 'web', before: undefined, after: web });
    await expect(refused).rejects.toThrow();
    // The undo: memory back to what the disk holds, nothing left to write.
    expect(seen[3]).toEqual({ collection: 'services', key: 'web', before: web, after: undefined, written: null });
    expect(store.getService('web')).toBeUndefined();

    control.fail = false;
    const deleted = store.deleteNode('a');
    expect(seen[4]).toEqual({ collection: 'nodes', key: 'a', before: facts, after: undefined, written: deleted });
    await deleted;

    stop();
    await store.putNode(node('b'));
    expect(seen).toHaveLength(5);
  });
});

describe('Dispatcher: follows the store with no call by hand', () => {
  async function setUp() {
    const store = await openStore();
    await store.putNode(node('n1'));
    await store.putNode(node('n2'));
    const released: string[] = [];
    const dispatcher = new Dispatcher(
      store,
      () => true,
      (nodeId, replicaId) => released.push(`${nodeId}/${replicaId}`),
    );
    dispatcher.load();
    return { store, dispatcher, released };
  }

  it('indexes a written service, and goes back when the store undoes a refused write', async () => {
    const { store, dispatcher, released } = await setUp();
    const web = service('web', 'n1');
    await store.putService(web);
    expect(dispatcher.isAssigned('n1', 'web.r1')).toBe(true);

    control.fail = true;
    const moved = store.putService({ ...web, placements: [{ replicaId: 'web.r1', nodeId: 'n2', pendingReason: null }] });
    expect(dispatcher.isAssigned('n2', 'web.r1')).toBe(true);
    expect(dispatcher.isAssigned('n1', 'web.r1')).toBe(false);
    await expect(moved).rejects.toThrow();
    expect(dispatcher.isAssigned('n1', 'web.r1')).toBe(true);
    expect(dispatcher.isAssigned('n2', 'web.r1')).toBe(false);
    // The move never landed: n1 keeps its replica's state; n2's undone assignment lets go of it.
    await new Promise((r) => setImmediate(r));
    expect(released).toEqual(['n2/web.r1']);
  });

  it('lets go of a deleted service only once the delete lands, and not at all when it fails', async () => {
    const { store, dispatcher, released } = await setUp();
    await store.putService(service('web', 'n1'));

    control.fail = true;
    await expect(store.deleteService('web')).rejects.toThrow();
    expect(dispatcher.isAssigned('n1', 'web.r1')).toBe(true);
    expect(released).toEqual([]);

    control.fail = false;
    let land!: () => void;
    control.hold = new Promise<void>((r) => (land = r));
    const deleted = store.deleteService('web');
    await new Promise((r) => setTimeout(r, 20));
    // In flight: the targets still carry the replica.
    expect(dispatcher.isAssigned('n1', 'web.r1')).toBe(true);
    land();
    await deleted;
    await new Promise((r) => setImmediate(r));
    expect(dispatcher.isAssigned('n1', 'web.r1')).toBe(false);
    expect(released).toEqual(['n1/web.r1']);
  });
});
