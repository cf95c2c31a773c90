/**
 * Installing an agent the way a device does: the hub's one-line install command, its install.sh
 * piped into sh (staged under a temp root, no systemd), the installed agent started the way the
 * installer says, joining and running a container from the local registry; a second run
 * upgrades in place without a new node id; the unit passes systemd-analyze; uninstalling keeps
 * the node's data and containers, purging removes them. Needs scripts/test-env.sh.
 */
import { execFile, execFileSync, spawn } from 'node:child_process';
import { mkdtemp, readFile, rm, stat } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, expect, it, vi } from 'vitest';
import { LABELS } from '../../agent/runtime/container-runtime.js';
import { caFingerprint } from '../../shared/ca-fingerprint.js';
import { cleanupNode, describeDocker, docker, DOCKER_SOCKET } from '../helpers/docker.js';
import { hubClient, startHub, startProgram, stopProgram, watchChild, type HubProc, type Proc } from '../helpers/processes.js';
import { httpsApi } from '../helpers/https-api.js';
import { freePort } from '../helpers/test-ports.js';

const run = promisify(execFile);
const REGISTRY = '127.0.0.1:5000';
const PREFIX = '/opt/tether-agent-e2e';

interface Outcome {
  code: number;
  stdout: string;
  stderr: string;
}

/** A shell line, run with sh -c; never throws: the exit code is part of what is checked. */
async function shell(line: string): Promise<Outcome> {
  try {
    const { stdout, stderr } = await run('sh', ['-c', line], { maxBuffer: 1024 * 1024 });
    return { code: 0, stdout, stderr };
  } catch (error) {
    const e = error as { code?: number; stdout?: string; stderr?: string };
    return { code: e.code ?? -1, stdout: e.stdout ?? '', stderr: e.stderr ?? '' };
  }
}

const quote = (word: string) => `'${word.replaceAll("'", `'\\''`)}'`;

describeDocker('installing an agent with one line from the hub', () => {
  const tag = `install-${process.pid}-${Date.now()}`;
  const image = `${REGISTRY}/busybox:${tag}`;
  const nodeName = `installed-${process.pid}`;
  const service = `installed-${process.pid}`;
  let dir = '';
  let root = '';
  let hub: HubProc | undefined;
  let agent: Proc | undefined;
  let nodeId = '';
  let launcher = '';
  let api: Awaited<ReturnType<typeof hubClient>>;

  /** The flags every install here takes on top of the hub's line: staged, no systemd, the test's engine. */
  const staging = () => `--root ${quote(root)} --prefix ${PREFIX} --docker-socket ${quote(DOCKER_SOCKET)}`;

  const startInstalledAgent = () => {
    // As the installer says: its launcher, which reads the settings file.
    agent = watchChild(spawn(launcher, [], { stdio: ['ignore', 'pipe', 'pipe'] }), 'installed-agent');
  };
  const nodes = async () => (await api<{ nodes: Array<{ id: string; name: string; state: string }> }>('GET', '/v1/nodes')).body.nodes;

  beforeAll(async () => {
    dir = await mkdtemp(path.join(os.tmpdir(), 'tether-e2e-install-'));
    root = path.join(dir, 'root');
    // A tag only the registry has, so the installed agent really pulls it.
    execFileSync('docker', ['tag', 'tether-test/busybox:1', image]);
    execFileSync('docker', ['push', image], { stdio: 'ignore' });
    execFileSync('docker', ['rmi', image], { stdio: 'ignore' });
    hub = await startHub({ dataDir: path.join(dir, 'hub'), args: ['--heartbeat-interval-ms', '500', '--heartbeat-grace-ms', '3000'] });
    api = await hubClient(hub.url, hub.dataDir);
  });

  afterAll(async () => {
    await stopProgram(agent);
    await stopProgram(hub);
    if (nodeId) await cleanupNode(nodeId);
    try {
      execFileSync('docker', ['rmi', '-f', image], { stdio: 'ignore' });
    } catch {
      // never pulled: nothing to remove
    }
    await rm(dir, { recursive: true, force: true });
  });

  it("installs with the hub's one line piped into sh, and the agent joins", async () => {
    const issued = await api<{ token: string; installCommand: string }>('POST', '/v1/join-tokens', {});
    expect(issued.status).toBe(201);
    expect(issued.body.installCommand).toBe(`curl -fsSL ${hub!.url}/install.sh | sh -s -- --hub ${hub!.url} --join-token ${issued.body.token}`);

    const first = await shell(`${issued.body.installCommand} ${staging()} --no-systemd --name ${nodeName} --label e2e=install`);
    expect(first.stderr).toBe('');
    expect(first.code).toBe(0);
    launcher = path.join(root, PREFIX, 'bin/tether-agent');
    // It says how to run the agent: the launcher, reading the settings file.
    expect(first.stdout).toContain(`\n  ${launcher}\n`);
    expect(first.stdout).toContain(`it reads ${path.join(root, 'etc/tether/agent.env')}`);
    expect((await stat(path.join(root, 'etc/tether/agent.env'))).mode & 0o777).toBe(0o600);
    await expect(stat(path.join(root, 'etc/systemd/system/tether-agent.service'))).rejects.toMatchObject({ code: 'ENOENT' });

    startInstalledAgent();
    await vi.waitFor(
      async () => {
        const node = (await nodes()).find((n) => n.name === nodeName);
        expect(node?.state).toBe('ready');
        nodeId = node!.id;
      },
      { timeout: 30_000, interval: 200 },
    );
  });

  it('runs a container from the local registry', async () => {
    const put = await api('PUT', `/v1/services/${service}`, { image, command: ['/bin/sleep', '3600'], replicas: 1 });
    expect(put.status).toBe(201);
    await vi.waitFor(
      async () => {
        const { body } = await api('GET', `/v1/services/${service}`);
        expect(body.status.running).toBe(1);
      },
      { timeout: 60_000, interval: 250 },
    );
    const containers = await docker.listContainers([`${LABELS.nodeId}=${nodeId}`]);
    expect(containers).toHaveLength(1);
    expect(containers[0]!.State).toBe('running');
  });

  it('upgrades in place on a second run, with the settings kept and the same node id', async () => {
    await stopProgram(agent);
    const before = await readFile(path.join(root, 'etc/tether/agent.env'), 'utf8');
    // No --hub, --join-token or --name: the earlier settings stand.
    const second = await shell(`curl -fsSL ${hub!.url}/install.sh | sh -s -- ${staging()}`);
    expect(second.stderr).toBe('');
    expect(second.code).toBe(0);
    expect(second.stdout).toContain('restart the running agent to run the new version');
    // Installed with --no-systemd: no unit beside the supervisor that runs it.
    await expect(stat(path.join(root, 'etc/systemd/system/tether-agent.service'))).rejects.toMatchObject({ code: 'ENOENT' });
    expect(await readFile(path.join(root, 'etc/tether/agent.env'), 'utf8')).toBe(before);

    startInstalledAgent();
    await vi.waitFor(
      async () => {
        const all = await nodes();
        expect(all.map((n) => [n.id, n.name, n.state])).toEqual([[nodeId, nodeName, 'ready']]);
      },
      { timeout: 30_000, interval: 200 },
    );
    const { body } = await api('GET', `/v1/services/${service}`);
    expect(body.status.running).toBe(1);
  });

  it('writes a systemd unit that systemd-analyze verifies', async () => {
    // The agent above was installed with --no-systemd, which its upgrade kept: a unit is another install's.
    const unitRoot = path.join(dir, 'unit-root');
    const installed = await shell(
      `curl -fsSL ${hub!.url}/install.sh | sh -s -- --root ${quote(unitRoot)} --prefix ${PREFIX} --docker-socket ${quote(DOCKER_SOCKET)} --hub ${hub!.url} --join-token unused`,
    );
    expect(installed.stderr).toBe('');
    expect(installed.code).toBe(0);
    const unit = path.join(unitRoot, 'etc/systemd/system/tether-agent.service');
    const text = await readFile(unit, 'utf8');
    expect(text).toContain(`ExecStart=${path.join(unitRoot, PREFIX, 'bin/tether-agent')}\n`);
    expect(text).toContain('Restart=on-failure\n');
    // Settings the agent refuses (exit 2) stay refused: no restart every 5 s, one line in the journal.
    expect(text).toContain('RestartPreventExitStatus=2\n');
    const analyze = await shell('command -v systemd-analyze');
    if (analyze.code !== 0) {
      if (process.env.CI === 'true') throw new Error('systemd-analyze is missing (CI=true): run scripts/test-env.sh');
      return;
    }
    const verified = await shell(`systemd-analyze verify ${quote(unit)}`);
    expect(verified.stderr).toBe('');
    expect(verified.code).toBe(0);
  });

  it('uninstalls keeping the data dir and the containers; --purge removes both', async () => {
    await stopProgram(agent);
    const dataDir = path.join(root, 'var/lib/tether-agent');
    const removed = await shell(`sh ${quote(path.resolve('install.sh'))} --uninstall ${staging()}`);
    expect(removed.code).toBe(0);
    expect(removed.stdout).toContain('removed the agent, its unit and its settings');
    for (const gone of [launcher, path.join(root, PREFIX, 'tether-agent.mjs'), path.join(root, 'etc/tether/agent.env'), path.join(root, 'etc/systemd/system/tether-agent.service')]) {
      await expect(stat(gone)).rejects.toMatchObject({ code: 'ENOENT' });
    }
    expect(JSON.parse(await readFile(path.join(dataDir, 'node.json'), 'utf8')).nodeId).toBe(nodeId);
    expect(await docker.listContainers([`${LABELS.nodeId}=${nodeId}`])).toHaveLength(1);

    const purged = await shell(`sh ${quote(path.resolve('install.sh'))} --uninstall --purge ${staging()}`);
    expect(purged.stderr).toBe('');
    expect(purged.code).toBe(0);
    expect(purged.stdout).toContain(`removed 1 container(s) of node ${nodeId}`);
    expect(await docker.listContainers([`${LABELS.nodeId}=${nodeId}`])).toHaveLength(0);
    await expect(stat(dataDir)).rejects.toMatchObject({ code: 'ENOENT' });
  });
});

describeDocker('installing an agent with one line from a hub over TLS', () => {
  const nodeName = `installed-tls-${process.pid}`;
  let dir = '';
  let hub: Proc | undefined;
  let agent: Proc | undefined;
  let nodeId = '';

  beforeAll(async () => {
    dir = await mkdtemp(path.join(os.tmpdir(), 'tether-e2e-install-tls-'));
  });
  afterAll(async () => {
    await stopProgram(agent);
    await stopProgram(hub);
    if (nodeId) await cleanupNode(nodeId);
    await rm(dir, { recursive: true, force: true });
  });

  it("installs with the line the hub answers: curl pinned to the hub's key, the bundle and the agent to its CA", async () => {
    const port = await freePort();
    const url = `https://127.0.0.1:${port}`;
    const dataDir = path.join(dir, 'hub');
    hub = startProgram('hub', ['--port', String(port), '--data-dir', dataDir, '--heartbeat-interval-ms', '500', '--heartbeat-grace-ms', '3000']);
    const proc = hub;
    await vi.waitFor(() => expect(proc.output()).toContain(`is listening on ${url}\n`), { timeout: 30_000, interval: 100 });
    const ca = await readFile(path.join(dataDir, 'tls', 'ca.crt'), 'utf8');
    const token = (await readFile(path.join(dataDir, 'admin-token'), 'utf8')).trim();
    const api = (method: string, route: string, body?: unknown) => httpsApi(url, ca, token, method, route, body);

    const issued = await api('POST', '/v1/join-tokens', {});
    expect(issued.status).toBe(201);
    const command = issued.body.installCommand as string;
    expect(command).toMatch(/^curl -fsSL --insecure --pinnedpubkey sha256\/\/\S+ https:\/\/127\.0\.0\.1:\d+\/install\.sh \| sh -s -- /);
    expect(command).toContain(`--ca-fingerprint ${issued.body.caFingerprint}`);

    const root = path.join(dir, 'root');
    const installed = await shell(`${command} --root ${quote(root)} --no-systemd --docker-socket ${quote(DOCKER_SOCKET)} --name ${nodeName}`);
    expect(installed.stderr).toBe('');
    expect(installed.code).toBe(0);

    // The same line with another key pinned: curl refuses the hub, and sh gets nothing to run.
    const otherPin = command.replace(/--pinnedpubkey sha256\/\/\S+/, `--pinnedpubkey sha256//${Buffer.alloc(32).toString('base64')}`);
    const refused = await shell(`${otherPin} --root ${quote(path.join(dir, 'other-root'))} --no-systemd`);
    expect(refused.stderr).toMatch(/curl: \(90\)/);
    await expect(stat(path.join(dir, 'other-root'))).rejects.toMatchObject({ code: 'ENOENT' });

    agent = watchChild(spawn(path.join(root, 'opt/tether-agent/bin/tether-agent'), [], { stdio: ['ignore', 'pipe', 'pipe'] }), 'installed-tls-agent');
    await vi.waitFor(
      async () => {
        const node = ((await api('GET', '/v1/nodes')).body.nodes as Array<{ id: string; name: string; state: string }>).find((n) => n.name === nodeName);
        expect(node?.state).toBe('ready');
        nodeId = node!.id;
      },
      { timeout: 30_000, interval: 200 },
    );
    // The agent pinned the hub's CA at join.
    expect(caFingerprint(await readFile(path.join(root, 'var/lib/tether-agent/hub-ca.pem'), 'utf8'))).toBe(issued.body.caFingerprint);
  }, 90_000);
});
