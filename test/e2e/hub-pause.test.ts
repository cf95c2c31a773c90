/**
 * A paused hub (a long GC, a suspended VM, SIGSTOP): the real hub process stopped for twice
 * lostAfter while agents are connected, then continued. The hub saw nothing in that time, so
 * nothing it saw may count against the nodes: no replica moves or restarts. The agents run in this
 * process on a simulated engine (no Docker needed); the hub is the built program in dist/.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterEach, expect, it, vi } from 'vitest';
import { Agent } from '../../agent/agent.js';
import { joinHub } from '../../agent/node-identity.js';
import { SimulatedRuntime } from '../../agent/runtime/simulated-runtime.js';
import { hubClient, startHub, stopProgram, type Proc } from '../helpers/processes.js';
import { simFacts } from '../helpers/sim-fleet.js';
import { silentLogger } from '../helpers/silent-logger.js';

const LOST_AFTER_MS = 1500;
const spec = { image: 'tether-test/busybox:1', command: ['/bin/httpd', '-f', '-p', '8080'] };

let hub: Proc | undefined;
let dir = '';
const agents: Agent[] = [];
afterEach(async () => {
  hub?.child.kill('SIGCONT');
  await Promise.all(agents.splice(0).map((a) => a.stop()));
  await stopProgram(hub);
  hub = undefined;
  if (dir) await rm(dir, { recursive: true, force: true });
});

interface Replica {
  replicaId: string;
  nodeId: string | null;
  movedFrom: string | null;
  replacedBy: string | null;
}

it('a hub paused for 2x lostAfter with agents connected moves and restarts nothing', async () => {
  dir = await mkdtemp(path.join(os.tmpdir(), 'tether-hub-pause-'));
  const started = await startHub({
    dataDir: path.join(dir, 'hub'),
    args: ['--heartbeat-interval-ms', '200', '--heartbeat-grace-ms', '800', '--lost-after-ms', String(LOST_AFTER_MS)],
  });
  hub = started;
  const { url } = started;
  const api = await hubClient(url, path.join(dir, 'hub'));
  const runtime = new SimulatedRuntime();
  const { body: join } = await api<{ token: string }>('POST', '/v1/join-tokens', {});
  for (let i = 0; i < 4; i++) {
    const name = `pause-${i}`;
    const agent = new Agent({
      identity: await joinHub(url, join.token, name, {}),
      name,
      labels: {},
      advertiseAddress: null,
      publishAddress: `127.0.0.${i + 2}`,
      runtime,
      targetCache: null,
      facts: simFacts({ hostname: name }),
      logger: silentLogger,
      resyncIntervalMs: 1000,
      reconnectBaseMs: 50,
      reconnectCapMs: 500,
      retryBaseMs: 50,
    });
    agents.push(agent);
    await agent.start();
  }
  const status = async () => (await api<{ status: { running: number; replicas: Replica[] } }>('GET', '/v1/services/web')).body.status;
  await api('PUT', '/v1/services/web', { ...spec, replicas: 4 });
  // A replica that can never be placed keeps the hub's loop unsettled, as in many real fleets:
  // then any node coming or going runs a pass, which judges every node's away-time at once.
  await api('PUT', '/v1/services/waiting', { ...spec, replicas: 1, constraints: ['node.labels.zone == nowhere'] });
  await vi.waitFor(async () => expect((await status()).running).toBe(4), { timeout: 15_000, interval: 100 });
  const placed = (await status()).replicas.map((r) => `${r.replicaId}@${r.nodeId}`).sort();
  const engine = () => runtime.containers().map((c) => `${c.id} ${c.replicaId}@${c.nodeId} ${c.state}`).sort();
  const engineBefore = engine();
  const creates = runtime.calls.createContainer;

  hub.child.kill('SIGSTOP');
  await new Promise((r) => setTimeout(r, 2 * LOST_AFTER_MS));
  hub.child.kill('SIGCONT');

  // The agents gave up on the silent hub and reconnect; then another lostAfter passes.
  await vi.waitFor(
    async () => {
      const { body } = await api<{ nodes: Array<{ state: string }> }>('GET', '/v1/nodes');
      const nodes = body.nodes;
      expect(nodes.map((n) => n.state)).toEqual(['ready', 'ready', 'ready', 'ready']);
    },
    { timeout: 15_000, interval: 100 },
  );
  await new Promise((r) => setTimeout(r, LOST_AFTER_MS + 1000));
  const after = await status();
  expect(after.running).toBe(4);
  expect(after.replicas.filter((r) => r.movedFrom !== null || r.replacedBy !== null)).toEqual([]);
  expect(after.replicas.map((r) => `${r.replicaId}@${r.nodeId}`).sort()).toEqual(placed);
  expect(engine()).toEqual(engineBefore);
  expect(runtime.calls.createContainer).toBe(creates);
}, 60_000);
