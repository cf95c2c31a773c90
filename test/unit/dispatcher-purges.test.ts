/**
 * A target's purgeVolumes: the deleted services whose volumes the node's record asks it to remove,
 * only once the delete has landed, only to agents that read the field (protocol 6), and in a
 * frame whose text is what encoding it whole gives.
 */
import { describe, expect, it } from 'vitest';
import { Dispatcher } from '../../hub/dispatcher.js';
import { validateServiceSpec } from '../../hub/spec/service-spec.js';
import { LowdbStore } from '../../hub/store/lowdb-store.js';
import type { NodeRecord, ServiceRecord } from '../../hub/store/store.js';
import { frameText } from '../../hub/target-frame.js';
import { encodeFrame } from '../../shared/codec.js';
import type { TargetFrame } from '../../shared/protocol.js';
import { tempStores } from '../helpers/temp-stores.js';

const stores = tempStores('tether-dispatcher-purges-');

const node = (id: string, volumePurges?: string[]): NodeRecord => ({
  id,
  name: id,
  labels: {},
  credentialHash: 'x',
  advertiseAddress: null,
  facts: null,
  generation: 0,
  targetHash: '',
  joinedAt: '',
  ...(volumePurges ? { volumePurges } : {}),
});

function service(name: string): ServiceRecord {
  const v = validateServiceSpec({ image: 'app:1', volumes: [{ name: 'data', target: '/data' }] });
  if (!v.ok) throw new Error(JSON.stringify(v.errors));
  return { name, spec: v.value, placements: [{ replicaId: `${name}.1`, nodeId: 'n1', pendingReason: null }], revision: 1, createdAt: '', updatedAt: '' };
}

async function setUp() {
  const store = stores.keep(new LowdbStore({ dir: stores.dir }));
  await store.open();
  for (const id of ['n1', 'n2', 'n3']) await store.putNode(node(id));
  await store.putService(service('db'));
  const sent = new Map<string, TargetFrame>();
  // n2's agent speaks protocol 5: it would refuse a field it does not know.
  const d = new Dispatcher(store, (nodeId, frame) => (sent.set(nodeId, frame), true), undefined, undefined, (id) => (id === 'n2' ? 5 : 6));
  d.load();
  await d.publish();
  sent.clear();
  return { store, d, sent };
}

describe('Dispatcher: volume purges in targets', () => {
  it('sends the purge once the service is gone, only to agents that read it', async () => {
    const { store, d, sent } = await setUp();
    // Asked before the delete (as Services does): nothing goes out while the service exists.
    for (const id of ['n1', 'n2', 'n3']) await store.putNode({ ...store.getNode(id)!, volumePurges: ['db'] });
    await d.publish();
    expect(sent.size).toBe(0);
    expect(d.targetOf('n3').purgeVolumes).toEqual([]);

    await store.deleteService('db');
    await d.publish();
    expect(sent.get('n1')).toMatchObject({ replicas: [], purgeVolumes: ['db'] });
    expect(sent.get('n3')).toMatchObject({ replicas: [], purgeVolumes: ['db'] });
    expect(sent.get('n2')?.purgeVolumes).toBeUndefined();
    for (const frame of sent.values()) expect(frameText(frame)).toBe(encodeFrame(frame));

    // The same again is no new target; a service of that name again calls it off.
    sent.clear();
    await d.publish();
    expect(sent.size).toBe(0);
    await store.putService(service('db'));
    await d.publish();
    expect(sent.get('n3')?.purgeVolumes).toBeUndefined();
  });

  it('changes a node\'s target hash only when its record lists purges', async () => {
    const { store, d } = await setUp();
    const before = d.targetOf('n3').hash;
    expect(store.getNode('n3')!.targetHash).toBe(before);
    await store.putNode({ ...store.getNode('n3')!, volumePurges: ['gone'] });
    expect(d.targetOf('n3').hash).not.toBe(before);
  });
});
