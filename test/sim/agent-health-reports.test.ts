/**
 * Health in an agent's replica reports (protocol version 3): the reconcile loop on the simulated
 * engine, whose checks turn healthy one interval after the start unless a test says otherwise,
 * and on a listing that sends the agent to probe a loopback server itself (http checks).
 */
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { ReconcileLoop } from '../../agent/reconciler/reconcile-loop.js';
import type { ContainerRuntime } from '../../agent/runtime/container-runtime.js';
import { SimulatedRuntime } from '../../agent/runtime/simulated-runtime.js';
import { containerSpecHash, type ContainerSpec, type HealthCheck } from '../../shared/container-spec.js';
import { httpCheck } from '../helpers/health-checks.js';
import type { AssignedReplica, ReplicaReport } from '../../shared/protocol.js';
import { containerSpec } from '../helpers/container-spec.js';

const loops: ReconcileLoop[] = [];
const servers: http.Server[] = [];
afterEach(async () => {
  await Promise.all(loops.splice(0).map((l) => l.stop()));
  await Promise.all(servers.splice(0).map((s) => new Promise<void>((resolve) => s.close(() => resolve()))));
});

const check = (more: Partial<HealthCheck> = {}): HealthCheck => httpCheck({ intervalMs: 150, ...more });

function replica(replicaId: string, overrides: Partial<ContainerSpec> = {}): AssignedReplica {
  const container = containerSpec('httpd:1', overrides);
  return { replicaId, service: 'web', specHash: containerSpecHash(container), container };
}

async function startAgent(runtime: ContainerRuntime, nodeId = 'node-a') {
  const reports = new Map<string, ReplicaReport>();
  const sent: ReplicaReport[] = [];
  const loop = new ReconcileLoop({
    nodeId,
    runtime,
    publishAddress: null,
    logger: { info() {}, warn() {}, error() {} },
    onReport: (changed) => changed.forEach((r) => (sent.push(r), reports.set(r.replicaId, r))),
    onApplied: () => undefined,
    retryBaseMs: 5,
    retryCapMs: 40,
    reportWindowMs: 20,
  });
  loops.push(loop);
  await loop.start();
  return { loop, reports, sent };
}

const eventually = (check: () => void) => vi.waitFor(check, { timeout: 5_000, interval: 10 });

describe('health in replica reports', () => {
  it('reports a checked replica starting, then healthy after its first interval; one without a check has no health', async () => {
    const runtime = new SimulatedRuntime({ images: ['httpd:1'] });
    const a = await startAgent(runtime);
    a.loop.setTarget(1, [replica('checked', { healthcheck: check() }), replica('plain')]);
    await eventually(() => expect(a.reports.get('checked')).toMatchObject({ state: 'running', health: { status: 'starting', output: null } }));
    await eventually(() => expect(a.reports.get('checked')?.health).toEqual({ status: 'healthy', output: null }));
    expect(a.reports.get('plain')?.state).toBe('running');
    expect(a.sent.filter((r) => r.replicaId === 'plain').every((r) => !('health' in r))).toBe(true);
    expect(a.loop.snapshot().find((r) => r.replicaId === 'checked')?.health?.status).toBe('healthy');
  });

  it("sends a change of the engine's health as a change, and derives it again after an agent restart", async () => {
    const runtime = new SimulatedRuntime({ images: ['httpd:1'] });
    const a = await startAgent(runtime);
    a.loop.setTarget(1, [replica('r1', { healthcheck: check({ type: 'exec', command: ['true'], port: null, path: null }) })]);
    await eventually(() => expect(a.reports.get('r1')?.health?.status).toBe('healthy'));
    const id = runtime.containers()[0]!.id;
    runtime.setHealth(id, { status: 'unhealthy', output: 'exit 3' });
    await eventually(() => expect(a.reports.get('r1')?.health).toEqual({ status: 'unhealthy', output: 'exit 3' }));

    // A new agent process knows nothing from memory: its first listing says it all.
    await a.loop.stop();
    const b = await startAgent(runtime);
    expect(b.loop.snapshot()).toEqual([expect.objectContaining({ replicaId: 'r1', health: { status: 'unhealthy', output: 'exit 3' } })]);
  });

  it('probes an http check itself where the engine runs none, and reports each change without waiting for a pass', async () => {
    let status = 200;
    const server = http.createServer((_req, res) => res.writeHead(status).end('body'));
    servers.push(server);
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', () => resolve()));
    const port = (server.address() as AddressInfo).port;

    const sim = new SimulatedRuntime({ images: ['httpd:1'] });
    // The engine as Docker is for http checks: it keeps no health of its own, and gives an address.
    const runtime: ContainerRuntime = Object.assign(Object.create(sim) as SimulatedRuntime, {
      listContainers: async (nodeId: string) =>
        (await sim.listContainers(nodeId)).map((c) => ({ ...c, engineHealth: null, address: '127.0.0.1' })),
    });
    const a = await startAgent(runtime);
    a.loop.setTarget(1, [replica('r1', { healthcheck: check({ port, path: '/ready' }) })]);
    await eventually(() => expect(a.reports.get('r1')?.health).toEqual({ status: 'healthy', output: null }));
    status = 500;
    await eventually(() => expect(a.reports.get('r1')?.health).toEqual({ status: 'unhealthy', output: 'GET /ready: HTTP 500 Internal Server Error: body' }));
    status = 204;
    await eventually(() => expect(a.reports.get('r1')?.health).toEqual({ status: 'healthy', output: null }));
  });
});
