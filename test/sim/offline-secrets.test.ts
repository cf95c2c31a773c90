/**
 * An agent started without its hub (an offline reboot) on its cached target: with offline
 * secrets (the default) its replicas get their secrets from the sealed cache; with
 * --no-offline-secrets the cache kept none, so a replica that needs one fails, saying why, until
 * the hub is back.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterEach, expect, it, vi } from 'vitest';
import { Agent } from '../../agent/agent.js';
import { SimulatedRuntime, simulatedFacts } from '../../agent/runtime/simulated-runtime.js';
import { TargetCache } from '../../agent/target-cache.js';
import type { TargetFrame } from '../../shared/protocol.js';
import { containerSpec } from '../helpers/container-spec.js';
import { silentLogger } from '../helpers/silent-logger.js';

const SECRET = 'offline-reboot-password';

const target: TargetFrame = {
  type: 'target',
  generation: 4,
  replicas: [
    {
      replicaId: 'api-1',
      service: 'api',
      specHash: 'hash-api',
      container: containerSpec('tether-test/busybox:1', { envFrom: { DB_PASSWORD: { source: 'secret', name: 'db', version: 2 } } }),
    },
  ],
  values: [{ source: 'secret', name: 'db', version: 2, data: Buffer.from(SECRET).toString('base64') }],
};

let dir: string;
let agent: Agent | null = null;
afterEach(async () => {
  await agent?.stop();
  agent = null;
  await rm(dir, { recursive: true, force: true });
});

/** An agent whose hub is nowhere (nothing listens on port 1), on the target cached in `dir`. */
async function startOffline(offlineSecrets: boolean): Promise<SimulatedRuntime> {
  dir = await mkdtemp(path.join(os.tmpdir(), 'tether-offline-secrets-'));
  await new TargetCache(dir, { offlineSecrets }).save(target);
  const runtime = new SimulatedRuntime();
  agent = new Agent({
    identity: { hubUrl: 'http://127.0.0.1:1', nodeId: 'node-offline', credential: 'tnc_unused' },
    name: 'offline',
    labels: {},
    advertiseAddress: null,
    publishAddress: null,
    runtime,
    targetCache: new TargetCache(dir, { offlineSecrets }),
    facts: simulatedFacts('offline'),
    logger: silentLogger,
    retryBaseMs: 50,
    reconnectBaseMs: 1000,
  });
  await agent.start();
  return runtime;
}

it('runs a replica that needs a secret from the sealed cache', async () => {
  const runtime = await startOffline(true);
  await vi.waitFor(() => expect(runtime.containers().map((c) => c.inputs?.env.DB_PASSWORD)).toEqual([SECRET]), { timeout: 10_000, interval: 20 });
});

it('with --no-offline-secrets, fails a replica that needs a secret until the hub is back, saying why', async () => {
  const runtime = await startOffline(false);
  await vi.waitFor(
    () => {
      const report = agent!.loop.snapshot().find((r) => r.replicaId === 'api-1');
      expect(report?.error).toMatch(/^create failed: secret db version 2 is not on this node: secrets are kept in memory only \(--no-offline-secrets\)/);
    },
    { timeout: 10_000, interval: 20 },
  );
  expect(runtime.containers()).toEqual([]);
});
