/**
 * Node names are unique, and devices flashed from one image share a host name: an agent started
 * without --name whose host name is taken joins under a name of its own, and keeps saying it.
 */
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, expect, it, vi } from 'vitest';
import { cleanupNode, describeDocker } from '../helpers/docker.js';
import { hubClient, startHub, startProgram, stopProgram, type Proc } from '../helpers/processes.js';

interface NodeView {
  id: string;
  name: string;
  state: string;
  requested: unknown;
}

describeDocker('an agent whose host name is taken', () => {
  let url = '';
  let dir = '';
  let hub: Proc | undefined;
  let agent: Proc | undefined;
  const nodeIds: string[] = [];

  beforeAll(async () => {
    dir = await mkdtemp(path.join(os.tmpdir(), 'tether-join-name-'));
    const started = await startHub({ dataDir: path.join(dir, 'hub') });
    hub = started;
    url = started.url;
  });
  afterAll(async () => {
    await stopProgram(agent);
    await stopProgram(hub);
    for (const id of nodeIds) await cleanupNode(id);
    await rm(dir, { recursive: true, force: true });
  });

  it('joins as <hostname>-<suffix>, says that name at hello, and refuses a taken --name', async () => {
    const api = await hubClient(url, path.join(dir, 'hub'));
    const token = async () => (await api<{ token: string }>('POST', '/v1/join-tokens', {})).body.token;
    // Another device took this machine's host name first.
    const first = await fetch(`${url}/v1/join`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ joinToken: await token(), name: os.hostname() }) });
    expect(first.status).toBe(201);
    nodeIds.push(((await first.json()) as { nodeId: string }).nodeId);

    const dataDir = path.join(dir, 'agent');
    const proc = startProgram('agent', ['--hub', url, '--join-token', await token(), '--data-dir', dataDir]);
    agent = proc;
    const joined = await vi.waitFor(
      async () => {
        const nodes = (await api<{ nodes: NodeView[] }>('GET', '/v1/nodes')).body.nodes;
        const mine = nodes.find((n) => n.name !== os.hostname());
        expect(mine?.state).toBe('ready');
        return mine!;
      },
      { timeout: 30_000, interval: 200 },
    );
    nodeIds.push(joined.id);
    expect(joined.name).toMatch(new RegExp(`^${os.hostname().replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}-[0-9a-f]{6}$`));
    // Its hello says the name it joined with: no request for the host name.
    expect(joined.requested).toBeNull();
    expect(JSON.parse(await readFile(path.join(dataDir, 'node.json'), 'utf8')).name).toBe(joined.name);
    await vi.waitFor(() => expect(proc.output()).toContain('another node has this host name'), { timeout: 10_000, interval: 100 });

    // A name given with --name is the operator's choice: taken, it is an error, not a suffix.
    const named = startProgram('agent', ['--hub', url, '--join-token', await token(), '--data-dir', path.join(dir, 'agent-2'), '--name', joined.name]);
    expect(await named.exited).not.toBe(0);
    expect(named.output()).toMatch(/exists already/);
  });
});
