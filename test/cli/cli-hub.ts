/**
 * A real hub in process, listening on a loopback port (HTTP, or HTTPS with its own CA), for the
 * CLI's tests: it keeps the method, URL and If-Match of every request it gets, and can run a
 * change of its own just before the next write arrives (another operator's, for If-Match).
 */
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import type { FastifyRequest } from 'fastify';
import { afterEach, beforeEach } from 'vitest';
import type WebSocket from 'ws';
import { Agent } from '../../agent/agent.js';
import type { ContainerLogSource } from '../../agent/logs/container-logs.js';
import { SimulatedRuntime } from '../../agent/runtime/simulated-runtime.js';
import { buildHub } from '../../hub/app.js';
import type { HubConfig } from '../../hub/hub.js';
import { LowdbStore } from '../../hub/store/lowdb-store.js';
import type { HubTls } from '../../hub/tls/hub-certificates.js';
import { helloFrame, rawNode, simFacts } from '../helpers/sim-fleet.js';
import { silentLogger } from '../helpers/silent-logger.js';
import { tempHome } from './cli-harness.js';

export const ADMIN = 'cli-test-admin-token';

export interface SeenRequest {
  method: string;
  url: string;
  ifMatch: string | undefined;
  lastEventId: string | undefined;
}

/**
 * A hub and a fresh home dir (for the CLI's config file) for each test of the file, closed and
 * removed after it. `opts` is read when each test starts (a TLS test makes its material first).
 */
export function cliHubPerTest(opts: () => Parameters<typeof cliHub>[0] = () => ({})) {
  let hub: CliHub | null = null;
  let home: Awaited<ReturnType<typeof tempHome>> | null = null;
  beforeEach(async () => {
    hub = await cliHub(opts());
    home = await tempHome();
  });
  afterEach(async () => {
    await hub?.close();
    await home?.remove();
    hub = home = null;
  });
  return {
    get hub(): CliHub {
      return hub!;
    },
    get home(): Awaited<ReturnType<typeof tempHome>> {
      return home!;
    },
  };
}

export async function cliHub(opts: { tls?: HubTls; config?: Partial<HubConfig> } = {}) {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'tether-cli-hub-'));
  const store = new LowdbStore({ dir });
  await store.open();
  const { app, hub } = await buildHub({ store, adminToken: ADMIN, ...(opts.tls ? { tls: opts.tls } : {}), ...(opts.config ? { config: opts.config } : {}) });
  const requests: SeenRequest[] = [];
  const devices: WebSocket[] = [];
  const agents: Agent[] = [];
  let beforeNextWrite: (() => Promise<void>) | null = null;
  app.addHook('onRequest', async (request: FastifyRequest) => {
    const ifMatch = request.headers['if-match'];
    const lastEventId = request.headers['last-event-id'];
    requests.push({
      method: request.method,
      url: request.url,
      ifMatch: typeof ifMatch === 'string' ? ifMatch : undefined,
      lastEventId: typeof lastEventId === 'string' ? lastEventId : undefined,
    });
    if (request.method !== 'GET' && beforeNextWrite) {
      const change = beforeNextWrite;
      beforeNextWrite = null;
      await change();
    }
  });
  await app.listen({ host: '127.0.0.1', port: 0 });
  const bound = app.server.address();
  if (typeof bound !== 'object' || !bound) throw new Error('not listening');
  const url = `${opts.tls ? 'https' : 'http'}://127.0.0.1:${bound.port}`;
  const call = async (method: string, route: string, body?: unknown) => {
    const response = await app.inject({ method: method as 'GET', url: route, headers: { authorization: `Bearer ${ADMIN}` }, ...(body !== undefined ? { payload: body as object } : {}) });
    return { status: response.statusCode, body: response.json() as Record<string, unknown> };
  };
  return {
    app,
    hub,
    url,
    port: bound.port,
    requests,
    call,
    /** Runs `change` when the next write (not a GET) arrives, before the hub handles that write. */
    beforeNextWrite(change: () => Promise<void>): void {
      beforeNextWrite = change;
    },
    /** A node joined with a join token (it never connects: unreachable). */
    async join(name: string, labels: Record<string, string> = {}): Promise<{ nodeId: string; credential: string }> {
      const token = await call('POST', '/v1/join-tokens', {});
      const joined = await app.inject({ method: 'POST', url: '/v1/join', payload: { joinToken: token.body.token, name, labels } });
      return joined.json() as { nodeId: string; credential: string };
    },
    /** A node that joins and stays connected (ready): replicas are placed on it. Plain HTTP only. */
    async connect(name: string, labels: Record<string, string> = {}): Promise<string> {
      const token = await call('POST', '/v1/join-tokens', {});
      const joined = await app.inject({ method: 'POST', url: '/v1/join', payload: { joinToken: token.body.token, name, labels } });
      const { nodeId, credential } = joined.json() as { nodeId: string; credential: string };
      devices.push(await rawNode(url, credential, helloFrame(name, { labels })));
      return nodeId;
    },
    /**
     * A real agent in this process on a simulated container runtime, whose containers' output is
     * `logs` (the engine's stream, faked): the hub's logs route reads it through the agent's link.
     */
    async agent(name: string, logs: ContainerLogSource): Promise<Agent> {
      const { nodeId, credential } = await this.join(name);
      const agent = new Agent({
        identity: { hubUrl: url, nodeId, credential },
        name,
        labels: {},
        advertiseAddress: null,
        publishAddress: '127.0.0.2',
        runtime: new SimulatedRuntime(),
        logs,
        targetCache: null,
        facts: simFacts({ hostname: name }),
        logger: silentLogger,
        reconnectBaseMs: 50,
        reconnectCapMs: 500,
      });
      agents.push(agent);
      await agent.start();
      while (!agent.link.connected) await new Promise((resolve) => setTimeout(resolve, 10));
      return agent;
    },
    async close(): Promise<void> {
      await Promise.all(agents.map((a) => a.stop()));
      for (const ws of devices) ws.terminate();
      await app.close();
      await rm(dir, { recursive: true, force: true });
    },
  };
}

export type CliHub = Awaited<ReturnType<typeof cliHub>>;
