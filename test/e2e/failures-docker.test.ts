/**
 * Failure handling on real parts: the hub and agents as real processes, a real Docker engine.
 * Hub SIGKILL during a deploy, a device reboot while the hub is away, a cut link beyond lostAfter.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterEach, expect, it, vi } from 'vitest';
import { LABELS } from '../../agent/runtime/container-runtime.js';
import { cleanupNode, describeDocker, docker } from '../helpers/docker.js';
import { FaultProxy } from '../helpers/fault-proxy.js';
import { hubClient, startHub as startHubProgram, startProgram, stopProgram, type Proc } from '../helpers/processes.js';

const IMAGE = '127.0.0.1:5000/busybox:1';
const HTTPD = ['/bin/httpd', '-f', '-p', '8080', '-h', '/www'];

interface Cluster {
  dir: string;
  hubPort: number;
  url: string;
  hub?: Proc;
  hubArgs: string[];
  agents: Array<{ proc?: Proc; dataDir: string; name: string; hubUrl: string; nodeId?: string }>;
  api: Awaited<ReturnType<typeof hubClient>>;
  proxies: FaultProxy[];
}

let cluster: Cluster | undefined;

async function startHub(c: Cluster): Promise<void> {
  // A restart takes the port the agents know; the first start, a free one.
  const hub = await startHubProgram({ dataDir: path.join(c.dir, 'hub'), args: c.hubArgs, port: c.hubPort === 0 ? undefined : c.hubPort });
  c.hub = hub;
  c.hubPort = hub.port;
  c.url = hub.url;
  c.api = await hubClient(c.url, path.join(c.dir, 'hub'));
}

function startAgent(a: Cluster['agents'][number], joinToken?: string): void {
  a.proc = startProgram('agent', [
    '--hub', a.hubUrl, '--data-dir', a.dataDir, '--name', a.name, '--log-level', 'debug',
    ...(joinToken ? ['--join-token', joinToken] : []),
  ]);
}

async function newCluster(agentCount: number, hubFlags: string[], proxied = 0): Promise<Cluster> {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'tether-e2e-fail-'));
  const c: Cluster = {
    dir,
    hubPort: 0,
    url: '',
    hubArgs: ['--heartbeat-interval-ms', '300', '--heartbeat-grace-ms', '1200', ...hubFlags],
    agents: [],
    api: undefined as never,
    proxies: [],
  };
  cluster = c;
  await startHub(c);
  const { body } = await c.api<{ token: string }>('POST', '/v1/join-tokens', {});
  for (let i = 0; i < agentCount; i++) {
    let hubUrl = c.url;
    if (i < proxied) {
      const proxy = await FaultProxy.start({ target: { host: '127.0.0.1', port: c.hubPort } });
      c.proxies.push(proxy);
      hubUrl = proxy.url;
    }
    const a = { dataDir: path.join(dir, `agent-${i}`), name: `e2e-fail-${process.pid}-${i}`, hubUrl };
    c.agents.push(a);
    startAgent(a, body.token);
  }
  await vi.waitFor(
    async () => {
      const nodes = (await c.api<{ nodes: Array<{ id: string; name: string; state: string }> }>('GET', '/v1/nodes')).body.nodes;
      expect(nodes.filter((n) => n.state === 'ready')).toHaveLength(agentCount);
      for (const a of c.agents) a.nodeId = nodes.find((n) => n.name === a.name)!.id;
    },
    { timeout: 30_000, interval: 200 },
  );
  return c;
}

afterEach(async () => {
  const c = cluster;
  cluster = undefined;
  if (!c) return;
  for (const a of c.agents) await stopProgram(a.proc);
  await stopProgram(c.hub);
  await Promise.all(c.proxies.map((p) => p.close()));
  for (const a of c.agents) if (a.nodeId) await cleanupNode(a.nodeId);
  await rm(c.dir, { recursive: true, force: true });
});

async function containers(nodeId: string, service?: string) {
  const label = [`${LABELS.nodeId}=${nodeId}`, ...(service ? [`${LABELS.service}=${service}`] : [])];
  return docker.listContainers(label);
}

async function startedAt(ids: string[]): Promise<string[]> {
  return Promise.all(ids.map(async (id) => (await docker.inspectContainer(id)).State.StartedAt));
}

const waitRunning = (c: Cluster, service: string, n: number, timeout = 60_000) =>
  vi.waitFor(
    async () => {
      const { status, body } = await c.api('GET', `/v1/services/${service}`);
      expect(status).toBe(200);
      expect(body.status.running).toBe(n);
    },
    { timeout, interval: 250 },
  );

describeDocker('failure handling on real Docker', () => {
  it('a hub killed with SIGKILL during a deploy loses no accepted write and restarts no container', async () => {
    const c = await newCluster(1, []);
    const node = c.agents[0]!.nodeId!;
    expect((await c.api('PUT', '/v1/services/steady', { image: IMAGE, command: HTTPD, replicas: 2 })).status).toBe(201);
    await waitRunning(c, 'steady', 2);
    const steadyIds = (await containers(node, 'steady')).map((x) => x.Id).sort();
    const steadyStarts = await startedAt(steadyIds);

    // A burst of writes, the hub killed right after the last 2xx.
    const accepted: string[] = [];
    for (let i = 0; i < 8; i++) {
      const res = await c.api('PUT', `/v1/services/burst-${i}`, { image: IMAGE, command: HTTPD, replicas: 1 });
      expect(res.status).toBe(201);
      accepted.push(`burst-${i}`);
    }
    c.hub!.child.kill('SIGKILL');
    await c.hub!.exited;
    await startHub(c);

    const names = (await c.api<{ services: Array<{ name: string }> }>('GET', '/v1/services')).body.services.map((s) => s.name);
    expect(names).toEqual(expect.arrayContaining(['steady', ...accepted]));
    for (const name of accepted) await waitRunning(c, name, 1);
    await waitRunning(c, 'steady', 2);
    expect((await containers(node, 'steady')).map((x) => x.Id).sort()).toEqual(steadyIds);
    expect(await startedAt(steadyIds)).toEqual(steadyStarts);
    // Exactly one container per accepted replica: nothing was placed twice across the crash.
    for (const name of accepted) expect(await containers(node, name)).toHaveLength(1);
  });

  it('a device that reboots while the hub is away runs its containers from the cached target', async () => {
    const c = await newCluster(1, []);
    const agent = c.agents[0]!;
    await c.api('PUT', '/v1/services/offline', { image: IMAGE, command: HTTPD, replicas: 2 });
    await waitRunning(c, 'offline', 2);

    await stopProgram(c.hub);
    await stopProgram(agent.proc);
    // The reboot: one container is gone altogether, the other is stopped.
    const [gone, stopped] = await containers(agent.nodeId!, 'offline');
    await docker.removeContainer(gone!.Id);
    await docker.stopContainer(stopped!.Id, 1);

    startAgent(agent);
    await vi.waitFor(
      async () => {
        const list = await containers(agent.nodeId!, 'offline');
        expect(list).toHaveLength(2);
        expect(list.every((x) => x.State === 'running')).toBe(true);
      },
      { timeout: 30_000, interval: 250 },
    );
    expect(agent.proc!.output()).toMatch(/running the cached target/);
    const ids = (await containers(agent.nodeId!, 'offline')).map((x) => x.Id).sort();

    // The hub returns: the agent reconnects and nothing restarts because of it.
    await startHub(c);
    await waitRunning(c, 'offline', 2);
    await new Promise((r) => setTimeout(r, 2000));
    expect((await containers(agent.nodeId!, 'offline')).map((x) => x.Id).sort()).toEqual(ids);
  });

  it('a link cut beyond lostAfter moves replicas to the connected node, and the count is right after restore', async () => {
    const c = await newCluster(2, ['--lost-after-ms', '3000'], 1);
    const [flaky, steady] = c.agents as [Cluster['agents'][number], Cluster['agents'][number]];
    await c.api('PUT', '/v1/services/moving', { image: IMAGE, command: HTTPD, replicas: 2 });
    await waitRunning(c, 'moving', 2);
    expect(await containers(flaky.nodeId!, 'moving')).toHaveLength(1);
    expect(await containers(steady.nodeId!, 'moving')).toHaveLength(1);

    c.proxies[0]!.cut();
    await vi.waitFor(
      async () => {
        const list = await containers(steady.nodeId!, 'moving');
        expect(list.filter((x) => x.State === 'running')).toHaveLength(2);
      },
      { timeout: 30_000, interval: 250 },
    );
    await waitRunning(c, 'moving', 2);
    // The cut-off device never stopped serving.
    expect((await containers(flaky.nodeId!, 'moving')).map((x) => x.State)).toEqual(['running']);

    c.proxies[0]!.restore();
    await vi.waitFor(
      async () => {
        expect(await containers(flaky.nodeId!, 'moving')).toHaveLength(0);
        expect((await containers(steady.nodeId!, 'moving')).filter((x) => x.State === 'running')).toHaveLength(2);
        const { body } = await c.api('GET', `/v1/nodes/${flaky.nodeId}`);
        expect(body.state).toBe('ready');
        expect(body.reconnects).toBeGreaterThanOrEqual(1);
      },
      { timeout: 30_000, interval: 250 },
    );
    await waitRunning(c, 'moving', 2);
  });
});

