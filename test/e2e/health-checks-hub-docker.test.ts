/**
 * Health checks through the whole path: the hub and an agent as real processes on the real
 * engine. The agent speaks protocol version 3, gets a service with a check, runs it and reports;
 * the service view shows what it found.
 */
import { afterAll, beforeAll, expect, it, vi } from 'vitest';
import { describeDocker } from '../helpers/docker.js';
import { startE2eFleet, type E2eFleet } from '../helpers/e2e-fleet.js';

const IMAGE = 'tether-test/busybox:1';
const HTTPD = ['sh', '-c', 'mkdir -p /www && echo ok > /www/index.html && exec httpd -f -p 8080 -h /www'];

describeDocker('health checks, hub and agent processes on the real engine', () => {
  const service = `hc-${process.pid}`;
  let fleet: E2eFleet;
  const api: E2eFleet['api'] = (...args) => fleet.api(...args);

  beforeAll(async () => {
    fleet = await startE2eFleet('health', ['127.0.0.1']);
  }, 60_000);

  afterAll(async () => {
    await fleet?.close();
  });

  const replicaOf = async () => (await api('GET', `/v1/services/${service}`)).body.status.replicas[0];

  it('shows a replica whose page 404s as unhealthy with the status, and healthy once the check asks a page that answers', async () => {
    const healthcheck = { type: 'http', port: 8080, path: '/missing.html', interval: '500ms', timeout: '500ms', retries: 2 };
    expect((await api('PUT', `/v1/services/${service}`, { image: IMAGE, command: HTTPD, replicas: 1, healthcheck })).status).toBe(201);
    await vi.waitFor(
      async () => {
        const r = await replicaOf();
        expect(r).toMatchObject({ state: 'running', health: 'unhealthy' });
        expect(r.healthOutput).toContain('HTTP 404');
      },
      { timeout: 60_000, interval: 250 },
    );
    expect((await api('PUT', `/v1/services/${service}`, { image: IMAGE, command: HTTPD, replicas: 1, healthcheck: { ...healthcheck, path: '/index.html' } })).status).toBe(200);
    await vi.waitFor(async () => expect(await replicaOf()).toMatchObject({ state: 'running', health: 'healthy', healthOutput: null }), {
      timeout: 60_000,
      interval: 250,
    });
  });

  it("shows an exec check's result from the engine's own HEALTHCHECK", async () => {
    const healthcheck = { type: 'exec', command: ['sh', '-c', 'exit 3'], interval: '500ms', timeout: '500ms', retries: 1 };
    expect((await api('PUT', `/v1/services/${service}`, { image: IMAGE, command: ['sleep', '300'], replicas: 1, healthcheck })).status).toBe(200);
    await vi.waitFor(async () => expect(await replicaOf()).toMatchObject({ state: 'running', health: 'unhealthy', healthOutput: 'exited with code 3' }), {
      timeout: 60_000,
      interval: 250,
    });
    expect((await api('DELETE', `/v1/services/${service}`)).status).toBe(200);
    // Its wait allows 60 s (a loaded engine runs exec checks late): the test's limit must too.
  }, 90_000);
});
