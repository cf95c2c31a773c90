/** The healthcheck field through the HTTP API: 400s naming the field, the normalized spec, and health in the service view. */
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { ADMIN_TOKEN, SimFleet } from '../helpers/sim-fleet.js';

let fleet: SimFleet;
beforeAll(async () => {
  fleet = await SimFleet.start();
});
afterAll(async () => {
  await fleet.close();
});

const inject = (method: string, url: string, body?: unknown) =>
  fleet.app.inject({
    method: method as 'GET',
    url,
    headers: { authorization: `Bearer ${ADMIN_TOKEN}` },
    ...(body === undefined ? {} : { payload: body as object }),
  });

const image = 'tether-test/busybox:1';

describe('healthcheck through the API', () => {
  it.each([
    [{ type: 'http', port: 70000 }, 'healthcheck.port', /<= 65535/],
    [{ type: 'tcp' }, 'healthcheck.port', /required for a "tcp" check/],
    [{ type: 'exec', command: [] }, 'healthcheck.command', /non-empty array/],
    [{ type: 'http', port: 80, command: ['true'] }, 'healthcheck.command', /not used by a "http" check/],
    [{ type: 'tcp', port: 80, path: '/' }, 'healthcheck.path', /not used by a "tcp" check/],
    [{ type: 'tcp', port: 80, interval: '1s', timeout: '5s' }, 'healthcheck.timeout', /must not exceed the interval/],
    [{ type: 'tcp', port: 80, interval: '5 seconds' }, 'healthcheck.interval', /not a duration/],
    [{ type: 'tcp', port: 80, startPeriod: '2d' }, 'healthcheck.startPeriod', /not a duration/],
    [{ type: 'http', port: 80, expectedStatus: '500-200' }, 'healthcheck.expectedStatus', /low end must not exceed/],
    [{ type: 'http', port: 80, expectedStatus: '700' }, 'healthcheck.expectedStatus', /between 100 and 599/],
    [{ type: 'grpc', port: 80 }, 'healthcheck.type', /./],
  ])('refuses the check %j with 400 naming %s, and stores nothing', async (healthcheck, path, reason) => {
    const res = await inject('PUT', '/v1/services/bad', { image, healthcheck });
    expect(res.statusCode).toBe(400);
    const { error } = res.json();
    expect(error.code).toBe('invalid_spec');
    expect(error.details).toEqual(expect.arrayContaining([expect.objectContaining({ path, message: expect.stringMatching(reason) })]));
    expect((await inject('GET', '/v1/services/bad')).statusCode).toBe(404);
  });

  it('keeps a service as it was when a change brings a bad check', async () => {
    expect((await inject('PUT', '/v1/services/kept', { image, replicas: 0 })).statusCode).toBe(201);
    const bad = await inject('PUT', '/v1/services/kept', { image, replicas: 0, healthcheck: { type: 'exec' } });
    expect(bad.statusCode).toBe(400);
    const view = (await inject('GET', '/v1/services/kept')).json();
    expect(view.revision).toBe(1);
    expect('healthcheck' in view.spec).toBe(false);
  });

  it('shows the check with its defaults in the spec, and health in the service view', async () => {
    await fleet.addAgent({ name: 'a1' });
    const put = await inject('PUT', '/v1/services/web', { image, replicas: 2, healthcheck: { type: 'http', port: 8080, path: '/healthz' } });
    expect(put.statusCode).toBe(201);
    expect(put.json().spec.healthcheck).toEqual({
      type: 'http',
      port: 8080,
      path: '/healthz',
      statusMin: 200,
      statusMax: 399,
      command: null,
      intervalMs: 10_000,
      timeoutMs: 2_000,
      retries: 3,
      startPeriodMs: 0,
    });
    await inject('PUT', '/v1/services/plain', { image, replicas: 2 });
    // Nowhere to go: pending replicas have no health.
    await inject('PUT', '/v1/services/nowhere', { image, constraints: ['node.labels.zone == mars'] });

    const plain = await vi.waitFor(
      async () => {
        const v = (await inject('GET', '/v1/services/plain')).json();
        expect(v.status.running).toBe(2);
        return v;
      },
      { timeout: 10_000, interval: 25 },
    );
    expect(plain.status.health).toEqual({ healthy: 2, unhealthy: 0, starting: 0 });
    expect(plain.status.replicas.map((r: { health: string; healthOutput: string | null }) => [r.health, r.healthOutput])).toEqual([
      ['healthy', null],
      ['healthy', null],
    ]);
    expect('healthcheck' in plain.spec).toBe(false);

    const nowhere = (await inject('GET', '/v1/services/nowhere')).json();
    expect(nowhere.status.health).toEqual({ healthy: 0, unhealthy: 0, starting: 0 });
    expect(nowhere.status.replicas[0]).toMatchObject({ state: 'pending', health: null, healthOutput: null });

    // Paging lists health for the page and counts it for every replica.
    const page = (await inject('GET', '/v1/services/plain?offset=1&limit=1')).json();
    expect(page.status.replicaPage).toEqual({ offset: 1, limit: 1, total: 2 });
    expect(page.status.replicas).toHaveLength(1);
    expect(page.status.health.healthy).toBe(2);
    const counts = (await inject('GET', '/v1/services/plain?limit=0')).json();
    expect(counts.status.replicas).toEqual([]);
    expect(counts.status.health.healthy).toBe(2);
  });
});
