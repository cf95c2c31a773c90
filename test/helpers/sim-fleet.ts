/**
 * A hub in this process on a real port, and agents in this process on simulated container
 * runtimes: the real hub, the real agent code and the real protocol over real WebSockets, with
 * only the container engine simulated. For scheduler and fleet behaviour, never as proof that
 * Docker works.
 */
import { randomBytes } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import type { FastifyInstance } from 'fastify';
import WebSocket from 'ws';
import { Agent } from '../../agent/agent.js';
import { SimulatedRuntime, simulatedFacts } from '../../agent/runtime/simulated-runtime.js';
import { buildHub } from '../../hub/app.js';
import { MasterKeyring } from '../../hub/secrets/master-keyring.js';
import type { Hub, HubConfig } from '../../hub/hub.js';
import { LowdbStore, type LowdbStoreOptions } from '../../hub/store/lowdb-store.js';
import { PROTOCOL_VERSION, type HelloFrame, type NodeFacts } from '../../shared/protocol.js';
import { silentLogger } from './silent-logger.js';

export const ADMIN_TOKEN = 'tat_test-admin-token';

export function simFacts(overrides: Partial<NodeFacts> = {}): NodeFacts {
  return simulatedFacts('sim', overrides);
}

/** A hello as an agent says it, for tests that speak the protocol by hand; they change what they need. */
export function helloFrame(name: string, overrides: Partial<HelloFrame> = {}): HelloFrame {
  return {
    type: 'hello',
    protocolVersion: PROTOCOL_VERSION,
    name,
    labels: {},
    advertiseAddress: null,
    facts: simFacts({ hostname: name }),
    appliedGeneration: 0,
    replicas: [],
    ...overrides,
  };
}

/** A device speaking the protocol by hand: connects with `credential`, says `hello`, resolves at the welcome. */
export async function rawNode(hubUrl: string, credential: string, hello: HelloFrame): Promise<WebSocket> {
  const ws = new WebSocket(`${hubUrl.replace('http', 'ws')}/v1/agent/connect`, { headers: { authorization: `Bearer ${credential}` } });
  ws.on('error', () => undefined);
  await new Promise<void>((resolve, reject) => {
    ws.once('open', () => resolve());
    ws.once('error', reject);
  });
  const welcomed = new Promise<void>((resolve) => ws.once('message', () => resolve()));
  ws.send(JSON.stringify(hello));
  await welcomed;
  return ws;
}

export interface SimAgentOptions {
  name?: string;
  labels?: Record<string, string>;
  facts?: Partial<NodeFacts>;
  runtime?: SimulatedRuntime;
  /** Where the agent connects (a fault proxy in front of the hub); the hub itself by default. */
  hubUrl?: string;
}

export interface SimFleetOptions {
  /** Called before each store file write of the hub; throwing (or rejecting) fails it (see LowdbStoreOptions). */
  beforeWrite?: LowdbStoreOptions['beforeWrite'];
}

export class SimFleet {
  app!: FastifyInstance;
  hub!: Hub;
  url = '';
  dataDir = '';
  readonly agents: Agent[] = [];
  readonly runtime = new SimulatedRuntime();
  /** Numbers agents in the order addAgent is called, so that agents added at once differ. */
  private agentsAdded = 0;
  private beforeWrite: SimFleetOptions['beforeWrite'];
  /** The master key of every hub this fleet starts: a restarted hub opens the secrets the last one sealed. */
  readonly sealer = new MasterKeyring(randomBytes(32));

  static async start(config: Partial<HubConfig> = {}, opts: SimFleetOptions = {}): Promise<SimFleet> {
    const fleet = new SimFleet();
    fleet.beforeWrite = opts.beforeWrite;
    fleet.dataDir = await mkdtemp(path.join(os.tmpdir(), 'tether-sim-'));
    await fleet.startHub(config);
    return fleet;
  }

  async startHub(config: Partial<HubConfig> = {}): Promise<void> {
    const store = new LowdbStore({ dir: this.storeDir, nodeShards: 4, serviceShards: 4, beforeWrite: this.beforeWrite, sealer: this.sealer });
    await store.open();
    const built = await buildHub({ store, adminToken: ADMIN_TOKEN, sealer: this.sealer, config: { heartbeatIntervalMs: 200, heartbeatGraceMs: 2000, ...config } });
    this.app = built.app;
    this.hub = built.hub;
    const port = this.url ? Number(new URL(this.url).port) : 0;
    await this.app.listen({ host: '127.0.0.1', port });
    const address = this.app.server.address();
    if (typeof address !== 'object' || !address) throw new Error('hub did not listen');
    this.url = `http://127.0.0.1:${address.port}`;
  }

  /** The hub's store directory, for tests that open a second store on it. */
  get storeDir(): string {
    return path.join(this.dataDir, 'store');
  }

  async stopHub(): Promise<void> {
    await this.app.close();
  }

  async addAgent(opts: SimAgentOptions = {}): Promise<Agent> {
    const n = ++this.agentsAdded;
    const { token } = await this.hub.nodes.createJoinToken(600);
    const name = opts.name ?? `sim-${n}`;
    const joined = await this.hub.nodes.join(token, name, opts.labels ?? {});
    if (!joined) throw new Error('join refused');
    const agent = new Agent({
      identity: { hubUrl: opts.hubUrl ?? this.url, nodeId: joined.nodeId, credential: joined.credential },
      name,
      labels: opts.labels ?? {},
      advertiseAddress: null,
      // Each agent publishes on its own loopback address, as agents sharing one engine must.
      publishAddress: `127.0.0.${n + 1}`,
      runtime: opts.runtime ?? this.runtime,
      targetCache: null,
      facts: simFacts({ hostname: name, ...opts.facts }),
      logger: silentLogger,
      resyncIntervalMs: 1000,
      // Images a test's agent no longer uses go at once (see image-retention.ts for the grace).
      imageReleaseGraceMs: 0,
      reconnectBaseMs: 50,
      reconnectCapMs: 500,
      retryBaseMs: 50,
    });
    this.agents.push(agent);
    await agent.start();
    // Ready means the hub has its hello (and facts), so placement sees the node.
    const deadline = Date.now() + 10_000;
    while (!agent.link.connected) {
      if (Date.now() > deadline) throw new Error(`agent ${name} did not connect within 10 s`);
      await new Promise((r) => setTimeout(r, 10));
    }
    return agent;
  }

  async stopAgent(agent: Agent): Promise<void> {
    await agent.stop();
    this.agents.splice(this.agents.indexOf(agent), 1);
  }

  async api<T = any>(method: string, url: string, body?: unknown): Promise<{ status: number; body: T }> {
    const res = await this.app.inject({
      method: method as 'GET',
      url,
      headers: { authorization: `Bearer ${ADMIN_TOKEN}` },
      ...(body === undefined ? {} : { payload: body as object }),
    });
    return { status: res.statusCode, body: res.body ? (JSON.parse(res.body) as T) : (undefined as T) };
  }

  async close(): Promise<void> {
    await Promise.all(this.agents.map((a) => a.stop()));
    await this.app.close().catch(() => undefined);
    await rm(this.dataDir, { recursive: true, force: true });
  }
}
