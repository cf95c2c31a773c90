/**
 * Configs and secrets on the real engine, with the hub and an agent as real processes: the
 * container reads its secret at /run/secrets/<name>, its config file and an env value from the
 * secret; the secret is in no file of the hub's data dir nor of the agent's (but the agent's
 * tmpfs, where it is found, showing the search works) and in neither process's output; a new
 * value restarts the container with it; and an offline reboot (hub down, agent killed, the tmpfs
 * gone as at power-off, the container removed by hand) brings the container back with its secret.
 */
import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtemp, readdir, readFile, rm, statfs } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, expect, it, vi } from 'vitest';
import { LABELS } from '../../agent/runtime/container-runtime.js';
import { TMPFS_MAGIC } from '../../agent/values/tmpfs-dir.js';
import { cleanupNode, describeDocker } from '../helpers/docker.js';
import { hubClient, startHub, startProgram, stopProgram, type HubProc, type Proc } from '../helpers/processes.js';

const IMAGE = 'tether-test/busybox:1';
const ADDRESS = '127.0.0.61';

/** Every file under `dir` (not following links), but those under the dirs in `skip`. */
async function filesUnder(dir: string, skip: readonly string[]): Promise<string[]> {
  const out: string[] = [];
  for (const entry of await readdir(dir, { withFileTypes: true })) {
    const full = path.join(dir, entry.name);
    if (skip.includes(full)) continue;
    if (entry.isDirectory()) out.push(...(await filesUnder(full, skip)));
    else if (entry.isFile()) out.push(full);
  }
  return out;
}

/** The files under `dir` (but `skip`) that hold `text` as it is or in base64. */
async function filesHolding(dir: string, text: string, skip: readonly string[] = []): Promise<string[]> {
  const needles = [Buffer.from(text), Buffer.from(Buffer.from(text).toString('base64'))];
  const found: string[] = [];
  for (const file of await filesUnder(dir, skip)) {
    const bytes = await readFile(file);
    if (needles.some((n) => bytes.includes(n))) found.push(file);
  }
  return found;
}

function exec(containerId: string, command: string[]): string {
  return execFileSync('docker', ['exec', containerId, ...command], { encoding: 'utf8', timeout: 10_000, stdio: ['ignore', 'pipe', 'ignore'] }).trim();
}

function isMounted(dir: string): boolean {
  return execFileSync('cat', ['/proc/self/mounts'], { encoding: 'utf8' })
    .split('\n')
    .some((line) => line.split(' ')[1] === dir);
}

describeDocker('configs and secrets on the real engine', () => {
  let dir = '';
  let hub: HubProc | undefined;
  let agent: Proc | undefined;
  const agentOutputs: string[] = [];
  let nodeId = '';
  let api: Awaited<ReturnType<typeof hubClient>>;
  const secretV1 = `e2e-secret-one-${randomBytes(12).toString('hex')}`;
  const secretV2 = `e2e-secret-two-${randomBytes(12).toString('hex')}`;
  const config = `e2e config ${randomBytes(6).toString('hex')}`;
  let agentDir = '';
  let secretsDir = '';

  const startAgent = (extra: string[] = []) => {
    agent = startProgram('agent', ['--data-dir', agentDir, '--name', `e2e-secrets-${process.pid}`, '--publish-address', ADDRESS, '--log-level', 'debug', ...extra]);
  };

  /** The service's one running container, once its secret file holds `secret`. */
  async function runningWith(secret: string): Promise<string> {
    let id = '';
    await vi.waitFor(
      () => {
        const running = execFileSync('docker', ['ps', '-q', '--no-trunc', '--filter', `label=${LABELS.nodeId}=${nodeId}`, '--filter', `label=${LABELS.service}=api`], { encoding: 'utf8' })
          .trim()
          .split('\n')
          .filter(Boolean);
        expect(running).toHaveLength(1);
        expect(exec(running[0]!, ['cat', '/run/secrets/db'])).toBe(secret);
        id = running[0]!;
      },
      { timeout: 60_000, interval: 250 },
    );
    return id;
  }

  beforeAll(async () => {
    dir = await mkdtemp(path.join(os.tmpdir(), 'tether-e2e-secrets-'));
    agentDir = path.join(dir, 'agent');
    secretsDir = path.join(agentDir, 'secrets');
    hub = await startHub({ dataDir: path.join(dir, 'hub'), args: ['--heartbeat-interval-ms', '500', '--heartbeat-grace-ms', '3000', '--log-level', 'debug'] });
    api = await hubClient(hub.url, path.join(dir, 'hub'));
    const { body } = await api<{ token: string }>('POST', '/v1/join-tokens', {});
    startAgent(['--hub', hub.url, '--join-token', body.token]);
    await vi.waitFor(
      async () => {
        const nodes = (await api<{ nodes: Array<{ id: string; state: string }> }>('GET', '/v1/nodes')).body.nodes;
        expect(nodes.filter((n) => n.state === 'ready')).toHaveLength(1);
        nodeId = nodes[0]!.id;
      },
      { timeout: 30_000, interval: 200 },
    );
  }, 60_000);

  afterAll(async () => {
    await stopProgram(agent);
    await stopProgram(hub);
    if (nodeId) await cleanupNode(nodeId);
    // The containers that bind-mounted its files are gone: the tmpfs can go, then the dir.
    if (secretsDir && isMounted(secretsDir)) execFileSync('umount', [secretsDir]);
    await rm(dir, { recursive: true, force: true });
  });

  it('delivers, keeps off the disks and out of the logs, rotates, and survives an offline reboot', async () => {
    expect((await api('PUT', '/v1/secrets/db', { value: secretV1 })).status).toBe(201);
    expect((await api('PUT', '/v1/configs/site', { value: config })).status).toBe(201);
    const spec = {
      image: IMAGE,
      command: ['sleep', '3600'],
      replicas: 1,
      secrets: [{ name: 'db' }],
      configs: [{ name: 'site', target: '/etc/site.conf' }],
      env: { DB_PASSWORD: { fromSecret: 'db' } },
    };
    const put = await api('PUT', '/v1/services/api', spec);
    expect(put.status, JSON.stringify(put.body)).toBe(201);

    // The container reads its secret, its config and its env value.
    const first = await runningWith(secretV1);
    expect(exec(first, ['cat', '/etc/site.conf'])).toBe(config);
    expect(exec(first, ['sh', '-c', 'echo "$DB_PASSWORD"'])).toBe(secretV1);
    // Read-only, as mounted.
    expect(() => execFileSync('docker', ['exec', first, 'sh', '-c', 'echo x > /run/secrets/db'], { stdio: 'ignore' })).toThrow();

    // The agent's secrets dir is a tmpfs, and holds the secret (so the search below can find it).
    expect((await statfs(secretsDir)).type).toBe(TMPFS_MAGIC);
    expect((await filesHolding(secretsDir, secretV1)).length).toBeGreaterThan(0);
    // Nowhere else: not in the hub's data dir, not on the agent's disk (its cache seals it).
    expect(await filesHolding(path.join(dir, 'hub'), secretV1)).toEqual([]);
    expect(await filesHolding(agentDir, secretV1, [secretsDir])).toEqual([]);
    expect(await filesHolding(agentDir, config, [secretsDir])).not.toEqual([]);

    // A new value restarts the container with it.
    expect((await api('PUT', '/v1/secrets/db', { value: secretV2 })).status).toBe(200);
    const second = await runningWith(secretV2);
    expect(second).not.toBe(first);
    expect(exec(second, ['sh', '-c', 'echo "$DB_PASSWORD"'])).toBe(secretV2);
    // The old version's file goes once its container is gone.
    await vi.waitFor(async () => expect(await filesHolding(secretsDir, secretV1)).toEqual([]), { timeout: 30_000, interval: 250 });

    // An offline reboot: the hub down, the agent killed, the tmpfs gone as memory is at power-off,
    // the container removed by hand. The agent comes back on its cached target alone.
    await stopProgram(hub);
    await stopProgram(agent, 'SIGKILL');
    agentOutputs.push(agent!.output());
    execFileSync('docker', ['rm', '-f', second], { stdio: 'ignore' });
    execFileSync('umount', [secretsDir]);
    expect(isMounted(secretsDir)).toBe(false);
    startAgent();
    const third = await runningWith(secretV2);
    expect(third).not.toBe(second);
    expect(exec(third, ['sh', '-c', 'echo "$DB_PASSWORD"'])).toBe(secretV2);
    expect(exec(third, ['cat', '/etc/site.conf'])).toBe(config);
    expect((await statfs(secretsDir)).type).toBe(TMPFS_MAGIC);
    for (const secret of [secretV1, secretV2]) {
      expect(await filesHolding(path.join(dir, 'hub'), secret)).toEqual([]);
      expect(await filesHolding(agentDir, secret, [secretsDir])).toEqual([]);
    }

    // In neither process's output, at debug level.
    agentOutputs.push(agent!.output());
    for (const secret of [secretV1, secretV2]) {
      for (const output of [hub!.output(), ...agentOutputs]) {
        expect(output).not.toContain(secret);
        expect(output).not.toContain(Buffer.from(secret).toString('base64'));
      }
    }
  }, 180_000);
});
