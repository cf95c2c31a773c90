/**
 * Replicas restarted or moved after the hub loses the whole fleet for a while, and after the hub
 * itself is paused, beside a same-run baseline where a single node is cut (its replicas should
 * move: the failure detector still works). Goal for the first two: 0.
 *
 * Each scenario: a real hub process (dist/hub/main.js, short timings), 4 agents in this process on
 * a simulated engine, each behind a TCP proxy that can cut its link; a service of 8 replicas.
 * Loopback only, bounded in time. Prints one JSON line.
 *
 *   node dist/bench/robustness/partition.js
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { Agent } from '../../agent/agent.js';
import { joinHub } from '../../agent/node-identity.js';
import { SimulatedRuntime, simulatedFacts } from '../../agent/runtime/simulated-runtime.js';
import { distDir, freePort } from '../processes.js';

const LOST_AFTER_MS = 1500;
const HUB_FLAGS = ['--insecure-http', '--heartbeat-interval-ms', '200', '--heartbeat-grace-ms', '800', '--lost-after-ms', String(LOST_AFTER_MS), '--log-level', 'warn'];
const AGENTS = 4;
const REPLICAS = 8;
const quiet = { info() {}, warn() {}, error() {} };
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** A loopback TCP proxy whose link can be cut (connections destroyed, new ones refused) and restored. */
class CutProxy {
  private cutNow = false;
  private readonly sockets = new Set<net.Socket>();
  private constructor(
    private readonly server: net.Server,
    readonly port: number,
  ) {}

  static async start(targetPort: number): Promise<CutProxy> {
    let proxy: CutProxy | undefined;
    const server = net.createServer((client) => proxy!.accept(client, targetPort));
    server.on('error', () => undefined);
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    proxy = new CutProxy(server, (server.address() as net.AddressInfo).port);
    return proxy;
  }

  private accept(client: net.Socket, targetPort: number): void {
    client.on('error', () => undefined);
    if (this.cutNow) return void client.destroy();
    const upstream = net.connect(targetPort, '127.0.0.1');
    upstream.on('error', () => client.destroy());
    client.on('error', () => upstream.destroy());
    client.on('close', () => upstream.destroy());
    upstream.on('close', () => client.destroy());
    for (const s of [client, upstream]) {
      this.sockets.add(s);
      s.on('close', () => this.sockets.delete(s));
    }
    client.pipe(upstream);
    upstream.pipe(client);
  }

  cut(): void {
    this.cutNow = true;
    for (const s of this.sockets) s.destroy();
  }

  restore(): void {
    this.cutNow = false;
  }

  close(): void {
    this.cut();
    this.server.close();
  }
}

interface Replica {
  replicaId: string;
  nodeId: string | null;
}

class Cluster {
  hub!: ChildProcess;
  url = '';
  token = '';
  readonly runtime = new SimulatedRuntime();
  readonly agents: Agent[] = [];
  readonly proxies: CutProxy[] = [];
  readonly dir = mkdtempSync(path.join(os.tmpdir(), 'tether-bench-partition-'));

  async start(): Promise<void> {
    const port = await freePort();
    this.url = `http://127.0.0.1:${port}`;
    this.hub = spawn(process.execPath, [path.join(distDir, 'hub', 'main.js'), '--port', String(port), '--data-dir', this.dir, ...HUB_FLAGS], {
      stdio: 'ignore',
    });
    await this.until(async () => (await fetch(`${this.url}/healthz`).catch(() => null))?.ok === true, 20_000, 'the hub did not start');
    this.token = readFileSync(path.join(this.dir, 'admin-token'), 'utf8').trim();
    const { token: joinToken } = await this.api<{ token: string }>('POST', '/v1/join-tokens', {});
    for (let i = 0; i < AGENTS; i++) {
      const proxy = await CutProxy.start(port);
      this.proxies.push(proxy);
      const name = `partition-${i}`;
      const identity = await joinHub(this.url, joinToken, name, {});
      const agent = new Agent({
        identity: { ...identity, hubUrl: `http://127.0.0.1:${proxy.port}` },
        name,
        labels: {},
        advertiseAddress: null,
        publishAddress: `127.0.0.${i + 2}`,
        runtime: this.runtime,
        targetCache: null,
        facts: simulatedFacts('sim', { hostname: name }),
        logger: quiet,
        resyncIntervalMs: 1000,
        reconnectBaseMs: 50,
        reconnectCapMs: 500,
        retryBaseMs: 50,
      });
      this.agents.push(agent);
      await agent.start();
    }
    await this.api('PUT', '/v1/services/web', { image: 'tether-test/busybox:1', command: ['/bin/httpd', '-f', '-p', '8080'], replicas: REPLICAS });
    await this.settled();
  }

  async api<T = unknown>(method: string, route: string, body?: unknown): Promise<T> {
    const res = await fetch(`${this.url}${route}`, {
      method,
      headers: { authorization: `Bearer ${this.token}`, ...(body === undefined ? {} : { 'content-type': 'application/json' }) },
      body: body === undefined ? undefined : JSON.stringify(body),
    });
    return (await res.json()) as T;
  }

  async placements(): Promise<string[]> {
    const s = await this.api<{ status: { replicas: Replica[] } }>('GET', '/v1/services/web');
    return s.status.replicas.map((r) => `${r.replicaId}@${r.nodeId}`);
  }

  /** Every node ready and every replica running. */
  async settled(timeoutMs = 20_000): Promise<void> {
    await this.until(
      async () => {
        const { nodes } = await this.api<{ nodes: Array<{ state: string }> }>('GET', '/v1/nodes');
        const s = await this.api<{ status: { running: number; replicas: unknown[] } }>('GET', '/v1/services/web');
        return nodes.every((n) => n.state === 'ready') && s.status.running === REPLICAS && s.status.replicas.length === REPLICAS;
      },
      timeoutMs,
      'the fleet did not settle',
    );
  }

  async until(check: () => Promise<boolean>, timeoutMs: number, what: string): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    while (!(await check().catch(() => false))) {
      if (Date.now() > deadline) throw new Error(`${what} within ${timeoutMs} ms`);
      await sleep(100);
    }
  }

  async close(): Promise<void> {
    this.hub.kill('SIGCONT');
    await Promise.all(this.agents.map((a) => a.stop()));
    for (const p of this.proxies) p.close();
    this.hub.kill('SIGTERM');
    await new Promise((r) => (this.hub.exitCode !== null ? r(null) : this.hub.once('exit', r)));
    rmSync(this.dir, { recursive: true, force: true });
  }
}

/** Runs one fault for 2x lostAfter, lets the fleet settle, and counts what changed. */
async function scenario(fault: (c: Cluster) => void, heal: (c: Cluster) => void): Promise<{ replicasMoved: number; containersCreated: number }> {
  const c = new Cluster();
  try {
    await c.start();
    const before = new Set(await c.placements());
    const creates = c.runtime.calls.createContainer;
    fault(c);
    await sleep(2 * LOST_AFTER_MS);
    heal(c);
    await c.settled();
    // Another lostAfter, for anything the return set off.
    await sleep(LOST_AFTER_MS + 1000);
    await c.settled();
    const after = await c.placements();
    return { replicasMoved: after.filter((p) => !before.has(p)).length, containersCreated: c.runtime.calls.createContainer - creates };
  } finally {
    await c.close();
  }
}

async function main(): Promise<void> {
  const timer = setTimeout(() => {
    process.stderr.write('partition bench: over 3 minutes, giving up\n');
    process.exit(1);
  }, 180_000);
  timer.unref();
  const fullPartition = await scenario(
    (c) => c.proxies.forEach((p) => p.cut()),
    (c) => c.proxies.forEach((p) => p.restore()),
  );
  const hubPaused = await scenario(
    (c) => c.hub.kill('SIGSTOP'),
    (c) => c.hub.kill('SIGCONT'),
  );
  const oneNodeCut = await scenario(
    (c) => c.proxies[0]!.cut(),
    (c) => c.proxies[0]!.restore(),
  );
  process.stdout.write(
    `${JSON.stringify({
      bench: 'partition',
      agents: AGENTS,
      replicas: REPLICAS,
      lostAfterMs: LOST_AFTER_MS,
      faultMs: 2 * LOST_AFTER_MS,
      fullPartition,
      hubPaused,
      baselineOneNodeCut: oneNodeCut,
    })}\n`,
  );
  process.exit(0);
}

main().catch((error: unknown) => {
  process.stderr.write(`partition bench: ${(error as Error).stack ?? String(error)}\n`);
  process.exit(1);
});
