/**
 * A node's last conditions frame, held back by the hub's rate limit, lands when its connection
 * ends: an agent whose engine came back and that then says hello again (or loses its link) must
 * not have its away-time dated from the engine's outage, nor be declared lost early.
 */
import WebSocket from 'ws';
import { setTimeout as sleep } from 'node:timers/promises';
import { afterEach, expect, it, vi } from 'vitest';
import { RUNTIME_UNKNOWN } from '../../agent/agent.js';
import { SimulatedRuntime } from '../../agent/runtime/simulated-runtime.js';
import type { NodeConditions } from '../../shared/protocol.js';
import { SimFleet, helloFrame } from '../helpers/sim-fleet.js';

const GiB = 1024 ** 3;
const disk = (p: string) => ({ path: p, totalBytes: 32 * GiB, freeBytes: 20 * GiB });
const healthy: NodeConditions = { engine: { available: true, error: null }, targetCache: { current: true, error: null }, dataDisk: disk('/d'), engineDisk: disk('/e') };
const engineDown: NodeConditions = { ...healthy, engine: { available: false, error: 'connect ENOENT /var/run/docker.sock' } };

let fleet: SimFleet | undefined;
afterEach(async () => {
  await fleet?.close();
});

it('applies the held last word (engine back) before the node counts as away', async () => {
  const lostAfterMs = 2500;
  const f = (fleet = await SimFleet.start({ lostAfterMs, heartbeatGraceMs: 1000 } as never));
  const { token } = await f.hub.nodes.createJoinToken(60);
  const joined = (await f.hub.nodes.join(token, 'n', {}))!;
  const ws = new WebSocket(`${f.url.replace('http', 'ws')}/v1/agent/connect`, { headers: { authorization: `Bearer ${joined.credential}` } });
  ws.on('error', () => undefined);
  await new Promise((r) => ws.once('open', r));
  const welcomed = new Promise((r) => ws.once('message', r));
  ws.send(JSON.stringify({ ...helloFrame('n'), conditions: healthy }));
  await welcomed;
  const heartbeats = setInterval(() => ws.readyState === WebSocket.OPEN && ws.send(JSON.stringify({ type: 'heartbeat' })), 200);
  ws.once('close', () => clearInterval(heartbeats));

  ws.send(JSON.stringify({ type: 'conditions', conditions: engineDown }));
  await sleep(1500);
  expect(f.hub.detector.state(joined.nodeId)).toBe('not_ready');
  // The engine is back: within the rate limit's interval, so the hub holds this frame.
  ws.send(JSON.stringify({ type: 'conditions', conditions: healthy }));
  await sleep(100);
  const closedAtMs = performance.now();
  ws.close(1000, 'saying hello again');
  await sleep(300);
  expect(f.hub.conditions.get(joined.nodeId)?.conditions.engine.available).toBe(true);
  // Away from the close, not from the outage: not lost before lostAfter has passed since then.
  while (performance.now() - closedAtMs < lostAfterMs - 400) {
    expect(f.hub.detector.state(joined.nodeId)).toBe('unreachable');
    await sleep(100);
  }
}, 20_000);

it('an agent whose engine returns after an outage past lostAfter says hello again without being declared lost', async () => {
  const f = (fleet = await SimFleet.start({ lostAfterMs: 1500 } as never));
  const runtime = new SimulatedRuntime();
  runtime.setEngineAvailable(false);
  const agent = await f.addAgent({ runtime, facts: { runtime: RUNTIME_UNKNOWN } });
  const states: string[] = [];
  const poll = setInterval(() => {
    const state = f.hub.detector.state(agent.nodeId);
    if (states.at(-1) !== state) states.push(state);
  }, 5);
  try {
    await vi.waitFor(() => expect(f.hub.detector.state(agent.nodeId)).toBe('not_ready'), { timeout: 5_000, interval: 20 });
    await sleep(2500);
    runtime.setEngineAvailable(true);
    // The engine's facts reach the hub in a new hello, on a new connection.
    await vi.waitFor(() => expect(f.hub.store.getNode(agent.nodeId)?.facts?.runtime).not.toBe(RUNTIME_UNKNOWN), { timeout: 15_000, interval: 20 });
    await vi.waitFor(() => expect(f.hub.detector.state(agent.nodeId)).toBe('ready'), { timeout: 5_000, interval: 20 });
    await sleep(300);
  } finally {
    clearInterval(poll);
  }
  expect(states).not.toContain('lost');
}, 30_000);
