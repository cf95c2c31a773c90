import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { createHash } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { encodeFrame } from '../../shared/codec.js';
import type { ContainerSpec } from '../../shared/container-spec.js';
import type { AssignedReplica, TargetFrame } from '../../shared/protocol.js';
import { Dispatcher } from '../../hub/dispatcher.js';
import { LowdbStore } from '../../hub/store/lowdb-store.js';
import type { NodeRecord, ServiceRecord } from '../../hub/store/store.js';
import { validateServiceSpec, type NormalizedSpec } from '../../hub/spec/service-spec.js';
import { EMPTY_TARGET_HASH, encodeTargetFrame, frameText, targetHash, targetHashText } from '../../hub/target-frame.js';

function spec(input: Record<string, unknown>): NormalizedSpec {
  const v = validateServiceSpec(input);
  if (!v.ok) throw new Error(JSON.stringify(v.errors));
  return v.value;
}

const odd = 'quote " backslash \\ newline \n tab \t nul \0 del \u007f line-sep \u2028 lone \ud800 emoji \u{1F600} é';
const fullInput = {
  image: '127.0.0.1:5001/app:2',
  command: ['sh', '-c', `echo "${odd}"`],
  env: { MODE: 'edge', ODD: odd, EMPTY: '' },
  ports: [{ containerPort: 80, hostPort: 8080 }, { containerPort: 53, protocol: 'udp' }],
  resources: { cpus: 0.5, memoryMB: 64 },
  labels: { 'tether.io/role': 'web', 'tether.io/odd': odd },
  registryAuth: { username: 'tether', password: `s3cret${odd}`, serveraddress: '127.0.0.1:5001' },
};
const containers: Record<string, ContainerSpec> = { plain: spec({ image: 'nginx:1' }), full: spec(fullInput) };

/** What JSON.stringify gives: the replicas' containers as they are, whatever the cache holds. */
const reference = (frame: TargetFrame): string => JSON.stringify(frame);

describe('encodeTargetFrame', () => {
  const cases: Array<[string, TargetFrame]> = [
    ['an empty target', { type: 'target', generation: 1, replicas: [] }],
    ['one replica', { type: 'target', generation: 7, replicas: [{ replicaId: 'r1', service: 'web', specHash: 'abc', container: containers.plain! }] }],
    [
      'several services, credentials, odd characters',
      {
        type: 'target',
        generation: 2 ** 40,
        replicas: [
          { replicaId: 'a"b\\c', service: 'web', specHash: 'h1', container: containers.plain! },
          { replicaId: `r-${odd}`, service: `svc-${odd}`, specHash: 'h2', container: containers.full! },
          { replicaId: 'r3', service: 'web', specHash: 'h1', container: containers.plain! },
          { replicaId: 'r4', service: 'db', specHash: 'h2', container: containers.full! },
        ],
      },
    ],
  ];
  for (const [name, frame] of cases) {
    it(`gives the bytes encodeFrame gives: ${name}`, () => {
      const text = encodeTargetFrame(frame.generation, frame.replicas, (r) => JSON.stringify(r.container));
      expect(text).toBe(reference(frame));
      expect(text).toBe(encodeFrame(frame));
      expect(JSON.parse(text)).toEqual(frame);
    });
  }
});

describe('targetHashText', () => {
  it('hashes, in one update, to the digest of an update per piece (the hashes node records hold)', () => {
    const replicas: AssignedReplica[] = [
      { replicaId: 'r1', service: 'web', specHash: 'h1', container: containers.plain! },
      { replicaId: `r-${odd}`, service: 'db', specHash: 'h2', container: containers.full! },
      { replicaId: 'r3', service: 'web', specHash: 'h1', container: containers.plain! },
    ];
    const perPiece = createHash('sha256');
    for (const r of replicas) {
      perPiece.update(`${r.replicaId}\0${r.specHash}\0`);
      if (r.container.registryAuth) perPiece.update(JSON.stringify(r.container.registryAuth));
    }
    const text = targetHashText(replicas, (r) => (r.container.registryAuth ? JSON.stringify(r.container.registryAuth) : ''));
    expect(createHash('sha256').update(text).digest('hex')).toBe(perPiece.digest('hex'));
  });
});

describe('targetHash', () => {
  it('is the first 16 bytes of the sha256, the empty target included (its shared text is the hash records hold)', () => {
    const prefix = (text: string) => createHash('sha256').update(text).digest('hex').slice(0, 32);
    expect(targetHash('r1\0h1\0')).toBe(prefix('r1\0h1\0'));
    expect(targetHash('')).toBe(prefix(''));
    expect(EMPTY_TARGET_HASH).toBe(prefix(''));
  });
});

describe('Dispatcher: the target frames it sends', () => {
  let dir: string;
  beforeEach(async () => {
    dir = await mkdtemp(path.join(os.tmpdir(), 'tether-target-frame-'));
  });
  afterEach(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  const node = (id: string): NodeRecord => ({ id, name: id, labels: {}, credentialHash: 'h', advertiseAddress: null, facts: null, generation: 0, targetHash: '', joinedAt: 'j' });
  const service = (name: string, s: NormalizedSpec, placements: Array<[string, string]>): ServiceRecord => ({
    name,
    spec: s,
    revision: 1,
    createdAt: '',
    updatedAt: '',
    placements: placements.map(([replicaId, nodeId]) => ({ replicaId, nodeId, pendingReason: null })) as ServiceRecord['placements'],
  });

  async function setUp() {
    const store = new LowdbStore({ dir, nodeShards: 2, serviceShards: 2 });
    await store.open();
    for (const id of ['n1', 'n2']) await store.putNode(node(id));
    const sent: Array<{ nodeId: string; frame: TargetFrame }> = [];
    const dispatcher = new Dispatcher(store, (nodeId, frame) => {
      sent.push({ nodeId, frame });
      return true;
    });
    dispatcher.load();
    return { store, dispatcher, sent };
  }

  /**
   * The text a frame goes out with: set when it was built, it stays as it was when the frame is
   * changed afterwards, whereas a frame encoded whole at send time would show the change.
   */
  function builtText(frame: TargetFrame): string {
    const generation = frame.generation;
    frame.generation = -1;
    const text = frameText(frame);
    frame.generation = generation;
    return text;
  }

  it('carry their text, made from each service container once, byte for byte what encoding the frame gives', async () => {
    const { store, dispatcher, sent } = await setUp();
    await store.putService(service('web', spec({ image: 'nginx:1', env: { A: odd } }), [['w1', 'n1'], ['w2', 'n1'], ['w3', 'n2']]));
    await store.putService(service('db', spec(fullInput), [['d1', 'n1']]));
    expect(await dispatcher.publish()).toBe(2);
    expect(sent.map((s) => s.nodeId).sort()).toEqual(['n1', 'n2']);
    for (const { frame } of sent) {
      expect(frame.replicas.length).toBeGreaterThan(0);
      expect(builtText(frame)).toBe(reference(frame));
    }
    // After a hello: the same text as publish would give.
    const current = dispatcher.currentTarget('n1')!;
    expect(current).toEqual(sent.find((s) => s.nodeId === 'n1')!.frame);
    expect(builtText(current)).toBe(reference(current));
    await store.close();
  });

  it('carry the container a replica was taken with when its service changes while the target is written', async () => {
    const { store, dispatcher, sent } = await setUp();
    await store.putService(service('web', spec({ image: 'nginx:1' }), [['w1', 'n1']]));
    const publishing = dispatcher.publish();
    // Its write in flight, the service's spec changes: the frame already built keeps the old container.
    const changed = store.putService(service('web', spec({ image: 'nginx:2' }), [['w1', 'n1']]));
    await publishing;
    await changed;
    const toN1 = () => sent.filter((s) => s.nodeId === 'n1').map((s) => s.frame);
    expect(toN1()).toHaveLength(1);
    expect(toN1()[0]!.replicas[0]!.container.image).toBe('nginx:1');
    expect(builtText(toN1()[0]!)).toBe(reference(toN1()[0]!));
    // The next pass sends the new one.
    expect(await dispatcher.publish()).toBe(1);
    expect(toN1()[1]!.replicas[0]!.container.image).toBe('nginx:2');
    expect(builtText(toN1()[1]!)).toBe(reference(toN1()[1]!));
    await store.close();
  });
});
