/**
 * The agent as installed, one bundled file (dist/agent/tether-agent.js, npm run build), on the
 * real engine: what the bundle left out must not be what it needs. It pulls an image with its
 * own credentials from the registry that needs them (127.0.0.1:5001, scripts/test-env.sh), runs
 * it, and starts it again when it is stopped behind its back (the engine's event stream).
 */
import { execFile } from 'node:child_process';
import { spawn } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { afterAll, beforeAll, expect, it, vi } from 'vitest';
import { LABELS } from '../../agent/runtime/container-runtime.js';
import { cleanupNode, describeDocker, docker } from '../helpers/docker.js';
import { hubClient, startHub, stopProgram, watchChild, type Proc } from '../helpers/processes.js';

const run = promisify(execFile);
const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
const REGISTRY = '127.0.0.1:5001';
const CREDENTIALS = { username: 'tether', password: 's3cret' };
const SOURCE_IMAGE = 'tether-test/busybox:1';
const IMAGE = `${REGISTRY}/busybox:bundle-${randomUUID().slice(0, 8)}`;

describeDocker('the bundled agent on the real engine', () => {
  let dir = '';
  let hub: Proc | undefined;
  let agent: Proc | undefined;
  let nodeId: string | undefined;
  let api: Awaited<ReturnType<typeof hubClient>>;
  const name = `bundle-${process.pid}`;
  const service = `bundle-${process.pid}`;

  beforeAll(async () => {
    dir = await mkdtemp(path.join(os.tmpdir(), 'tether-bundle-docker-'));
    // A tag only the registry has, so the agent must pull it, with credentials.
    const config = path.join(dir, 'docker-config');
    const env = { ...process.env, DOCKER_CONFIG: config };
    await docker.tagImage(SOURCE_IMAGE, IMAGE.slice(0, IMAGE.lastIndexOf(':')), IMAGE.slice(IMAGE.lastIndexOf(':') + 1));
    try {
      const login = execFile('docker', ['login', '-u', CREDENTIALS.username, '--password-stdin', REGISTRY], { env });
      login.stdin?.end(CREDENTIALS.password);
      await new Promise<void>((resolve, reject) => {
        login.on('error', reject);
        login.on('close', (code) => (code === 0 ? resolve() : reject(new Error(`docker login ${REGISTRY} failed`))));
      });
      await run('docker', ['push', '-q', IMAGE], { env });
    } finally {
      await run('docker', ['logout', REGISTRY], { env }).catch(() => undefined);
    }
    await docker.removeImage(IMAGE);

    const started = await startHub({ dataDir: path.join(dir, 'hub') });
    hub = started;
    api = await hubClient(started.url, path.join(dir, 'hub'));
    const authFile = path.join(dir, 'registry-auth.json');
    await writeFile(authFile, JSON.stringify({ [REGISTRY]: CREDENTIALS }), { mode: 0o600 });
    const { body } = await api<{ token: string }>('POST', '/v1/join-tokens', {});
    const child = spawn(
      process.execPath,
      [
        path.join(root, 'dist', 'agent', 'tether-agent.js'),
        '--hub', started.url, '--join-token', body.token, '--data-dir', path.join(dir, 'agent'), '--name', name,
        '--registry-auth-file', authFile, '--publish-address', '127.0.0.1', '--log-level', 'debug',
      ],
      { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, NODE_ENV: 'test' } },
    );
    agent = watchChild(child, 'bundled agent');
    await vi.waitFor(
      async () => {
        const nodes = (await api<{ nodes: Array<{ id: string; state: string; name: string }> }>('GET', '/v1/nodes')).body.nodes;
        nodeId = nodes.find((n) => n.name === name && n.state === 'ready')?.id;
        expect(nodeId, agent?.output()).toBeDefined();
      },
      { timeout: 30_000, interval: 200 },
    );
  });

  afterAll(async () => {
    await api?.('DELETE', `/v1/services/${service}`).catch(() => undefined);
    await stopProgram(agent);
    await stopProgram(hub);
    if (nodeId) await cleanupNode(nodeId);
    await docker.removeImage(IMAGE, { force: true }).catch(() => undefined);
    await rm(dir, { recursive: true, force: true });
  });

  it('pulls with its own credentials, runs the container, and starts it again when it is stopped behind its back', async () => {
    const put = await api('PUT', `/v1/services/${service}`, { image: IMAGE, command: ['/bin/sleep', '300'], replicas: 1 });
    expect(put.status, JSON.stringify(put.body)).toBeLessThan(300);
    const running = async (): Promise<string> => {
      const [container] = await docker.listContainers([`${LABELS.nodeId}=${nodeId}`]);
      expect(container?.State, agent?.output()).toBe('running');
      return container!.Id;
    };
    const id = await vi.waitFor(running, { timeout: 60_000, interval: 250 });
    const before = await docker.inspectContainer(id);
    expect(before.Config.Labels[LABELS.image]).toBe(IMAGE);

    // Stopped through the API, the engine's unless-stopped leaves it stopped: only the agent starts it.
    await docker.stopContainer(id, 0);
    await vi.waitFor(
      async () => {
        expect(await running()).toBe(id);
        expect((await docker.inspectContainer(id)).State.StartedAt).not.toBe(before.State.StartedAt);
      },
      { timeout: 30_000, interval: 250 },
    );
  });
});
