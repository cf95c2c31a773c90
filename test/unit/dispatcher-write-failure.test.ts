import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { Dispatcher } from '../../hub/dispatcher.js';
import { LowdbStore } from '../../hub/store/lowdb-store.js';
import type { NodeRecord, ServiceRecord } from '../../hub/store/store.js';
import type { TargetFrame } from '../../shared/protocol.js';
import { validateServiceSpec } from '../../hub/spec/service-spec.js';

let dir: string;
const control = { failWith: null as string | null };

beforeEach(async () => {
  dir = await mkdtemp(path.join(os.tmpdir(), 'tether-dispatch-fail-'));
  control.failWith = null;
});
afterEach(async () => {
  await rm(dir, { recursive: true, force: true });
});

async function setUp() {
  const store = new LowdbStore({
    dir,
    nodeShards: 2,
    serviceShards: 2,
    beforeWrite: () => {
      if (control.failWith) throw Object.assign(new Error('simulated'), { code: control.failWith });
    },
  });
  await store.open();
  const n1: NodeRecord = { id: 'n1', name: 'n1', labels: {}, credentialHash: 'h', advertiseAddress: null, facts: null, generation: 0, targetHash: '', joinedAt: 'j' };
  await store.putNode(n1);
  const sent: Array<{ nodeId: string; frame: TargetFrame }> = [];
  const dispatcher = new Dispatcher(store, (nodeId, frame) => {
    sent.push({ nodeId, frame });
    return true;
  });
  dispatcher.load();
  await dispatcher.publish();
  // The node's first (empty) target: what follows is about the next one.
  sent.length = 0;
  const v = validateServiceSpec({ image: 'nginx:1' });
  if (!v.ok) throw new Error('bad spec');
  const web: ServiceRecord = {
    name: 'web',
    spec: v.value,
    revision: 1,
    createdAt: '',
    updatedAt: '',
    placements: [{ replicaId: 'r1', nodeId: 'n1', pendingReason: null }] as ServiceRecord['placements'],
  };
  await store.putService(web);
  return { store, dispatcher, sent };
}

describe('Dispatcher: a target write that fails', () => {
  it('keeps the node dirty, sends nothing, and the next publish sends the target', async () => {
    const { store, dispatcher, sent } = await setUp();
    control.failWith = 'ENOSPC';
    await expect(dispatcher.publish()).rejects.toMatchObject({ code: 'ENOSPC' });
    expect(sent).toEqual([]);
    expect(store.getNode('n1')?.generation).toBe(1);

    control.failWith = null;
    // Still dirty: the next publish sends it with no other change asking for it.
    expect(await dispatcher.publish()).toBe(1);
    expect(sent).toHaveLength(1);
    expect(sent[0]).toMatchObject({ nodeId: 'n1', frame: { generation: 2, replicas: [{ replicaId: 'r1' }] } });
    expect(store.getNode('n1')?.generation).toBe(2);
  });

  it('sends the target even when a lazy write of the node was made on top of the failed bump', async () => {
    const { store, dispatcher, sent } = await setUp();
    control.failWith = 'ENOSPC';
    const publishing = dispatcher.publish();
    // A hello's facts land on top of the bump while its write is in flight: the store keeps them,
    // without the bump the disk refused.
    void store.putNode({ ...store.getNode('n1')!, labels: { hello: 'yes' } }, { lazy: true }).catch(() => undefined);
    await expect(publishing).rejects.toMatchObject({ code: 'ENOSPC' });
    expect(sent).toEqual([]);
    expect(store.getNode('n1')).toMatchObject({ generation: 1, labels: { hello: 'yes' } });

    control.failWith = null;
    await dispatcher.publish();
    expect(sent).toHaveLength(1);
    expect(sent[0]).toMatchObject({ nodeId: 'n1', frame: { generation: 2, replicas: [{ replicaId: 'r1' }] } });
    await store.close();
    const again = new LowdbStore({ dir, nodeShards: 2, serviceShards: 2 });
    await again.open();
    expect(again.getNode('n1')).toMatchObject({ generation: 2, labels: { hello: 'yes' } });
  });
});

describe('Dispatcher: a replica a write in flight takes from its node', () => {
  it('may still be reported on by the node until the write lands, and stays its own if the write is refused', async () => {
    const { store, dispatcher } = await setUp();
    const web = { ...store.getService('web')!, revision: 2 };
    await store.putService(web);
    expect(dispatcher.mayReport('n1', 'r1')).toBe(true);

    control.failWith = 'ENOSPC';
    const moving = store.putService({ ...web, placements: [{ replicaId: 'r1', nodeId: null, pendingReason: 'no node fits' }] });
    // A hello meanwhile: its report of r1 must not be lost, since the write may yet be refused.
    expect(dispatcher.isAssigned('n1', 'r1')).toBe(false);
    expect(dispatcher.mayReport('n1', 'r1')).toBe(true);
    await expect(moving).rejects.toMatchObject({ code: 'ENOSPC' });
    expect(dispatcher.isAssigned('n1', 'r1')).toBe(true);

    control.failWith = null;
    const moved = store.putService({ ...web, placements: [{ replicaId: 'r1', nodeId: null, pendingReason: 'no node fits' }] });
    expect(dispatcher.mayReport('n1', 'r1')).toBe(true);
    await moved;
    // Landed: the node has nothing more to say of it.
    expect(dispatcher.mayReport('n1', 'r1')).toBe(false);
  });
});
