/**
 * TLS with a pinned CA on real parts: the hub and agent programs, a real Docker engine. The agent
 * joins an https:// hub with its CA's fingerprint; another hub (another CA) on the same address
 * is refused while the containers keep running; the first hub back, the agent reconnects.
 */
import { mkdtemp, readFile, rm, stat } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, expect, it, vi } from 'vitest';
import { LABELS } from '../../agent/runtime/container-runtime.js';
import { cleanupNode, describeDocker, docker } from '../helpers/docker.js';
import { startProgram, stopProgram, type Proc } from '../helpers/processes.js';
import { httpsApi } from '../helpers/https-api.js';
import { freePort } from '../helpers/test-ports.js';

const IMAGE = 'tether-test/busybox:1';

describeDocker('hub over TLS, agent pinning its CA, end to end', () => {
  let dir = '';
  let port = 0;
  let url = '';
  let hub: Proc | undefined;
  let agent: Proc | undefined;
  let nodeId = '';
  const service = `tls-${process.pid}`;

  /** Starts a hub on `port` over TLS (the default) and waits for its banner; returns its CA fingerprint. */
  const startTlsHub = async (dataDir: string): Promise<string> => {
    hub = startProgram('hub', ['--port', String(port), '--data-dir', dataDir, '--heartbeat-interval-ms', '500', '--heartbeat-grace-ms', '3000']);
    const proc = hub;
    await vi.waitFor(() => expect(proc.output()).toContain(`is listening on ${url}\n`), { timeout: 30_000, interval: 100 });
    return /--ca-fingerprint (sha256:[0-9a-f]{64})/.exec(proc.output())![1]!;
  };
  const apiOf = async (dataDir: string) => {
    const ca = await readFile(path.join(dataDir, 'tls', 'ca.crt'), 'utf8');
    const token = (await readFile(path.join(dataDir, 'admin-token'), 'utf8')).trim();
    return (method: string, route: string, body?: unknown) => httpsApi(url, ca, token, method, route, body);
  };

  beforeAll(async () => {
    dir = await mkdtemp(path.join(os.tmpdir(), 'tether-e2e-tls-'));
    port = await freePort();
    url = `https://127.0.0.1:${port}`;
  });

  afterAll(async () => {
    await stopProgram(agent);
    await stopProgram(hub);
    if (nodeId) await cleanupNode(nodeId);
    await rm(dir, { recursive: true, force: true });
  });

  it('refuses to join without a fingerprint, and with a wrong one, each with a clear message and a non-zero exit', async () => {
    const fingerprint = await startTlsHub(path.join(dir, 'hub-a'));
    const api = await apiOf(path.join(dir, 'hub-a'));
    const issued = await api('POST', '/v1/join-tokens', {});
    expect(issued.status).toBe(201);
    expect(issued.body.caFingerprint).toBe(fingerprint);

    const unpinned = startProgram('agent', ['--hub', url, '--join-token', issued.body.token, '--data-dir', path.join(dir, 'agent-unpinned')]);
    expect(await unpinned.exited).not.toBe(0);
    await unpinned.closed;
    expect(unpinned.output()).toContain('pass --ca-fingerprint');

    const wrong = `sha256:${'0'.repeat(64)}`;
    const refused = startProgram('agent', ['--hub', url, '--join-token', issued.body.token, '--ca-fingerprint', wrong, '--data-dir', path.join(dir, 'agent-wrong')]);
    expect(await refused.exited).not.toBe(0);
    await refused.closed;
    expect(refused.output()).toContain(`not from the pinned CA ${wrong}`);
    expect(refused.output()).toContain(`presents a certificate from CA ${fingerprint}`);
    await expect(stat(path.join(dir, 'agent-wrong', 'hub-ca.pem'))).rejects.toThrow(/ENOENT/);
    // Nothing joined.
    expect((await api('GET', '/v1/nodes')).body.nodes).toHaveLength(0);
  }, 90_000);

  it('joins with the fingerprint, refuses a hub with another CA on the same address while its container runs, and reconnects to its own', async () => {
    const hubA = path.join(dir, 'hub-a');
    const fingerprintA = /--ca-fingerprint (sha256:[0-9a-f]{64})/.exec(hub!.output())![1]!;
    const api = await apiOf(hubA);
    const { body: issued } = await api('POST', '/v1/join-tokens', {});
    const agentDir = path.join(dir, 'agent');
    agent = startProgram('agent', [
      '--hub', url, '--join-token', issued.token, '--ca-fingerprint', fingerprintA, '--data-dir', agentDir,
      '--name', `tls-${process.pid}`, '--log-level', 'debug',
    ]);
    await vi.waitFor(
      async () => {
        const nodes = (await api('GET', '/v1/nodes')).body.nodes as Array<{ id: string; state: string }>;
        expect(nodes.filter((n) => n.state === 'ready')).toHaveLength(1);
        nodeId = nodes[0]!.id;
      },
      { timeout: 30_000, interval: 200 },
    );
    expect((await stat(path.join(agentDir, 'hub-ca.pem'))).mode & 0o777).toBe(0o600);

    expect((await api('PUT', `/v1/services/${service}`, { image: IMAGE, command: ['/bin/sleep', '600'], replicas: 1 })).status).toBe(201);
    let containerId = '';
    await vi.waitFor(
      async () => {
        const running = (await docker.listContainers([`${LABELS.nodeId}=${nodeId}`])).filter((c) => c.State === 'running');
        expect(running).toHaveLength(1);
        containerId = running[0]!.Id;
      },
      { timeout: 60_000, interval: 250 },
    );

    // Another hub, its own CA, on the same address and port.
    await stopProgram(hub);
    const fingerprintB = await startTlsHub(path.join(dir, 'hub-b'));
    expect(fingerprintB).not.toBe(fingerprintA);
    await vi.waitFor(
      () => {
        expect(agent!.output()).toContain(`presents a certificate from CA ${fingerprintB}, not from the pinned CA ${fingerprintA}`);
      },
      { timeout: 60_000, interval: 250 },
    );
    expect(agent!.child.exitCode).toBeNull();
    const apiB = await apiOf(path.join(dir, 'hub-b'));
    expect((await apiB('GET', '/v1/nodes')).body.nodes).toHaveLength(0);
    const meanwhile = await docker.listContainers([`${LABELS.nodeId}=${nodeId}`]);
    expect(meanwhile.map((c) => [c.Id, c.State])).toEqual([[containerId, 'running']]);

    // Its own hub back: the agent connects again, the container untouched.
    await stopProgram(hub);
    await startTlsHub(hubA);
    await vi.waitFor(
      async () => {
        const nodes = (await api('GET', '/v1/nodes')).body.nodes as Array<{ id: string; state: string }>;
        expect(nodes.find((n) => n.id === nodeId)?.state).toBe('ready');
      },
      { timeout: 90_000, interval: 250 },
    );
    const after = await docker.listContainers([`${LABELS.nodeId}=${nodeId}`]);
    expect(after.map((c) => [c.Id, c.State])).toEqual([[containerId, 'running']]);
  }, 300_000);
});
