/**
 * `GET /v1/nodes` and `GET /v1/services` as fleet APIs: selectors in the constraint syntax,
 * `?state=`, and pages (`?limit=&continue=`) that stay stable while nodes come and go between them.
 */
import { describe, expect, it } from 'vitest';
import type { NodeRecord } from '../../hub/store/store.js';
import { apiHubPerTest } from '../helpers/api-hub.js';

const api = apiHubPerTest('tether-fleet-lists-', 'tat_fleet_lists_test_token');

const record = (id: string, labels: Record<string, string> = {}): NodeRecord => ({
  id,
  name: `edge-${id}`,
  labels,
  credentialHash: 'a'.repeat(64),
  advertiseAddress: null,
  facts: { hostname: `host-${id}`, arch: 'arm64', os: 'linux', cpus: 4, memoryBytes: 4 * 1024 ** 3 } as NodeRecord['facts'],
  generation: 0,
  targetHash: '',
  joinedAt: '2026-01-01T00:00:00.000Z',
});

async function putNodes(nodes: NodeRecord[]): Promise<void> {
  await Promise.all(nodes.map((n) => api.hub.store.putNode(n)));
}

async function deleteNodes(ids: string[]): Promise<void> {
  await Promise.all(ids.map((id) => api.hub.store.deleteNode(id)));
}

interface NodesPage {
  nodes: Array<{ id: string; name: string; state: string; revision: number }>;
  continue?: string;
}

async function nodesPage(query: string): Promise<NodesPage> {
  const res = await api.call('GET', `/v1/nodes${query}`);
  expect(res.statusCode, res.body).toBe(200);
  return res.json() as NodesPage;
}

const ids = (page: NodesPage) => page.nodes.map((n) => n.id);

describe('node selectors and states', () => {
  it('selects on labels and attributes, with every term holding', async () => {
    await putNodes([
      record('n1', { zone: 'eu-1', ring: 'stable' }),
      record('n2', { zone: 'eu-1', ring: 'canary' }),
      record('n3', { zone: 'eu-2', ring: 'stable' }),
      record('n4', { zone: 'us-1' }),
    ]);
    const q = (selector: string) => nodesPage(`?selector=${encodeURIComponent(selector)}`).then(ids);
    expect(await q('node.labels.zone==eu-1,node.labels.ring!=canary')).toEqual(['n1']);
    expect(await q('node.labels.zone in (eu-1, eu-2)')).toEqual(['n1', 'n2', 'n3']);
    expect(await q('node.labels.ring!=canary')).toEqual(['n1', 'n3', 'n4']);
    expect(await q('labels.zone not in (eu-1, eu-2)')).toEqual(['n4']);
    expect(await q('node.name==edge-n3')).toEqual(['n3']);
    expect(await q('node.hostname==host-n2,node.arch==arm64')).toEqual(['n2']);
    expect(await q('node.labels.zone==mars')).toEqual([]);
    // As people type it, unencoded.
    expect(ids(await nodesPage('?selector=node.labels.zone==eu-1,node.labels.ring!=canary'))).toEqual(['n1']);
  });

  it('filters on state, one or several', async () => {
    await putNodes([record('a'), record('b'), record('c')]);
    api.hub.detector.connected('a');
    api.hub.detector.connected('c');
    expect(ids(await nodesPage('?state=ready'))).toEqual(['a', 'c']);
    // Never seen since the hub started: unreachable (lost only once lostAfter passes).
    expect(ids(await nodesPage('?state=unreachable'))).toEqual(['b']);
    expect(ids(await nodesPage('?state=lost,unreachable'))).toEqual(['b']);
    expect(ids(await nodesPage('?state=ready&selector=node.name%3D%3Dedge-c'))).toEqual(['c']);
    expect((await nodesPage('?state=ready')).nodes.every((n) => n.state === 'ready')).toBe(true);
  });
});

describe('node pages', () => {
  it('pages through 2,500 nodes by 1,000 while nodes join and leave between pages, never showing one twice nor skipping one that stayed', async () => {
    const id = (i: number) => `node-${String(i).padStart(5, '0')}`;
    // Every tenth id is left free, so that new nodes can join between existing ones.
    const initial = Array.from({ length: 2500 }, (_, i) => id(i * 10));
    // Not in key order: the store's order is not the list's.
    const shuffled = [...initial].sort((a, b) => (a.split('').reverse().join('') < b.split('').reverse().join('') ? -1 : 1));
    await putNodes(shuffled.map((n) => record(n)));
    const deleted = new Set<string>();
    const added = new Set<string>();

    const seen: string[] = [];
    let token: string | undefined;
    let pages = 0;
    do {
      const page = await nodesPage(`?limit=1000${token ? `&continue=${token}` : ''}`);
      pages++;
      expect(page.nodes.length).toBeLessThanOrEqual(1000);
      const got = ids(page);
      expect(got).toEqual([...got].sort());
      if (seen.length > 0 && got.length > 0) expect(got[0]! > seen[seen.length - 1]!).toBe(true);
      seen.push(...got);
      token = page.continue;
      if (!token) break;
      // Between pages: nodes leave and join both behind the page and ahead of it.
      const last = got[got.length - 1]!;
      const behind = initial.filter((n) => n < last && !deleted.has(n)).slice(0, 40);
      const ahead = initial.filter((n) => n > last && !deleted.has(n)).slice(0, 40);
      for (const n of [...behind, ...ahead]) deleted.add(n);
      await deleteNodes([...behind, ...ahead]);
      const joining = [...behind, ...ahead].map((n) => `${n}-new`);
      for (const n of joining) added.add(n);
      await putNodes(joining.map((n) => record(n)));
    } while (pages < 10);

    expect(pages).toBe(3);
    expect(new Set(seen).size).toBe(seen.length);
    const stable = initial.filter((n) => !deleted.has(n));
    const shown = new Set(seen);
    for (const n of stable) expect(shown.has(n), `${n} was skipped`).toBe(true);
    // Whatever else was shown existed when its page was read: joined ahead of the page, or left after it.
    for (const n of seen) expect(initial.includes(n) || added.has(n)).toBe(true);
  });

  it('has no continue on the last page, and 500 per page by default', async () => {
    await putNodes(Array.from({ length: 501 }, (_, i) => record(`d-${String(i).padStart(3, '0')}`)));
    const first = await nodesPage('');
    expect(first.nodes).toHaveLength(500);
    expect(typeof first.continue).toBe('string');
    const second = await nodesPage(`?continue=${first.continue}`);
    expect(ids(second)).toEqual(['d-500']);
    expect(second.continue).toBeUndefined();
    // Exactly one page's worth: no empty page to fetch.
    const exact = await nodesPage('?limit=501');
    expect(exact.nodes).toHaveLength(501);
    expect(exact.continue).toBeUndefined();
  });

  it('pages a selection: the page holds only matches and ends where the matches end', async () => {
    await putNodes(Array.from({ length: 30 }, (_, i) => record(`s-${String(i).padStart(2, '0')}`, { zone: i % 3 === 0 ? 'eu-1' : 'eu-2' })));
    const sel = `selector=${encodeURIComponent('node.labels.zone==eu-1')}`;
    const first = await nodesPage(`?${sel}&limit=4`);
    expect(ids(first)).toEqual(['s-00', 's-03', 's-06', 's-09']);
    const rest = await nodesPage(`?${sel}&limit=100&continue=${first.continue}`);
    expect(ids(rest)).toEqual(['s-12', 's-15', 's-18', 's-21', 's-24', 's-27']);
    expect(rest.continue).toBeUndefined();
  });
});

describe('bad list queries', () => {
  it.each([
    ['/v1/nodes?selector=node.labels.zone%3Deu-1', 'selector', /node\.labels\.zone=eu-1/],
    ['/v1/nodes?selector=service.name%3D%3Dweb', 'selector', /a node selector reads node/],
    ['/v1/nodes?state=sleeping', 'state', /unknown state "sleeping": one or more of ready, not_ready, unreachable, lost/],
    ['/v1/nodes?limit=0', 'limit', /from 1 to 1000/],
    ['/v1/nodes?limit=1001', 'limit', /from 1 to 1000/],
    ['/v1/nodes?limit=ten', 'limit', /from 1 to 1000/],
    ['/v1/nodes?continue=not-a-token', 'continue', /not a continue token/],
    ['/v1/nodes?continue=%24%24', 'continue', /not a continue token/],
    ['/v1/nodes?limit=1&limit=2', 'limit', /more than once/],
    ['/v1/services?selector=service.arch%3D%3Darm', 'selector', /unknown attribute "service\.arch"/],
    ['/v1/services?state=running', 'state', /one or more of ready, degraded, updating, paused/],
    ['/v1/services?replicaLimit=-1', 'replicaLimit', /whole number/],
  ])('%s: 400 naming %s', async (url, field, message) => {
    const res = await api.call('GET', url);
    expect(res.statusCode, res.body).toBe(400);
    const { error } = res.json() as { error: { code: string; message: string; details: Array<{ path: string; message: string }> } };
    expect(error.code).toBe('invalid_query');
    expect(error.details[0]!.path).toBe(field);
    expect(error.details[0]!.message).toMatch(message);
  });

  it('refuses a services token on the nodes list', async () => {
    await Promise.all(['a', 'b'].map((name) => api.call('PUT', `/v1/services/${name}`, { image: 'nginx:1', replicas: 0 })));
    const page = (await api.call('GET', '/v1/services?limit=1')).json() as { continue: string };
    const res = await api.call('GET', `/v1/nodes?continue=${page.continue}`);
    expect(res.statusCode).toBe(400);
    expect(res.json().error.details[0].path).toBe('continue');
  });
});

describe('service lists', () => {
  it('selects on name and labels, filters on state, and pages by name', async () => {
    const put = (name: string, labels: Record<string, string>, replicas: number) => api.call('PUT', `/v1/services/${name}`, { image: 'nginx:1', replicas, labels });
    for (const [name, tier, replicas] of [['web', 'front', 0], ['api', 'back', 0], ['db', 'back', 2], ['cache', 'back', 0]] as const) {
      expect((await put(name, { tier }, replicas)).statusCode).toBe(201);
    }
    const names = async (query: string) => ((await api.call('GET', `/v1/services${query}`)).json() as { services: Array<{ name: string }> }).services.map((s) => s.name);
    expect(await names('')).toEqual(['api', 'cache', 'db', 'web']);
    expect(await names(`?selector=${encodeURIComponent('service.labels.tier==back')}`)).toEqual(['api', 'cache', 'db']);
    expect(await names(`?selector=${encodeURIComponent('name in (web, db)')}`)).toEqual(['db', 'web']);
    // No node runs anything: db wants 2 replicas and has none running; the others want none.
    expect(await names('?state=degraded')).toEqual(['db']);
    expect(await names('?state=ready')).toEqual(['api', 'cache', 'web']);

    const first = (await api.call('GET', '/v1/services?limit=2')).json() as { services: Array<{ name: string; state: string; status: { replicas: unknown[] } }>; continue: string };
    expect(first.services.map((s) => s.name)).toEqual(['api', 'cache']);
    expect(first.services[0]!.state).toBe('ready');
    // Replicas are listed only when asked for.
    expect(first.services[0]!.status.replicas).toEqual([]);
    expect(await names(`?limit=2&continue=${first.continue}`)).toEqual(['db', 'web']);
    const withReplicas = (await api.call('GET', '/v1/services?selector=name%3D%3Ddb&replicaLimit=10')).json() as { services: Array<{ status: { replicaPage: unknown } }> };
    expect(withReplicas.services[0]!.status.replicaPage).toEqual({ offset: 0, limit: 10, total: expect.any(Number) });
  });
});
