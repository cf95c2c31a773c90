/**
 * The logs route's answers that need no agent: bad queries, unknown names, replicas that cannot
 * be read. Streams through real agents and Docker: test/e2e/logs-docker.test.ts.
 */
import { describe, expect, it } from 'vitest';
import { apiHubPerTest } from '../helpers/api-hub.js';

const TOKEN = 'tat_logs-route-admin';

describe('GET /v1/services/:name/logs', () => {
  const api = apiHubPerTest('tether-logs-route-', TOKEN);

  it('answers 404 for an unknown service and an unknown replica', async () => {
    const none = await api.call('GET', '/v1/services/nope/logs');
    expect(none.statusCode).toBe(404);
    expect(none.json().error.code).toBe('service_not_found');
    expect((await api.call('PUT', '/v1/services/web', { image: 'busybox:1', replicas: 1 })).statusCode).toBe(201);
    const replica = await api.call('GET', '/v1/services/web/logs?replica=web-nope');
    expect(replica.statusCode).toBe(404);
    expect(replica.json().error).toMatchObject({ code: 'replica_not_found', message: expect.stringContaining('web-nope') });
  });

  it('refuses a bad tail, flag or since naming the field', async () => {
    await api.call('PUT', '/v1/services/web', { image: 'busybox:1', replicas: 1 });
    for (const [query, field] of [['tail=-1', 'tail'], ['tail=10001', 'tail'], ['follow=maybe', 'follow'], ['timestamps=2', 'timestamps'], ['since=yesterday', 'since']] as const) {
      const res = await api.call('GET', `/v1/services/web/logs?${query}`);
      expect(res.statusCode, query).toBe(400);
      expect(res.json().error.details[0].path).toBe(field);
    }
  });

  it('says per replica why it cannot be read, and ends the answer', async () => {
    await api.call('PUT', '/v1/services/web', { image: 'busybox:1', replicas: 2 });
    const res = await api.call('GET', '/v1/services/web/logs?follow=1');
    expect(res.statusCode).toBe(200);
    expect(res.headers['content-type']).toMatch(/^application\/x-ndjson/);
    const lines = res.body.split('\n').filter(Boolean).map((l) => JSON.parse(l));
    expect(lines).toHaveLength(2);
    // No node at all: pending, nothing to read.
    for (const l of lines) expect(l).toEqual({ replica: expect.stringMatching(/^web/), node: null, error: expect.stringMatching(/^not placed on any node/) });
  });
});
