/**
 * A node's identity end to end: the hub and two agents as real processes on the real engine. One
 * node's credential is rotated (its node.json holds the new one, and it connects with it); then
 * it is removed: its replica runs on the other node, its agent stops connecting and says so once,
 * its container keeps running until an operator acts, and a restart of the agent does not try again.
 */
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { afterAll, beforeAll, expect, it, vi } from 'vitest';
import { LABELS } from '../../agent/runtime/container-runtime.js';
import { describeDocker, docker } from '../helpers/docker.js';
import { startE2eFleet, type E2eFleet } from '../helpers/e2e-fleet.js';
import { startProgram, stopProgram, type Proc } from '../helpers/processes.js';

const IMAGE = 'tether-test/busybox:1';

describeDocker('node identity, a hub and two agents on the real engine', () => {
  const service = `identity-${process.pid}`;
  let fleet: E2eFleet;
  let restarted: Proc | undefined;
  const api: E2eFleet['api'] = (...args) => fleet.api(...args);

  beforeAll(async () => {
    fleet = await startE2eFleet('identity', ['127.0.0.1', '127.0.0.2']);
  }, 60_000);

  afterAll(async () => {
    await stopProgram(restarted);
    await fleet?.close();
  });

  const replicas = async () => (await api<{ status: { replicas: Array<{ nodeId: string; state: string }> } }>('GET', `/v1/services/${service}`)).body.status.replicas;
  const identityOf = async (i: number) => JSON.parse(await readFile(path.join(fleet.dir, `agent-${i + 1}`, 'node.json'), 'utf8')) as { credential: string; removed?: object };

  it('rotates a credential, then removes the node: its replica moves, its agent stops for good, its container keeps running', async () => {
    const [first, second] = fleet.nodeIds as [string, string];
    expect((await api('PUT', `/v1/services/${service}`, { image: IMAGE, command: ['/bin/sleep', '600'], replicas: 2 })).status).toBe(201);
    await vi.waitFor(
      async () => {
        const now = await replicas();
        expect(now.filter((r) => r.state === 'running').map((r) => r.nodeId).sort()).toEqual([first, second].sort());
      },
      { timeout: 60_000, interval: 250 },
    );

    const before = await identityOf(0);
    const rotated = await api('POST', `/v1/nodes/${first}/rotate-credential`);
    expect(rotated.status, JSON.stringify(rotated.body)).toBe(200);
    expect((await identityOf(0)).credential).not.toBe(before.credential);
    await vi.waitFor(async () => expect((await api<{ state: string }>('GET', `/v1/nodes/${first}`)).body.state).toBe('ready'), { timeout: 20_000, interval: 200 });

    const removed = await api<{ replicas: Array<{ service: string; outcome: string }> }>('DELETE', `/v1/nodes/${first}`);
    expect(removed.status).toBe(200);
    expect(removed.body.replicas).toEqual([expect.objectContaining({ service, outcome: 'placed_anew' })]);
    await vi.waitFor(
      async () => {
        const now = await replicas();
        expect(now.map((r) => [r.nodeId, r.state])).toEqual([
          [second, 'running'],
          [second, 'running'],
        ]);
      },
      { timeout: 60_000, interval: 250 },
    );
    const agent = fleet.agents[0]!;
    await vi.waitFor(() => expect(agent.output()).toMatch(/removed from the hub by its operator/), { timeout: 10_000, interval: 100 });
    await vi.waitFor(async () => expect((await identityOf(0)).removed).toBeDefined(), { timeout: 10_000, interval: 100 });
    // It says so once, keeps running, and keeps what it ran.
    await new Promise((r) => setTimeout(r, 1500));
    expect(agent.output().match(/removed from the hub by its operator/g)).toHaveLength(1);
    expect(agent.child.exitCode).toBeNull();
    const kept = await docker.listContainers([`${LABELS.nodeId}=${first}`, `${LABELS.service}=${service}`]);
    expect(kept.map((c) => c.State)).toEqual(['running']);

    // Started again, it does not try: the hub sees no upgrade with its credential.
    await stopProgram(agent);
    restarted = startProgram('agent', ['--data-dir', path.join(fleet.dir, 'agent-1'), '--publish-address', '127.0.0.1']);
    await vi.waitFor(() => expect(restarted!.output()).toMatch(/removed from the hub by its operator/), { timeout: 20_000, interval: 100 });
    await new Promise((r) => setTimeout(r, 1500));
    expect(restarted.output()).not.toMatch(/connected to the hub|hub refused the connection/);
  }, 180_000);
});
