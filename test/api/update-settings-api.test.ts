/**
 * The `update` block and the resume route through the HTTP API: every mistake a 400 naming its
 * field with nothing stored, a bad change to an existing service leaving it as it was, and resume
 * refusing what it cannot do.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { SimFleet } from '../helpers/sim-fleet.js';

let fleet: SimFleet;
beforeAll(async () => {
  fleet = await SimFleet.start();
});
afterAll(async () => {
  await fleet.close();
});

const image = 'tether-test/busybox:1';

describe('update settings through the API', () => {
  it.each([
    [{ parallelism: 0 }, 'update.parallelism'],
    [{ order: 'whenever' }, 'update.order'],
    [{ failureAction: 'panic' }, 'update.failureAction'],
    [{ maxFailureRatio: -0.1 }, 'update.maxFailureRatio'],
    [{ delay: '1m30s' }, 'update.delay'],
    [{ monitor: '48h' }, 'update.monitor'],
  ])('refuses %j with 400 naming %s, and stores nothing', async (update, path) => {
    const res = await fleet.api('PUT', '/v1/services/bad', { image, update });
    expect(res.status).toBe(400);
    expect(res.body.error.code).toBe('invalid_spec');
    expect(res.body.error.details).toEqual(expect.arrayContaining([expect.objectContaining({ path })]));
    expect((await fleet.api('GET', '/v1/services/bad')).status).toBe(404);
  });

  it('a bad change to an existing service leaves it, and its update, as they were', async () => {
    expect((await fleet.api('PUT', '/v1/services/web', { image, update: { parallelism: 2 } })).status).toBe(201);
    const res = await fleet.api('PUT', '/v1/services/web', { image: 'tether-test/busybox:2', update: { parallelism: 0 } });
    expect(res.status).toBe(400);
    const view = (await fleet.api('GET', '/v1/services/web')).body;
    expect(view).toMatchObject({ revision: 1, spec: { image, update: { parallelism: 2, order: 'stop-first', monitorMs: 5000 } }, rollout: null });
  });

  it('resume: 404 for an unknown service, 409 with nothing to resume', async () => {
    expect((await fleet.api('POST', '/v1/services/nope/resume')).status).toBe(404);
    const res = await fleet.api('POST', '/v1/services/web/resume');
    expect(res.status).toBe(409);
    expect(res.body.error).toMatchObject({ code: 'not_paused', message: 'nothing to resume: the service has had no update' });
  });
});
