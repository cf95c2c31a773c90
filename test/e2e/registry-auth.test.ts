/**
 * Pulls from the registry on 127.0.0.1:5001 that needs credentials (tether / s3cret, set up by
 * scripts/test-env.sh), with the spec's credentials, the agent's own, wrong ones and none.
 * Every pull is real: the image is pushed under a tag of this run's own and the local tag removed
 * before each test.
 */
import { execFile } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { afterAll, afterEach, beforeAll, beforeEach, expect, it } from 'vitest';
import { DockerRuntime } from '../../agent/runtime/docker-runtime.js';
import { cleanupNode, describeDocker, docker, sleeperSpec } from '../helpers/docker.js';

const run = promisify(execFile);

const REGISTRY = '127.0.0.1:5001';
const GOOD = { username: 'tether', password: 's3cret' };
const WRONG = { username: 'tether', password: 'not-the-password' };
const SOURCE_IMAGE = 'tether-test/busybox:1';
const IMAGE = `${REGISTRY}/busybox:auth-${randomUUID().slice(0, 8)}`;
const NODE_ID = `rauth-${randomUUID().slice(0, 8)}`;
/** What the engine says when the registry refuses: "no basic auth credentials", "unauthorized: authentication required". */
const AUTH_REFUSED = /unauthorized|authentication required|no basic auth credentials/i;

async function removeLocalTag(): Promise<void> {
  try {
    // Only the tag: tether-test/busybox:1 keeps the image and its layers.
    await docker.removeImage(IMAGE);
  } catch (err) {
    if ((err as { statusCode?: number }).statusCode !== 404) throw err;
  }
}

async function localImageExists(): Promise<boolean> {
  try {
    await docker.inspectImage(IMAGE);
    return true;
  } catch (err) {
    if ((err as { statusCode?: number }).statusCode === 404) return false;
    throw err;
  }
}

describeDocker('registry credentials against a real registry that needs them', () => {
  beforeAll(async () => {
    const anonymous = await fetch(`http://${REGISTRY}/v2/`).catch((err: unknown) => {
      throw new Error(`no registry on ${REGISTRY} (run scripts/test-env.sh): ${(err as Error).message}`);
    });
    expect(anonymous.status, `${REGISTRY} must refuse anonymous requests`).toBe(401);

    // Push with a throwaway client config: the login never lands in ~/.docker/config.json.
    const config = await mkdtemp(path.join(os.tmpdir(), 'tether-docker-config-'));
    const env = { ...process.env, DOCKER_CONFIG: config };
    try {
      await docker.tagImage(SOURCE_IMAGE, IMAGE.slice(0, IMAGE.lastIndexOf(':')), IMAGE.slice(IMAGE.lastIndexOf(':') + 1));
      const login = execFile('docker', ['login', '-u', GOOD.username, '--password-stdin', REGISTRY], { env });
      login.stdin?.end(GOOD.password);
      await new Promise<void>((resolve, reject) => {
        let stderr = '';
        login.stderr?.on('data', (d: Buffer) => (stderr += d.toString()));
        login.on('error', reject);
        login.on('close', (code) => (code === 0 ? resolve() : reject(new Error(`docker login ${REGISTRY} failed: ${stderr}`))));
      });
      await run('docker', ['push', '-q', IMAGE], { env });
    } finally {
      await run('docker', ['logout', REGISTRY], { env }).catch(() => undefined);
      await rm(config, { recursive: true, force: true });
    }
  });

  beforeEach(async () => {
    await removeLocalTag();
    expect(await localImageExists()).toBe(false);
  });

  afterEach(async () => {
    await cleanupNode(NODE_ID);
  });

  afterAll(async () => {
    await cleanupNode(NODE_ID);
    await removeLocalTag();
  });

  it('refuses a pull without credentials, saying why', async () => {
    const runtime = new DockerRuntime();
    await expect(runtime.pullImage(IMAGE, null)).rejects.toThrow(AUTH_REFUSED);
    expect(await localImageExists()).toBe(false);
  });

  it('pulls with the spec credentials', async () => {
    const runtime = new DockerRuntime();
    await runtime.pullImage(IMAGE, GOOD);
    expect(await runtime.hasImage(IMAGE)).toBe(true);
  });

  it('pulls with the spec credentials naming the server address', async () => {
    const runtime = new DockerRuntime();
    await runtime.pullImage(IMAGE, { ...GOOD, serveraddress: REGISTRY });
    expect(await runtime.hasImage(IMAGE)).toBe(true);
  });

  it('refuses a pull with wrong credentials', async () => {
    const runtime = new DockerRuntime();
    await expect(runtime.pullImage(IMAGE, WRONG)).rejects.toThrow(AUTH_REFUSED);
    expect(await localImageExists()).toBe(false);
  });

  it("pulls with the agent's credentials for the image's registry when the spec has none, and runs the image", async () => {
    const runtime = new DockerRuntime({ registryAuth: { [REGISTRY]: GOOD } });
    await runtime.pullImage(IMAGE, null);
    expect(await runtime.hasImage(IMAGE)).toBe(true);

    const id = await runtime.createContainer({
      nodeId: NODE_ID,
      replicaId: `${NODE_ID}-0`,
      service: 'private',
      specHash: 'abcdef0123456789',
      name: `tether-${NODE_ID}-0`,
      spec: sleeperSpec(IMAGE),
      publishAddress: null,
    });
    await runtime.startContainer(id);
    const [container] = await runtime.listContainers(NODE_ID);
    expect(container).toMatchObject({ id, state: 'running' });
  });

  it("does not use the agent's credentials for another registry", async () => {
    const runtime = new DockerRuntime({ registryAuth: { '127.0.0.1:5000': GOOD, 'registry.example.com': GOOD } });
    await expect(runtime.pullImage(IMAGE, null)).rejects.toThrow(AUTH_REFUSED);
  });

  it("lets the spec's credentials win over the agent's", async () => {
    const agentWrong = new DockerRuntime({ registryAuth: { [REGISTRY]: WRONG } });
    await agentWrong.pullImage(IMAGE, GOOD);
    expect(await localImageExists()).toBe(true);
    await removeLocalTag();

    const agentRight = new DockerRuntime({ registryAuth: { [REGISTRY]: GOOD } });
    await expect(agentRight.pullImage(IMAGE, WRONG)).rejects.toThrow(AUTH_REFUSED);
    expect(await localImageExists()).toBe(false);
  });
});
