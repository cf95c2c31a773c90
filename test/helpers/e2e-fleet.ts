/**
 * A hub and its agents as real processes on the real engine, for end-to-end tests: the hub on a
 * free port with a short heartbeat, each agent joined with a token of its own and publishing on
 * its own loopback address (agents sharing one engine must), all ready before the tests run.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { expect, vi } from 'vitest';
import { cleanupNode } from './docker.js';
import { hubClient, startHub, startProgram, stopProgram, type Proc } from './processes.js';

export interface E2eFleet {
  url: string;
  dir: string;
  hub: Proc;
  agents: Proc[];
  /** The nodes' ids, in the order their agents were started. */
  nodeIds: string[];
  api: Awaited<ReturnType<typeof hubClient>>;
  /** Stops the agents and the hub, removes the nodes' containers and the data dirs. */
  close(): Promise<void>;
}

/** `name` names the temp dir and the nodes; `publishAddresses`: one agent per address. */
export async function startE2eFleet(name: string, publishAddresses: readonly string[]): Promise<E2eFleet> {
  const dir = await mkdtemp(path.join(os.tmpdir(), `tether-e2e-${name}-`));
  let hub: Proc | undefined;
  const agents: Proc[] = [];
  const nodeIds: string[] = [];
  const close = async () => {
    for (const agent of agents) await stopProgram(agent);
    await stopProgram(hub);
    for (const id of nodeIds) await cleanupNode(id);
    await rm(dir, { recursive: true, force: true });
  };
  try {
    const started = await startHub({ dataDir: path.join(dir, 'hub'), args: ['--heartbeat-interval-ms', '500', '--heartbeat-grace-ms', '3000'] });
    hub = started;
    const url = started.url;
    const api = await hubClient(url, path.join(dir, 'hub'));
    for (const [i, address] of publishAddresses.entries()) {
      const { body } = await api<{ token: string }>('POST', '/v1/join-tokens', {});
      const nodeName = `e2e-${name}-${i + 1}-${process.pid}`;
      agents.push(startProgram('agent', ['--hub', url, '--join-token', body.token, '--data-dir', path.join(dir, `agent-${i + 1}`), '--name', nodeName, '--publish-address', address]));
    }
    await vi.waitFor(
      async () => {
        const nodes = (await api<{ nodes: Array<{ id: string; name: string; state: string }> }>('GET', '/v1/nodes')).body.nodes;
        expect(nodes.filter((n) => n.state === 'ready')).toHaveLength(publishAddresses.length);
        const byName = new Map(nodes.map((n) => [n.name, n.id]));
        nodeIds.splice(0, nodeIds.length, ...publishAddresses.map((_, i) => byName.get(`e2e-${name}-${i + 1}-${process.pid}`)!));
      },
      { timeout: 30_000, interval: 200 },
    );
    return { url, dir, hub: started, agents, nodeIds, api, close };
  } catch (error) {
    await close();
    throw error;
  }
}
