/**
 * `PUT /v1/services/:name?dryRun=true`: checked as a PUT is, answered with what would change and
 * where new replicas would go, and nothing stored, placed or sent to a node.
 */
import { describe, expect, it } from 'vitest';
import type { NodeRecord } from '../../hub/store/store.js';
import { apiHubPerTest } from '../helpers/api-hub.js';

const TOKEN = 'tat_dry_run_test_token';
const api = apiHubPerTest('tether-dry-run-', TOKEN);

const node = (id: string, zone: string): NodeRecord => ({
  id,
  name: `edge-${id}`,
  labels: { zone },
  credentialHash: 'a'.repeat(64),
  advertiseAddress: null,
  facts: { hostname: id, arch: 'amd64', os: 'linux', cpus: 4, memoryBytes: 8 * 1024 ** 3 } as NodeRecord['facts'],
  generation: 0,
  targetHash: '',
  joinedAt: '2026-01-01T00:00:00.000Z',
});

/** Three ready nodes in eu-1, one in eu-2, and the hub's passes done. */
async function fleet(): Promise<void> {
  const nodes = [node('n1', 'eu-1'), node('n2', 'eu-1'), node('n3', 'eu-1'), node('n4', 'eu-2')];
  await Promise.all(nodes.map((n) => api.hub.store.putNode(n)));
  for (const n of nodes) api.hub.detector.connected(n.id);
  await settled();
}

async function settled(): Promise<void> {
  api.hub.loop.markDirty();
  await api.hub.loop.idle();
}

/** What a dry run must leave as it found: the store's records and writes, and every node's target. */
function snapshot() {
  const { store, dispatcher } = api.hub;
  return {
    writes: store.stats().writes,
    services: [...store.listServices()].map((s) => JSON.stringify(s)),
    nodes: [...store.listNodes()].map((n) => ({ id: n.id, generation: n.generation, replicas: dispatcher.targetOf(n.id).replicas.length })),
  };
}

interface DryRun {
  dryRun: true;
  outcome: string;
  changes: Array<{ path: string; from?: unknown; to?: unknown }>;
  placement: { placed: Array<{ node: string; nodeName?: string; replica?: string }>; placedTotal: number; pending: number; reasons?: string[]; removed: number; replacing: number; moving: number };
}

async function dryRun(name: string, spec: unknown, headers: Record<string, string> = {}): Promise<DryRun> {
  const res = await api.app.inject({ method: 'PUT', url: `/v1/services/${name}?dryRun=true`, headers: { authorization: `Bearer ${TOKEN}`, ...headers }, payload: spec as object });
  expect(res.statusCode, res.body).toBe(200);
  return res.json() as DryRun;
}

const web = { image: 'nginx:1', replicas: 3, constraints: ['node.labels.zone==eu-1'] };

describe('dry run', () => {
  it('previews a new service: every field as a change, and a replica on each matching node, storing and sending nothing', async () => {
    await fleet();
    const before = snapshot();
    const preview = await dryRun('web', web);
    await settled();
    expect(snapshot()).toEqual(before);
    expect((await api.call('GET', '/v1/services/web')).statusCode).toBe(404);

    expect(preview.dryRun).toBe(true);
    expect(preview.outcome).toBe('created');
    const paths = preview.changes.map((c) => c.path);
    expect(paths).toEqual(expect.arrayContaining(['image', 'replicas', 'constraints']));
    expect(preview.changes.find((c) => c.path === 'replicas')).toEqual({ path: 'replicas', to: 3 });
    expect(preview.placement.placed.map((p) => p.node).sort()).toEqual(['n1', 'n2', 'n3']);
    expect(preview.placement.placed.find((p) => p.node === 'n1')?.nodeName).toBe('edge-n1');
    expect(preview.placement).toMatchObject({ placedTotal: 3, pending: 0 });
  });

  it('previews a change of an existing service: the paths changed and where the new replicas go, the service left as it was', async () => {
    await fleet();
    expect((await api.call('PUT', '/v1/services/web', web)).statusCode).toBe(201);
    await settled();
    const before = snapshot();
    const preview = await dryRun('web', { ...web, replicas: 5, constraints: ['node.labels.zone in (eu-1, eu-2)'] });
    await settled();
    expect(snapshot()).toEqual(before);

    expect(preview.outcome).toBe('updated');
    expect(preview.changes).toEqual([
      { path: 'constraints[0]', from: 'node.labels.zone==eu-1', to: 'node.labels.zone in (eu-1, eu-2)' },
      { path: 'replicas', from: 3, to: 5 },
    ]);
    // Spread: the node with none first, then one of the others.
    expect(preview.placement.placed).toHaveLength(2);
    expect(preview.placement.placed.map((p) => p.node)).toContain('n4');
    expect(preview.placement).toMatchObject({ pending: 0, removed: 0, replacing: 0 });
    const now = (await api.call('GET', '/v1/services/web')).json();
    expect(now.revision).toBe(1);
    expect(now.spec.replicas).toBe(3);
  });

  it('says what would wait and why, what a scale-down removes, and what a rolling update would replace', async () => {
    await fleet();
    await api.call('PUT', '/v1/services/web', web);
    await settled();
    const nowhere = await dryRun('api', { ...web, replicas: 5, constraints: ['node.labels.zone==mars'] });
    expect(nowhere.placement.placed).toEqual([]);
    expect(nowhere.placement.pending).toBe(5);
    expect(nowhere.placement.reasons).toEqual([expect.stringMatching(/no node matches constraints \[node\.labels\.zone==mars\]/)]);
    // Replicas leave nodes that no longer match one at a time, each once its replacement serves:
    // the preview shows the next pass, which starts the first move.
    const moved = await dryRun('web', { ...web, constraints: ['node.labels.zone==eu-2'] });
    expect(moved.placement).toMatchObject({ moving: 1, pending: 0 });
    expect(moved.placement.placed).toEqual([{ node: 'n4', nodeName: 'edge-n4' }]);

    expect((await dryRun('web', { ...web, replicas: 1 })).placement).toMatchObject({ placed: [], removed: 2 });
    expect((await dryRun('web', { ...web, image: 'nginx:2' })).placement).toMatchObject({ placed: [], replacing: 3 });
  });

  it('answers unchanged for the same spec, with no change', async () => {
    await fleet();
    await api.call('PUT', '/v1/services/web', web);
    const preview = await dryRun('web', web);
    expect(preview.outcome).toBe('unchanged');
    expect(preview.changes).toEqual([]);
    expect(preview.placement.placed).toEqual([]);
  });

  it('refuses what a PUT refuses, a bad dryRun value and a stale If-Match', async () => {
    await api.call('PUT', '/v1/services/web', web);
    const put = (url: string, body: unknown, headers: Record<string, string> = {}) =>
      api.app.inject({ method: 'PUT', url, headers: { authorization: `Bearer ${TOKEN}`, ...headers }, payload: body as object });
    const badSpec = await put('/v1/services/web?dryRun=true', { image: 'nginx:1', replicas: -1 });
    expect(badSpec.statusCode).toBe(400);
    expect(badSpec.json().error.code).toBe('invalid_spec');
    expect((await put('/v1/services/Bad_Name?dryRun=true', web)).json().error.code).toBe('invalid_service_name');
    const badFlag = await put('/v1/services/web?dryRun=yes', web);
    expect(badFlag.statusCode).toBe(400);
    expect(badFlag.json().error.details[0].path).toBe('dryRun');
    const stale = await put('/v1/services/web?dryRun=true', { ...web, replicas: 4 }, { 'if-match': '"7"' });
    expect(stale.statusCode).toBe(412);
    expect(stale.json()).toMatchObject({ error: { code: 'revision_mismatch' }, currentRevision: 1 });
    expect((await put('/v1/services/web?dryRun=true', { ...web, replicas: 4 }, { 'if-match': '"1"' })).statusCode).toBe(200);
    // dryRun=false is a PUT.
    expect((await put('/v1/services/web?dryRun=false', { ...web, replicas: 4 })).json().revision).toBe(2);
  });

  it('shows a changed registry password as changed, never its value', async () => {
    const spec = (password: string) => ({ image: 'registry.local/app:1', replicas: 0, registryAuth: { username: 'u', password } });
    await api.call('PUT', '/v1/services/app', spec('first-secret-pw'));
    const res = await api.app.inject({ method: 'PUT', url: '/v1/services/app?dryRun=true', headers: { authorization: `Bearer ${TOKEN}` }, payload: spec('second-secret-pw') });
    expect(res.body).not.toMatch(/first-secret-pw|second-secret-pw/);
    expect(res.json().changes).toEqual([{ path: 'registryAuth.password', from: '(redacted)', to: '(redacted: changed)' }]);
  });
});
