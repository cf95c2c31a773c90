/**
 * The whole path on real parts: the hub and agents as real processes, a real Docker engine and a
 * real registry. Needs scripts/test-env.sh (run by .ci/run).
 */
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { execFileSync } from 'node:child_process';
import { afterAll, beforeAll, expect, it, vi } from 'vitest';
import { LABELS } from '../../agent/runtime/container-runtime.js';
import { cleanupNode, describeDocker, docker } from '../helpers/docker.js';
import { hubClient, startHub, startProgram, stopProgram, type Proc } from '../helpers/processes.js';
import { freePort } from '../helpers/test-ports.js';

const REGISTRY = '127.0.0.1:5000';

describeDocker('hub + agents + Docker, end to end', () => {
  const tag = `e2e-${process.pid}-${Date.now()}`;
  const image = `${REGISTRY}/busybox:${tag}`;
  let hostPort = 0;
  let url = '';
  const service = `web-${process.pid}`;
  let dir = '';
  let hub: Proc | undefined;
  const agents: Array<{ proc?: Proc; dataDir: string; address: string; nodeId?: string }> = [];
  let api: Awaited<ReturnType<typeof hubClient>>;

  const containersOf = async (nodeId: string) => docker.listContainers([`${LABELS.nodeId}=${nodeId}`]);

  const startAgent = (a: (typeof agents)[number], extra: string[] = []) => {
    a.proc = startProgram('agent', [
      '--hub', url, '--data-dir', a.dataDir, '--name', `e2e-${a.address}`, '--publish-address', a.address,
      '--label', 'e2e=true', '--log-level', 'debug', ...extra,
    ]);
  };

  beforeAll(async () => {
    dir = await mkdtemp(path.join(os.tmpdir(), 'tether-e2e-'));
    // A tag that exists only in the registry, so the agents must really pull it.
    execFileSync('docker', ['tag', 'tether-test/busybox:1', image]);
    execFileSync('docker', ['push', image], { stdio: 'ignore' });
    execFileSync('docker', ['rmi', image], { stdio: 'ignore' });

    hostPort = await freePort();
    const started = await startHub({ dataDir: path.join(dir, 'hub'), args: ['--heartbeat-interval-ms', '500', '--heartbeat-grace-ms', '3000'] });
    hub = started;
    url = started.url;
    api = await hubClient(url, path.join(dir, 'hub'));

    const { body } = await api<{ token: string }>('POST', '/v1/join-tokens', {});
    for (const address of ['127.0.0.2', '127.0.0.3']) {
      const a = { dataDir: path.join(dir, `agent-${address}`), address };
      agents.push(a);
      startAgent(a, ['--join-token', body.token]);
    }
    await vi.waitFor(
      async () => {
        const nodes = (await api<{ nodes: Array<{ id: string; state: string; name: string }> }>('GET', '/v1/nodes')).body.nodes;
        expect(nodes.filter((n) => n.state === 'ready')).toHaveLength(2);
        for (const a of agents) a.nodeId = nodes.find((n) => n.name === `e2e-${a.address}`)!.id;
      },
      { timeout: 30_000, interval: 200 },
    );
  });

  afterAll(async () => {
    for (const a of agents) await stopProgram(a.proc);
    await stopProgram(hub);
    for (const a of agents) if (a.nodeId) await cleanupNode(a.nodeId);
    try {
      execFileSync('docker', ['rmi', '-f', image], { stdio: 'ignore' });
    } catch {
      // never pulled: nothing to remove
    }
    await rm(dir, { recursive: true, force: true });
  });

  const answer = async (address: string, port: number) => {
    const res = await fetch(`http://${address}:${port}/index.html`, { signal: AbortSignal.timeout(2000) });
    return (await res.text()).trim();
  };

  it('deploys 2 replicas from the registry, one per node, answering on their ports', async () => {
    const put = await api('PUT', `/v1/services/${service}`, {
      image,
      command: ['/bin/httpd', '-f', '-p', '8080', '-h', '/www'],
      replicas: 2,
      ports: [{ containerPort: 8080, hostPort }],
      resources: { cpus: 0.25, memoryMB: 64 },
      labels: { team: 'edge' },
    });
    expect(put.status).toBe(201);
    await vi.waitFor(
      async () => {
        const { body } = await api('GET', `/v1/services/${service}`);
        expect(body.status.running).toBe(2);
      },
      { timeout: 60_000, interval: 250 },
    );
    for (const a of agents) {
      const containers = await containersOf(a.nodeId!);
      expect(containers).toHaveLength(1);
      expect(containers[0]!.State).toBe('running');
      expect(containers[0]!.Labels).toMatchObject({ [LABELS.service]: service, team: 'edge' });
      const inspect = await docker.inspectContainer(containers[0]!.Id);
      expect(inspect.HostConfig.NanoCpus).toBe(250_000_000);
      expect(inspect.HostConfig.Memory).toBe(64 * 1024 * 1024);
      await vi.waitFor(async () => expect(await answer(a.address, hostPort)).toBe('v1'), { timeout: 10_000, interval: 200 });
    }
  });

  it('restarting an agent restarts no container', async () => {
    const a = agents[0]!;
    const [before] = await containersOf(a.nodeId!);
    const startedAt = (await docker.inspectContainer(before!.Id)).State.StartedAt;
    await stopProgram(a.proc);
    startAgent(a);
    await vi.waitFor(
      async () => {
        const { body } = await api('GET', `/v1/nodes/${a.nodeId}`);
        expect(body.state).toBe('ready');
        expect(body.reconnects).toBeGreaterThanOrEqual(1);
      },
      { timeout: 30_000, interval: 200 },
    );
    // Give the restarted agent a few reconcile passes to do anything it wrongly wanted to do.
    await new Promise((r) => setTimeout(r, 3000));
    const after = await containersOf(a.nodeId!);
    expect(after.map((c) => c.Id)).toEqual([before!.Id]);
    expect((await docker.inspectContainer(before!.Id)).State.StartedAt).toBe(startedAt);
    expect((await api('GET', `/v1/services/${service}`)).body.status.running).toBe(2);
  });

  it('a changed command replaces the containers', async () => {
    const oldIds = (await Promise.all(agents.map((a) => containersOf(a.nodeId!)))).flat().map((c) => c.Id);
    const put = await api('PUT', `/v1/services/${service}`, {
      image,
      command: ['/bin/httpd', '-f', '-p', '8081', '-h', '/www'],
      replicas: 2,
      ports: [{ containerPort: 8081, hostPort }],
      resources: { cpus: 0.25, memoryMB: 64 },
      labels: { team: 'edge' },
    });
    expect(put.status).toBe(200);
    await vi.waitFor(
      async () => {
        for (const a of agents) {
          const containers = await containersOf(a.nodeId!);
          expect(containers).toHaveLength(1);
          expect(oldIds).not.toContain(containers[0]!.Id);
          expect(await answer(a.address, hostPort)).toBe('v1');
        }
        expect((await api('GET', `/v1/services/${service}`)).body.status.running).toBe(2);
      },
      { timeout: 60_000, interval: 250 },
    );
  });

  it('an image that cannot be pulled shows as the replica error', async () => {
    await api('PUT', `/v1/services/${service}-missing`, { image: `${REGISTRY}/busybox:does-not-exist`, replicas: 1 });
    await vi.waitFor(
      async () => {
        const { body } = await api('GET', `/v1/services/${service}-missing`);
        expect(body.status.replicas[0].state).toBe('failed');
        expect(body.status.replicas[0].error).toMatch(/does-not-exist|manifest|not found/i);
      },
      { timeout: 60_000, interval: 250 },
    );
    expect((await api('DELETE', `/v1/services/${service}-missing`)).status).toBe(200);
  });

  it('deleting the service removes its containers', async () => {
    expect((await api('DELETE', `/v1/services/${service}`)).status).toBe(200);
    await vi.waitFor(
      async () => {
        for (const a of agents) expect(await containersOf(a.nodeId!)).toHaveLength(0);
      },
      { timeout: 30_000, interval: 250 },
    );
  });

  it('an agent with an unknown join token exits with a clear message', async () => {
    const proc = startProgram('agent', ['--hub', url, '--join-token', 'tjt_not-a-real-token', '--data-dir', path.join(dir, 'rejected')]);
    expect(await proc.exited).toBe(2);
    expect(proc.output()).toMatch(/refused to join.*unknown or expired/);
  });
});
