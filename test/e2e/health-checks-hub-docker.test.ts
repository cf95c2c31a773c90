/**
 * Health checks through the whole path: the hub and an agent as real processes on the real
 * engine. The agent speaks protocol version 3, gets a service with a check, runs it and reports;
 * the service view shows what it found.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, expect, it, vi } from 'vitest';
import { cleanupNode, describeDocker } from '../helpers/docker.js';
import { hubClient, randomPort, startProgram, stopProgram, waitForHealthy, type Proc } from '../helpers/processes.js';

const IMAGE = 'tether-test/busybox:1';
const HTTPD = ['sh', '-c', 'mkdir -p /www && echo ok > /www/index.html && exec httpd -f -p 8080 -h /www'];

describeDocker('health checks, hub and agent processes on the real engine', () => {
  const hubPort = randomPort();
  const url = `http://127.0.0.1:${hubPort}`;
  const service = `hc-${process.pid}`;
  let dir = '';
  let hub: Proc | undefined;
  let agent: Proc | undefined;
  let nodeId: string | undefined;
  let api: Awaited<ReturnType<typeof hubClient>>;

  beforeAll(async () => {
    dir = await mkdtemp(path.join(os.tmpdir(), 'tether-e2e-health-'));
    hub = startProgram('hub', ['--port', String(hubPort), '--data-dir', path.join(dir, 'hub'), '--heartbeat-interval-ms', '500', '--heartbeat-grace-ms', '3000']);
    await waitForHealthy(url);
    await vi.waitFor(() => expect(hub!.output()).toContain('admin token:'), { timeout: 10_000 });
    api = await hubClient(url, path.join(dir, 'hub'));
    const { body } = await api<{ token: string }>('POST', '/v1/join-tokens', {});
    agent = startProgram('agent', ['--hub', url, '--join-token', body.token, '--data-dir', path.join(dir, 'agent'), '--name', `e2e-health-${process.pid}`, '--publish-address', '127.0.0.1']);
    await vi.waitFor(
      async () => {
        const nodes = (await api<{ nodes: Array<{ id: string; state: string }> }>('GET', '/v1/nodes')).body.nodes;
        expect(nodes.filter((n) => n.state === 'ready')).toHaveLength(1);
        nodeId = nodes[0]!.id;
      },
      { timeout: 30_000, interval: 200 },
    );
  }, 60_000);

  afterAll(async () => {
    await stopProgram(agent);
    await stopProgram(hub);
    if (nodeId) await cleanupNode(nodeId);
    await rm(dir, { recursive: true, force: true });
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
  });
});
