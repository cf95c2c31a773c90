/**
 * Health checks on the real engine: an agent's reconcile loop on the DockerRuntime, its reports
 * collected as the hub would hold them. http and tcp checks are the agent's own probes of the
 * container's bridge address; exec checks are the engine's HEALTHCHECK. Every test uses its own
 * node id and removes what it created.
 */
import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, expect, it, vi } from 'vitest';
import { ReconcileLoop } from '../../agent/reconciler/reconcile-loop.js';
import { LABELS } from '../../agent/runtime/container-runtime.js';
import { DockerRuntime } from '../../agent/runtime/docker-runtime.js';
import { containerSpecHash, type ContainerSpec, type HealthCheck } from '../../shared/container-spec.js';
import type { AssignedReplica, ReplicaReport } from '../../shared/protocol.js';
import { containerSpec } from '../helpers/container-spec.js';
import { cleanupNode, describeDocker, docker } from '../helpers/docker.js';

const IMAGE = 'tether-test/busybox:1';
/** busybox httpd on 8080, serving one page it writes first. */
const HTTPD = ['sh', '-c', 'mkdir -p /www && echo ok > /www/index.html && exec httpd -f -p 8080 -h /www'];

const check = (more: Partial<HealthCheck>): HealthCheck => ({
  type: 'http',
  port: 8080,
  path: '/index.html',
  statusMin: 200,
  statusMax: 399,
  command: null,
  intervalMs: 300,
  timeoutMs: 2_000,
  retries: 2,
  startPeriodMs: 0,
  ...more,
});

function replica(replicaId: string, overrides: Partial<ContainerSpec>): AssignedReplica {
  const container = containerSpec(IMAGE, overrides);
  return { replicaId, service: `svc-${replicaId}`, specHash: containerSpecHash(container), container };
}

describeDocker('health checks on the real engine', () => {
  const nodeId = `hc-${randomUUID().slice(0, 8)}`;
  const runtime = new DockerRuntime();
  const reports = new Map<string, ReplicaReport>();
  let loop: ReconcileLoop | undefined;

  const startLoop = async () => {
    loop = new ReconcileLoop({
      nodeId,
      runtime,
      publishAddress: '127.0.0.1',
      logger: { info() {}, warn() {}, error() {} },
      onReport: (changed) => changed.forEach((r) => reports.set(r.replicaId, r)),
      onApplied: () => undefined,
      stopTimeoutS: 1,
    });
    await loop.start();
  };

  const healthOf = (replicaId: string) => reports.get(replicaId)?.health;

  beforeAll(async () => {
    await startLoop();
    loop!.setTarget(1, [
      replica('web', { command: HTTPD, healthcheck: check({}) }),
      replica('missing', { command: HTTPD, healthcheck: check({ path: '/missing.html' }) }),
      replica('tcp', { command: HTTPD, healthcheck: check({ type: 'tcp', path: null, statusMin: null, statusMax: null }) }),
      replica('exec-fails', { command: ['sleep', '300'], healthcheck: check({ type: 'exec', port: null, path: null, statusMin: null, statusMax: null, command: ['sh', '-c', 'exit 3'], retries: 1 }) }),
      replica('exec-passes', { command: ['sleep', '300'], healthcheck: check({ type: 'exec', port: null, path: null, statusMin: null, statusMax: null, command: ['true'] }) }),
      replica('unchecked', { command: ['sleep', '300'] }),
    ]);
  }, 60_000);

  afterAll(async () => {
    await loop?.stop();
    await cleanupNode(nodeId);
  });

  it('reports an http check on a page that answers as healthy, and one on a page that 404s as unhealthy with the status', async () => {
    await vi.waitFor(() => expect(healthOf('web')).toEqual({ status: 'healthy', output: null }), { timeout: 30_000, interval: 100 });
    await vi.waitFor(() => expect(healthOf('missing')?.status).toBe('unhealthy'), { timeout: 30_000, interval: 100 });
    expect(healthOf('missing')!.output).toContain('GET /missing.html: HTTP 404');
    expect(reports.get('missing')?.state).toBe('running');
  });

  it('reports a tcp check on a listening port as healthy', async () => {
    await vi.waitFor(() => expect(healthOf('tcp')).toEqual({ status: 'healthy', output: null }), { timeout: 30_000, interval: 100 });
  });

  it("runs exec checks as the engine's HEALTHCHECK: exit 3 is unhealthy, true is healthy", async () => {
    await vi.waitFor(() => expect(healthOf('exec-fails')).toEqual({ status: 'unhealthy', output: 'exited with code 3' }), { timeout: 30_000, interval: 100 });
    await vi.waitFor(() => expect(healthOf('exec-passes')).toEqual({ status: 'healthy', output: null }), { timeout: 30_000, interval: 100 });
    const [container] = await docker.listContainers([`${LABELS.replicaId}=exec-fails`, `${LABELS.nodeId}=${nodeId}`]);
    const inspect = (await docker.inspectContainer(container!.Id)) as unknown as { Config: { Healthcheck?: { Test: string[] } } };
    expect(inspect.Config.Healthcheck?.Test).toEqual(['CMD', 'sh', '-c', 'exit 3']);
  });

  it('sends no health for a replica without a check', async () => {
    await vi.waitFor(() => expect(reports.get('unchecked')?.state).toBe('running'), { timeout: 30_000, interval: 100 });
    expect('health' in reports.get('unchecked')!).toBe(false);
  });

  it('derives health again after an agent restart, from the containers alone', async () => {
    await loop!.stop();
    reports.clear();
    // No target yet (as before the hub's first): the first listing alone is reported.
    await startLoop();
    // The engine kept the exec checks' health; the agent's own probes start over and pass again.
    expect(loop!.snapshot().find((r) => r.replicaId === 'exec-fails')?.health).toEqual({ status: 'unhealthy', output: 'exited with code 3' });
    expect(loop!.snapshot().find((r) => r.replicaId === 'web')?.health).toEqual({ status: 'starting', output: null });
  });
});
