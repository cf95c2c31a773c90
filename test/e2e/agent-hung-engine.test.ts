/**
 * The agent's reconcile loop on the real engine, reached through a proxy that can freeze: it
 * keeps every connection open and forwards nothing, as a wedged dockerd does. The loop must say
 * so and go on retrying, and run the replica once the engine answers again.
 */
import { randomUUID } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, expect, it, vi } from 'vitest';
import { ReconcileLoop } from '../../agent/reconciler/reconcile-loop.js';
import { DockerRuntime } from '../../agent/runtime/docker-runtime.js';
import { containerSpecHash } from '../../shared/container-spec.js';
import type { ReplicaReport } from '../../shared/protocol.js';
import { cleanupNode, describeDocker, sleeperSpec } from '../helpers/docker.js';
import { EngineProxy } from '../helpers/engine-proxy.js';

const IMAGE = '127.0.0.1:5000/busybox:1';
const DEADLINES = { queryMs: 1_000, createMs: 2_000, startMs: 2_000, stopMarginMs: 2_000, removeMs: 2_000, pullStallMs: 2_000, eventsIdleMs: 1_000 };

describeDocker('the agent on an engine that stops answering', () => {
  let dir = '';
  let proxy: EngineProxy | undefined;
  const nodeId = `hung-${randomUUID().slice(0, 8)}`;

  beforeAll(async () => {
    dir = await mkdtemp(path.join(os.tmpdir(), 'tether-hung-engine-'));
    proxy = await EngineProxy.start(path.join(dir, 'docker.sock'));
  });

  afterAll(async () => {
    await proxy?.close();
    await rm(dir, { recursive: true, force: true });
    await cleanupNode(nodeId);
  });

  it('while the engine hangs the loop reports engine timeouts and keeps retrying; then it runs the replica', async () => {
    const runtime = new DockerRuntime({ socketPath: path.join(dir, 'docker.sock'), deadlines: DEADLINES });
    if (!(await runtime.hasImage(IMAGE))) await runtime.pullImage(IMAGE, null);
    const failures: string[] = [];
    const reports: ReplicaReport[] = [];
    const log = (obj: object, msg: string): void => void (msg === 'reconcile pass failed' && failures.push(JSON.stringify(obj)));
    const loop = new ReconcileLoop({
      nodeId,
      runtime,
      publishAddress: null,
      logger: { info() {}, warn: log, error: log },
      onReport: (changed) => reports.push(...changed),
      onApplied: () => {},
      resyncIntervalMs: 500,
      stopTimeoutS: 1,
    });
    proxy!.frozen = true;
    const starting = loop.start();
    try {
      const spec = sleeperSpec(IMAGE);
      loop.setTarget(1, [{ replicaId: 'r1', service: 'web', specHash: containerSpecHash(spec), container: spec }]);
      // Not one failure and then silence: the loop goes on trying, each try ending at its deadline.
      await vi.waitFor(() => expect(failures.length).toBeGreaterThanOrEqual(2), { timeout: 20_000, interval: 50 });
      expect(failures[0]).toMatch(/did not answer within/);
      proxy!.frozen = false;
      await starting;
      await vi.waitFor(() => expect(reports.filter((r) => r.replicaId === 'r1').at(-1)?.state).toBe('running'), { timeout: 30_000, interval: 50 });
    } finally {
      proxy!.frozen = false;
      await starting.catch(() => {});
      await loop.stop();
    }
  }, 60_000);
});
