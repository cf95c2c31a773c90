import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ADMIN_TOKEN, SimFleet } from '../helpers/sim-fleet.js';

let fleet: SimFleet;
beforeAll(async () => {
  fleet = await SimFleet.start();
});
afterAll(async () => {
  await fleet.close();
});

const inject = (method: string, url: string, opts: { token?: string | null; body?: unknown; raw?: string; contentType?: string } = {}) =>
  fleet.app.inject({
    method: method as 'GET',
    url,
    headers: {
      ...(opts.token === null ? {} : { authorization: `Bearer ${opts.token ?? ADMIN_TOKEN}` }),
      ...(opts.contentType ? { 'content-type': opts.contentType } : {}),
    },
    ...(opts.raw !== undefined ? { payload: opts.raw } : opts.body !== undefined ? { payload: opts.body as object } : {}),
  });

describe('HTTP API', () => {
  it('answers /healthz without a token', async () => {
    const res = await inject('GET', '/healthz', { token: null });
    expect(res.statusCode).toBe(200);
    expect(res.json()).toMatchObject({ status: 'ok' });
  });

  it.each([
    ['GET', '/v1/nodes'],
    ['GET', '/v1/services'],
    ['PUT', '/v1/services/web'],
    ['POST', '/v1/join-tokens'],
  ])('refuses %s %s without the admin token (401) and with a wrong one (401)', async (method, url) => {
    const none = await inject(method, url, { token: null, body: {} });
    expect(none.statusCode).toBe(401);
    expect(none.json().error.code).toBe('unauthorized');
    const wrong = await inject(method, url, { token: 'tat_wrong', body: {} });
    expect(wrong.statusCode).toBe(401);
    expect(wrong.json().error.message).toMatch(/invalid admin token/);
  });

  it('404s unknown services, nodes and routes with a reason', async () => {
    expect((await inject('GET', '/v1/services/nope')).json()).toEqual({ error: { code: 'service_not_found', message: 'no service named "nope"' } });
    expect((await inject('DELETE', '/v1/services/nope')).statusCode).toBe(404);
    const node = await inject('GET', '/v1/nodes/abc');
    expect(node.statusCode).toBe(404);
    expect(node.json().error.code).toBe('node_not_found');
    expect((await inject('GET', '/v1/bogus')).statusCode).toBe(404);
  });

  it.each([
    [{ replicas: 2 }, 'image', /required/],
    [{ image: 'a', replicas: -1 }, 'replicas', />= 0/],
    [{ image: 'a', replicas: '2' }, 'replicas', /integer/],
    [{ image: 'a', colour: 'red' }, 'colour', /unknown field/],
    [{ image: 'a', ports: [{ containerPort: 80, hostPort: 70000 }] }, 'ports[0].hostPort', /<= 65535/],
    [{ image: 'a', constraints: ['zone = eu'] }, 'constraints[0]', /malformed constraint/],
    [{ image: 'a', mode: 'global', replicas: 2 }, 'replicas', /global/],
    [{ image: 'not a valid ref !!' }, 'image', /whitespace/],
    [{ image: 'a', resources: { cpus: 1e-300 } }, 'resources.cpus', />= 0.01/],
  ])('rejects a bad spec %j with 400 naming %s', async (spec, path, reason) => {
    const res = await inject('PUT', '/v1/services/bad', { body: spec });
    expect(res.statusCode).toBe(400);
    const { error } = res.json();
    expect(error.code).toBe('invalid_spec');
    expect(error.details).toEqual(expect.arrayContaining([expect.objectContaining({ path, message: expect.stringMatching(reason) })]));
    expect(error.message).toContain(path);
    // Nothing half-written.
    expect((await inject('GET', '/v1/services/bad')).statusCode).toBe(404);
  });

  it('rejects a bad service name, malformed JSON and a non-object body', async () => {
    const name = await inject('PUT', '/v1/services/Bad_Name', { body: { image: 'a' } });
    expect(name.statusCode).toBe(400);
    expect(name.json().error.details[0].path).toBe('name');
    const json = await inject('PUT', '/v1/services/web', { raw: '{"image":', contentType: 'application/json' });
    expect(json.statusCode).toBe(400);
    expect(json.json().error.message).toMatch(/JSON/i);
    const arr = await inject('PUT', '/v1/services/web', { body: [1, 2] });
    expect(arr.statusCode).toBe(400);
  });

  it.each([
    ['a 300-character service name', 'GET', `/v1/services/${'a'.repeat(300)}`, 414, 'uri_too_long'],
    ['a 300-character node id', 'GET', `/v1/nodes/${'a'.repeat(300)}`, 414, 'uri_too_long'],
    ['a 300-character name in a PUT', 'PUT', `/v1/services/${'a'.repeat(300)}`, 414, 'uri_too_long'],
    ['bad percent-encoding', 'GET', '/v1/services/%ff', 400, 'bad_url'],
    ['an unfinished escape', 'DELETE', '/v1/services/a%2', 400, 'bad_url'],
    ['a 20,000-character unknown route', 'GET', `/${'x'.repeat(20_000)}`, 404, 'not_found'],
  ])('answers %s in the documented error shape (%s %#)', async (_what, method, url, status, code) => {
    const res = await inject(method, url, { body: { image: 'a' } });
    expect(res.statusCode).toBe(status);
    const body = res.json();
    expect(Object.keys(body)).toEqual(['error']);
    expect(body.error.code).toBe(code);
    expect(typeof body.error.message).toBe('string');
    // The message quotes the URL only in part: a huge URL is not echoed back whole.
    expect(body.error.message.length).toBeLessThan(300);
  });

  it('creates, reads, lists and deletes a service; the service view redacts registry passwords', async () => {
    const spec = { image: '127.0.0.1:5000/busybox:1', replicas: 0, registryAuth: { username: 'u', password: 'secret' } };
    const created = await inject('PUT', '/v1/services/api-test', { body: spec });
    expect(created.statusCode).toBe(201);
    expect(created.json()).toMatchObject({ name: 'api-test', revision: 1, spec: { image: spec.image, mode: 'replicated', replicas: 0 } });
    expect(created.body).not.toContain('secret');
    const again = await inject('PUT', '/v1/services/api-test', { body: spec });
    expect(again.statusCode).toBe(200);
    expect(again.json()).toMatchObject({ revision: 1, outcome: 'unchanged' });
    const list = await inject('GET', '/v1/services');
    expect(list.json().services.map((s: { name: string }) => s.name)).toContain('api-test');
    expect((await inject('DELETE', '/v1/services/api-test')).json()).toEqual({ name: 'api-test', deleted: true });
  });

  it('issues join tokens that join a node once presented, and refuses unknown or expired ones', async () => {
    const issued = await inject('POST', '/v1/join-tokens', { body: { ttlSeconds: 120 } });
    expect(issued.statusCode).toBe(201);
    const { token, expiresAt } = issued.json();
    expect(token).toMatch(/^tjt_/);
    expect(Date.parse(expiresAt)).toBeGreaterThan(Date.now() + 100_000);

    const joined = await inject('POST', '/v1/join', { token: null, body: { joinToken: token, name: 'dev-1', labels: { zone: 'eu-1' } } });
    expect(joined.statusCode).toBe(201);
    expect(joined.json().credential).toMatch(/^tnc_/);
    const node = await inject('GET', `/v1/nodes/${joined.json().nodeId}`);
    expect(node.json()).toMatchObject({ name: 'dev-1', state: 'unreachable', labels: { zone: 'eu-1' } });

    const unknown = await inject('POST', '/v1/join', { token: null, body: { joinToken: 'tjt_nope', name: 'x' } });
    expect(unknown.statusCode).toBe(401);
    expect(unknown.json().error.message).toMatch(/unknown or expired/);

    // An expired token: issue one, then move its expiry into the past in the store.
    const old = (await inject('POST', '/v1/join-tokens', { body: {} })).json().token as string;
    const { sha256 } = await import('../../hub/auth/secrets.js');
    const record = fleet.hub.store.getJoinToken(sha256(old))!;
    await fleet.hub.store.putJoinToken({ ...record, expiresAt: new Date(Date.now() - 1000).toISOString() });
    expect((await inject('POST', '/v1/join', { token: null, body: { joinToken: old, name: 'late' } })).statusCode).toBe(401);

    const badTtl = await inject('POST', '/v1/join-tokens', { body: { ttlSeconds: 1 } });
    expect(badTtl.statusCode).toBe(400);
    expect(badTtl.json().error.details[0].path).toBe('ttlSeconds');
  });
});
