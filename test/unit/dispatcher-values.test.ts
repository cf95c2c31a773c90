import { describe, expect, it } from 'vitest';
import { Dispatcher, type ValueBytes } from '../../hub/dispatcher.js';
import type { ValueCatalog } from '../../hub/spec/mounts.js';
import { validateServiceSpec, type NormalizedSpec } from '../../hub/spec/service-spec.js';
import type { NodeRecord, ServiceRecord, Store } from '../../hub/store/store.js';
import { frameText } from '../../hub/target-frame.js';
import { encodeFrame } from '../../shared/codec.js';
import type { TargetFrame } from '../../shared/protocol.js';

/** Secret "db" at versions 1 and 2, config "site" at 1; each value's bytes name it. */
const held: Record<string, string> = { 'secret/db/1': 'db-one', 'secret/db/2': 'db-two', 'config/site/1': 'site-one' };
const bytes: ValueBytes = (source, name, version) => {
  const text = held[`${source}/${name}/${version}`];
  return text === undefined ? undefined : Buffer.from(text).toString('base64');
};
const catalogAt = (dbVersion: number): ValueCatalog => ({
  currentVersion: (source, name) => (source === 'secret' && name === 'db' ? dbVersion : source === 'config' && name === 'site' ? 1 : undefined),
  holds: (source, name, version) => held[`${source}/${name}/${version}`] !== undefined,
});

function spec(input: object, dbVersion = 1): NormalizedSpec {
  const v = validateServiceSpec({ image: 'app:1', ...input }, { values: catalogAt(dbVersion) });
  if (!v.ok) throw new Error(JSON.stringify(v.errors));
  return v.value;
}

const record = (name: string, s: NormalizedSpec, placements: Array<[string, string]>): ServiceRecord => ({
  name,
  spec: s,
  placements: placements.map(([replicaId, nodeId]) => ({ replicaId, nodeId, pendingReason: null })),
  revision: 1,
  createdAt: '',
  updatedAt: '',
});

/** A store of nodes n1..n3 whose writes land at once. */
function nodesStore(): Store {
  const nodes = new Map<string, NodeRecord>(['n1', 'n2', 'n3'].map((id) => [id, { id, generation: 0, targetHash: '' } as NodeRecord]));
  return {
    listServices: () => [],
    listNodes: () => nodes.values(),
    getNode: (id: string) => nodes.get(id),
    putNode: async (node: NodeRecord) => void nodes.set(node.id, node),
    subscribe: () => () => undefined,
  } as unknown as Store;
}

async function published(services: ServiceRecord[]): Promise<Map<string, TargetFrame>> {
  const sent = new Map<string, TargetFrame>();
  const d = new Dispatcher(nodesStore(), (nodeId, frame) => (sent.set(nodeId, frame), true), undefined, bytes);
  for (const s of services) d.serviceChanged(s.name, s);
  await d.publish();
  return sent;
}

describe('Dispatcher: values in targets', () => {
  it('sends a node only the values its own replicas name, and none to a node whose replicas name none', async () => {
    const api = spec({ secrets: [{ name: 'db' }], env: { SITE: { fromConfig: 'site' } } });
    const sent = await published([record('api', api, [['api.1', 'n1']]), record('web', spec({}), [['web.1', 'n2']])]);
    expect(sent.get('n1')!.values).toEqual([
      { source: 'config', name: 'site', version: 1, data: Buffer.from('site-one').toString('base64') },
      { source: 'secret', name: 'db', version: 1, data: Buffer.from('db-one').toString('base64') },
    ]);
    expect(sent.get('n2')!.values).toBeUndefined();
    expect(frameText(sent.get('n2')!)).not.toContain(Buffer.from('db-one').toString('base64'));
    // A node with nothing assigned gets no target at all (its target is unchanged).
    expect(sent.has('n3')).toBe(false);
  });

  it('carries each version its replicas name once, and its text is the frame encoded whole', async () => {
    const one = spec({ secrets: [{ name: 'db' }], env: { DB: { fromSecret: 'db' } } }, 1);
    const two = spec({ secrets: [{ name: 'db' }] }, 2);
    const sent = await published([record('a', one, [['a.1', 'n1'], ['a.2', 'n1']]), record('b', two, [['b.1', 'n1']])]);
    const frame = sent.get('n1')!;
    expect(frame.values!.map((v) => `${v.source}/${v.name}/${v.version}`)).toEqual(['secret/db/1', 'secret/db/2']);
    expect(frameText(frame)).toBe(encodeFrame(frame));
  });

  it('leaves out a version the hub no longer holds', async () => {
    const gone = spec({ secrets: [{ name: 'db' }] }, 1);
    const stale: NormalizedSpec = { ...gone, files: gone.files!.map((f) => ({ ...f, version: 7 })) };
    const sent = await published([record('a', stale, [['a.1', 'n1']])]);
    expect(sent.get('n1')!.values).toBeUndefined();
    expect(sent.get('n1')!.replicas).toHaveLength(1);
  });
});
