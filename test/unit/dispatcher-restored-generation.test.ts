/**
 * A nodes shard restored from its previous copy (`tether-hub --recover`) may hold a generation
 * below what the node's agent already applied; the agent ignores a target older than its own, so
 * the hub must move the node's generation above it, or the node never takes a change again.
 */
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { Dispatcher, MAX_BELIEVED_GENERATION } from '../../hub/dispatcher.js';
import { LowdbStore } from '../../hub/store/lowdb-store.js';
import type { NodeRecord, ServiceRecord } from '../../hub/store/store.js';
import type { TargetFrame } from '../../shared/protocol.js';
import { validateServiceSpec } from '../../hub/spec/service-spec.js';

let dir: string;
beforeEach(async () => {
  dir = await mkdtemp(path.join(os.tmpdir(), 'tether-restored-generation-'));
});
afterEach(async () => {
  await rm(dir, { recursive: true, force: true });
});

/** A hub whose node n1 runs `web` at generation 3 as far as its (restored) store knows. */
async function restoredHub() {
  const store = new LowdbStore({ dir, nodeShards: 2, serviceShards: 2 });
  await store.open();
  const n1: NodeRecord = { id: 'n1', name: 'n1', labels: {}, credentialHash: 'h', advertiseAddress: null, facts: null, generation: 2, targetHash: '', joinedAt: 'j' };
  await store.putNode(n1);
  const v = validateServiceSpec({ image: 'nginx:1' });
  if (!v.ok) throw new Error('bad spec');
  const web: ServiceRecord = { name: 'web', spec: v.value, revision: 1, createdAt: '', updatedAt: '', placements: [{ replicaId: 'r1', nodeId: 'n1', pendingReason: null }] as ServiceRecord['placements'] };
  await store.putService(web);
  const sent: Array<{ nodeId: string; frame: TargetFrame }> = [];
  const dispatcher = new Dispatcher(store, (nodeId, frame) => {
    sent.push({ nodeId, frame });
    return true;
  });
  dispatcher.load();
  await dispatcher.publish();
  expect(store.getNode('n1')?.generation).toBe(3);
  sent.length = 0;
  return { store, dispatcher, sent };
}

describe('Dispatcher: a node that applied a generation the store does not know', () => {
  it('moves the node above the generation it applied, durably, and sends its target with it', async () => {
    const { store, dispatcher, sent } = await restoredHub();
    // The agent applied generation 7 before the store was restored to generation 3.
    expect(dispatcher.currentTarget('n1', 7)).toBeNull();
    await dispatcher.publish();
    expect(sent).toHaveLength(1);
    expect(sent[0]!.frame.generation).toBe(8);
    expect(sent[0]!.frame.replicas.map((r) => r.replicaId)).toEqual(['r1']);
    expect(store.getNode('n1')?.generation).toBe(8);
    // Once there, the node is like any other: its hello gets the target as it stands.
    expect(dispatcher.currentTarget('n1', 8)).toMatchObject({ generation: 8 });
  });

  it('sends the target as it stands to a node at or below the store generation', async () => {
    const { dispatcher } = await restoredHub();
    expect(dispatcher.currentTarget('n1', 3)).toMatchObject({ generation: 3 });
    expect(dispatcher.currentTarget('n1', 0)).toMatchObject({ generation: 3 });
    expect(await dispatcher.publish()).toBe(0);
  });

  it('believes no generation past what it can count above', async () => {
    const { dispatcher } = await restoredHub();
    expect(dispatcher.currentTarget('n1', Number.MAX_SAFE_INTEGER)).toMatchObject({ generation: 3 });
    // Nor one so high that the node would be left little room to grow.
    expect(dispatcher.currentTarget('n1', MAX_BELIEVED_GENERATION + 1)).toMatchObject({ generation: 3 });
    expect(await dispatcher.publish()).toBe(0);
  });
});

describe('Dispatcher: a hello during a target write', () => {
  it('keeps what the hello told for the next publish', async () => {
    let hold: Promise<void> | null = null;
    let release = () => undefined as void;
    const store = new LowdbStore({ dir, nodeShards: 1, serviceShards: 1, beforeWrite: () => hold ?? undefined });
    await store.open();
    await store.putNode({ id: 'n1', name: 'n1', labels: {}, credentialHash: 'h', advertiseAddress: null, facts: null, generation: 2, targetHash: '', joinedAt: 'j' });
    const sent: TargetFrame[] = [];
    const dispatcher = new Dispatcher(store, (_nodeId, frame) => {
      sent.push(frame);
      return true;
    });
    dispatcher.load();
    hold = new Promise<void>((resolve) => (release = resolve));
    // The first pass after a restart writes the node's target (generation 3)...
    const first = dispatcher.publish();
    await new Promise((r) => setTimeout(r, 20));
    // ...while the node's hello says it applied 7.
    expect(dispatcher.currentTarget('n1', 7)).toBeNull();
    hold = null;
    release();
    await first;
    await dispatcher.publish();
    expect(sent.map((f) => f.generation)).toEqual([3, 8]);
    expect(store.getNode('n1')?.generation).toBe(8);
  });
});

describe('Dispatcher: a hello during a target write that fails', () => {
  it('hands the node no generation before it is on disk, so no generation ever means two targets', async () => {
    let gate: ((fail: boolean) => void) | null = null;
    let hold = false;
    const store = new LowdbStore({
      dir,
      nodeShards: 1,
      serviceShards: 1,
      beforeWrite: (file) => {
        if (!hold || !file.includes('nodes-')) return;
        return new Promise<void>((resolve, reject) => {
          gate = (fail) => (fail ? reject(Object.assign(new Error('no space left'), { code: 'ENOSPC' })) : resolve());
        });
      },
    });
    await store.open();
    await store.putNode({ id: 'n1', name: 'n1', labels: {}, credentialHash: 'h', advertiseAddress: null, facts: null, generation: 1, targetHash: '', joinedAt: 'j' });
    const sent: TargetFrame[] = [];
    const dispatcher = new Dispatcher(store, (_nodeId, frame) => {
      sent.push(frame);
      return true;
    });
    dispatcher.load();
    await dispatcher.publish(); // generation 2: the empty target
    const service = (name: string, replicaId: string): ServiceRecord => {
      const v = validateServiceSpec({ image: 'nginx:1' });
      if (!v.ok) throw new Error('bad spec');
      return { name, spec: v.value, revision: 1, createdAt: '', updatedAt: '', placements: [{ replicaId, nodeId: 'n1', pendingReason: null }] as ServiceRecord['placements'] };
    };
    dispatcher.serviceChanged('a', service('a', 'ra'));
    hold = true;
    const first = dispatcher.publish().catch(() => 'failed'); // generation 3, held
    await new Promise((r) => setTimeout(r, 20));
    // The agent reconnects meanwhile: what its hello is answered with reaches it.
    const toHello = dispatcher.currentTarget('n1', 2);
    if (toHello) sent.push(toHello);
    gate!(true); // the write fails: the disk keeps generation 2
    expect(await first).toBe('failed');
    hold = false;
    dispatcher.serviceChanged('b', service('b', 'rb'));
    await dispatcher.publish();
    const byGeneration = new Map<number, string>();
    for (const f of sent) {
      const ids = f.replicas.map((r) => r.replicaId).join(',');
      expect(byGeneration.get(f.generation) ?? ids).toBe(ids);
      byGeneration.set(f.generation, ids);
    }
    expect(sent.at(-1)).toMatchObject({ generation: 3 });
    expect(sent.at(-1)!.replicas.map((r) => r.replicaId)).toEqual(['ra', 'rb']);
  });

  it('sends the target once its write lands, to a node that said hello meanwhile', async () => {
    let release = () => undefined as void;
    let hold: Promise<void> | null = null;
    const store = new LowdbStore({ dir, nodeShards: 1, serviceShards: 1, beforeWrite: () => hold ?? undefined });
    await store.open();
    await store.putNode({ id: 'n1', name: 'n1', labels: {}, credentialHash: 'h', advertiseAddress: null, facts: null, generation: 2, targetHash: '', joinedAt: 'j' });
    const sent: TargetFrame[] = [];
    const dispatcher = new Dispatcher(store, (_nodeId, frame) => {
      sent.push(frame);
      return true;
    });
    dispatcher.load();
    hold = new Promise<void>((resolve) => (release = resolve));
    const first = dispatcher.publish();
    await new Promise((r) => setTimeout(r, 20));
    expect(dispatcher.currentTarget('n1', 2)).toBeNull();
    hold = null;
    release();
    await first;
    expect(sent.map((f) => f.generation)).toEqual([3]);
    // Once on disk, a hello gets it as it stands.
    expect(dispatcher.currentTarget('n1', 3)).toMatchObject({ generation: 3 });
  });
});
