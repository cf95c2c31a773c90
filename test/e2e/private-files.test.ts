/**
 * What the hub and the agent keep on disk is theirs alone (dirs 0700, files 0600) whatever umask
 * they start with, and no token reaches their output except the admin token, once, on a terminal.
 */
import { execFileSync } from 'node:child_process';
import { mkdir, mkdtemp, readdir, rm, stat } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, expect, it, vi } from 'vitest';
import { cleanupNode, describeDocker } from '../helpers/docker.js';
import { hubClient, startHub, startProgram, stopProgram, type Proc } from '../helpers/processes.js';

/** Every dir and file below `dir`, with its permission bits. */
async function modes(dir: string): Promise<Array<{ file: string; mode: number; isDir: boolean }>> {
  const out = [{ file: dir, mode: (await stat(dir)).mode & 0o777, isDir: true }];
  for (const entry of await readdir(dir, { withFileTypes: true, recursive: true })) {
    const file = path.join(entry.parentPath, entry.name);
    out.push({ file, mode: (await stat(file)).mode & 0o777, isDir: entry.isDirectory() });
  }
  return out;
}

function expectPrivate(found: Array<{ file: string; mode: number; isDir: boolean }>): void {
  expect(found.length).toBeGreaterThan(2);
  for (const f of found) expect([f.file, f.mode.toString(8)]).toEqual([f.file, f.isDir ? '700' : '600']);
}

describeDocker('files and output of the hub and the agent', () => {
  let dir = '';
  let hub: Proc | undefined;
  let agent: Proc | undefined;
  let nodeId: string | undefined;
  const previousUmask = process.umask(0o022);

  beforeAll(async () => {
    dir = await mkdtemp(path.join(os.tmpdir(), 'tether-files-'));
  });
  afterAll(async () => {
    await stopProgram(agent);
    await stopProgram(hub);
    if (nodeId) await cleanupNode(nodeId);
    process.umask(previousUmask);
    await rm(dir, { recursive: true, force: true });
  });

  it('keeps the data dirs 0700 and their files 0600 under umask 022, and logs no token', async () => {
    const hubDir = path.join(dir, 'hub');
    const agentDir = path.join(dir, 'agent');
    // Dirs made by an operator (or an older version) with the usual 0755 are narrowed.
    await mkdir(hubDir, { mode: 0o755 });
    await mkdir(agentDir, { mode: 0o755 });
    const started = await startHub({ dataDir: hubDir });
    hub = started;
    const { url, port } = started;
    await vi.waitFor(() => expect(hub!.output()).toContain('admin token:'), { timeout: 10_000 });
    const api = await hubClient(url, hubDir);
    const { body: join } = await api<{ token: string }>('POST', '/v1/join-tokens', {});
    const put = await api('PUT', '/v1/services/private', {
      image: 'tether-test/busybox:1',
      command: ['/bin/sleep', '3600'],
      registryAuth: { username: 'u', password: 'registry-password' },
      replicas: 1,
    });
    expect(put.status).toBe(201);
    agent = startProgram('agent', ['--hub', url, '--join-token', join.token, '--data-dir', agentDir, '--name', `files-${process.pid}`]);
    await vi.waitFor(
      async () => {
        const view = (await api<{ status: { running: number; replicas: Array<{ nodeId: string }> } }>('GET', '/v1/services/private')).body;
        expect(view.status.running).toBe(1);
        nodeId = view.status.replicas[0]!.nodeId;
      },
      { timeout: 30_000, interval: 200 },
    );
    await stopProgram(agent);
    await stopProgram(hub);

    expectPrivate(await modes(hubDir));
    expectPrivate(await modes(agentDir));
    // The output of a hub not on a terminal names the token file, never a token.
    const output = hub.output() + agent.output();
    expect(output).not.toMatch(/ta[t]_[A-Za-z0-9_-]{8}/);
    expect(output).not.toMatch(/tj[t]_[A-Za-z0-9_-]{8}/);
    expect(output).not.toMatch(/tn[c]_[A-Za-z0-9_-]{8}/);
    expect(output).not.toContain(join.token);
    expect(output).not.toContain('registry-password');

    // A restart makes no join token: none piles up.
    const tokensBefore = execFileSync('cat', [path.join(hubDir, 'store', 'join-tokens-00.json')]).toString();
    hub = await startHub({ dataDir: hubDir, port });
    await vi.waitFor(() => expect(hub!.output()).toContain('admin token:'), { timeout: 10_000 });
    await stopProgram(hub);
    expect(execFileSync('cat', [path.join(hubDir, 'store', 'join-tokens-00.json')]).toString()).toBe(tokensBefore);
    expect(hub.output()).not.toMatch(/ta[t]_[A-Za-z0-9_-]{8}/);
  });
});
