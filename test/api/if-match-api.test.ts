/**
 * `If-Match: "<revision>"` on writes of services and nodes: a stale revision is 412
 * `revision_mismatch` with the current one, and changes nothing; no header writes as before.
 * Reads of one record carry its revision as an ETag.
 */
import { describe, expect, it } from 'vitest';
import { apiHubPerTest } from '../helpers/api-hub.js';

const TOKEN = 'tat_if_match_test_token';
const api = apiHubPerTest('tether-if-match-', TOKEN);

function call(method: string, url: string, body?: unknown, ifMatch?: string) {
  return api.app.inject({
    method: method as 'GET',
    url,
    headers: { authorization: `Bearer ${TOKEN}`, ...(ifMatch === undefined ? {} : { 'if-match': ifMatch }) },
    ...(body !== undefined ? { payload: body as object } : {}),
  });
}

const spec = (replicas: number) => ({ image: 'nginx:1', replicas });

function expectStale(res: Awaited<ReturnType<typeof call>>, current: number | null): void {
  expect(res.statusCode, res.body).toBe(412);
  const body = res.json() as { error: { code: string; message: string }; currentRevision: number | null };
  expect(body.error.code).toBe('revision_mismatch');
  expect(body.currentRevision).toBe(current);
  if (current !== null) {
    expect(body.error.message).toMatch(`at revision ${current}`);
    expect(res.headers.etag).toBe(`"${current}"`);
  }
}

describe('If-Match on services', () => {
  it('answers GET with the revision as ETag, and takes it back on a PUT', async () => {
    expect((await call('PUT', '/v1/services/web', spec(1))).statusCode).toBe(201);
    const read = await call('GET', '/v1/services/web');
    expect(read.headers.etag).toBe('"1"');
    expect(read.json().revision).toBe(1);
    const put = await call('PUT', '/v1/services/web', spec(2), read.headers.etag as string);
    expect(put.statusCode, put.body).toBe(200);
    expect(put.json().revision).toBe(2);
  });

  it('refuses a stale PUT with the current revision, and keeps the other operator\'s change', async () => {
    await call('PUT', '/v1/services/web', spec(1));
    // Two operators read revision 1; the first writes.
    expect((await call('PUT', '/v1/services/web', spec(3), '"1"')).statusCode).toBe(200);
    const stale = await call('PUT', '/v1/services/web', spec(5), '"1"');
    expectStale(stale, 2);
    const now = (await call('GET', '/v1/services/web')).json();
    expect(now.revision).toBe(2);
    expect(now.spec.replicas).toBe(3);
  });

  it('refuses a stale scale, rollback and delete, and lets them through at the current revision', async () => {
    await call('PUT', '/v1/services/web', spec(1));
    await call('PUT', '/v1/services/web', spec(2));
    expectStale(await call('POST', '/v1/services/web/scale', { replicas: 4 }, '"1"'), 2);
    expectStale(await call('POST', '/v1/services/web/rollback', {}, '"1"'), 2);
    expectStale(await call('DELETE', '/v1/services/web', undefined, '"1"'), 2);
    expect((await call('GET', '/v1/services/web')).json().spec.replicas).toBe(2);

    const scaled = await call('POST', '/v1/services/web/scale', { replicas: 4 }, '"2"');
    expect(scaled.statusCode, scaled.body).toBe(200);
    expect(scaled.json().revision).toBe(3);
    const rolled = await call('POST', '/v1/services/web/rollback', {}, '"3"');
    expect(rolled.statusCode, rolled.body).toBe(200);
    expect(rolled.json().revision).toBe(4);
    expect((await call('DELETE', '/v1/services/web', undefined, '"4"')).statusCode).toBe(200);
    expect((await call('GET', '/v1/services/web')).statusCode).toBe(404);
  });

  it('takes a list of revisions and *, and refuses If-Match on a service that does not exist', async () => {
    expectStale(await call('PUT', '/v1/services/web', spec(1), '"1"'), null);
    expectStale(await call('PUT', '/v1/services/web', spec(1), '*'), null);
    expect((await call('GET', '/v1/services/web')).statusCode).toBe(404);
    await call('PUT', '/v1/services/web', spec(1));
    expect((await call('PUT', '/v1/services/web', spec(2), '"7", "1"')).statusCode).toBe(200);
    expect((await call('PUT', '/v1/services/web', spec(3), '*')).statusCode).toBe(200);
  });

  it('refuses a malformed If-Match with 400 naming the header', async () => {
    await call('PUT', '/v1/services/web', spec(1));
    const res = await call('PUT', '/v1/services/web', spec(2), 'W/"1"');
    expect(res.statusCode).toBe(400);
    expect(res.json().error.code).toBe('invalid_header');
    expect(res.json().error.details[0].path).toBe('If-Match');
    expect((await call('GET', '/v1/services/web')).json().revision).toBe(1);
  });

  it('creates with If-None-Match: * only a service that does not exist yet, so that two creates never overwrite each other', async () => {
    const create = (replicas: number, header: string) =>
      api.app.inject({ method: 'PUT', url: '/v1/services/web', headers: { authorization: `Bearer ${TOKEN}`, 'if-none-match': header }, payload: spec(replicas) });
    expect((await create(1, '*')).statusCode).toBe(201);
    const second = await create(2, '*');
    expect(second.statusCode, second.body).toBe(412);
    expect(second.json()).toMatchObject({ error: { code: 'revision_mismatch', message: expect.stringContaining('exists already') }, currentRevision: 1 });
    expect((await call('GET', '/v1/services/web')).json().spec.replicas).toBe(1);
    // Only * means anything on a write; with If-Match beside it, the two contradict.
    const tagged = await create(2, '"1"');
    expect(tagged.statusCode).toBe(400);
    expect(tagged.json().error.details[0].path).toBe('If-None-Match');
    const both = await api.app.inject({ method: 'PUT', url: '/v1/services/web', headers: { authorization: `Bearer ${TOKEN}`, 'if-none-match': '*', 'if-match': '"1"' }, payload: spec(2) });
    expect(both.statusCode).toBe(400);
    expect((await call('GET', '/v1/services/web')).json().revision).toBe(1);
  });

  it('writes as before without the header', async () => {
    await call('PUT', '/v1/services/web', spec(1));
    expect((await call('PUT', '/v1/services/web', spec(2))).statusCode).toBe(200);
    expect((await call('POST', '/v1/services/web/scale', { replicas: 3 })).statusCode).toBe(200);
    expect((await call('DELETE', '/v1/services/web')).statusCode).toBe(200);
  });
});

describe('If-Match on nodes', () => {
  async function join(name: string): Promise<string> {
    const token = (await call('POST', '/v1/join-tokens', { ttlSeconds: 120 })).json().token as string;
    const joined = await call('POST', '/v1/join', { joinToken: token, name, labels: {} });
    expect(joined.statusCode).toBe(201);
    return joined.json().nodeId as string;
  }

  it('counts operators\' changes as revisions, shown in the view and as ETag, and refuses stale ones', async () => {
    const id = await join('dev-1');
    const read = await call('GET', `/v1/nodes/${id}`);
    expect(read.json().revision).toBe(1);
    expect(read.headers.etag).toBe('"1"');

    const labelled = await call('PATCH', `/v1/nodes/${id}`, { labels: { zone: 'eu-1' } }, '"1"');
    expect(labelled.statusCode, labelled.body).toBe(200);
    expect(labelled.json().revision).toBe(2);
    // The other operator still holds revision 1.
    expectStale(await call('PATCH', `/v1/nodes/${id}`, { labels: { zone: 'us-1' } }, '"1"'), 2);
    expectStale(await call('POST', `/v1/nodes/${id}/cordon`, undefined, '"1"'), 2);
    const node = (await call('GET', `/v1/nodes/${id}`)).json();
    expect(node.labels).toEqual({ zone: 'eu-1' });
    expect(node.scheduling).toBe('active');

    const cordoned = await call('POST', `/v1/nodes/${id}/cordon`, undefined, '"2"');
    expect(cordoned.statusCode, cordoned.body).toBe(200);
    expect(cordoned.json().revision).toBe(3);
    // Without the header, as before.
    expect((await call('POST', `/v1/nodes/${id}/uncordon`)).json().revision).toBe(4);
    // The list shows it too.
    expect((await call('GET', '/v1/nodes')).json().nodes[0].revision).toBe(4);
  });

  it('keeps a node\'s revision across a hub restart', async () => {
    const id = await join('dev-1');
    await call('PATCH', `/v1/nodes/${id}`, { name: 'gateway' });
    await api.restart();
    const read = await call('GET', `/v1/nodes/${id}`);
    expect(read.json().revision).toBe(2);
    expectStale(await call('PATCH', `/v1/nodes/${id}`, { name: 'gw' }, '"1"'), 2);
  });

  it('answers 404 for an unknown node whatever If-Match says', async () => {
    expect((await call('PATCH', '/v1/nodes/nope', { name: 'x' }, '"1"')).statusCode).toBe(404);
  });
});
