/**
 * A device flooding the hub with `conditions` frames (a compromised agent, or a broken one): the
 * hub applies at most one per node per CONDITIONS_MIN_FRAME_INTERVAL_MS, the latest last, so the
 * flood costs neither its log nor its state changes, and other nodes are heard as usual.
 */
import WebSocket from 'ws';
import { afterEach, expect, it, vi } from 'vitest';
import type { NodeConditions } from '../../shared/protocol.js';
import { ADMIN_TOKEN, SimFleet, helloFrame } from '../helpers/sim-fleet.js';

const GiB = 1024 ** 3;
const healthy: NodeConditions = {
  engine: { available: true, error: null },
  targetCache: { current: true, error: null },
  dataDisk: { path: '/var/lib/tether', totalBytes: 32 * GiB, freeBytes: 20 * GiB },
  engineDisk: { path: '/var/lib/docker', totalBytes: 32 * GiB, freeBytes: 20 * GiB },
};
const sick: NodeConditions = {
  engine: { available: false, error: 'connect ENOENT /var/run/docker.sock' },
  targetCache: { current: false, error: 'ENOSPC' },
  dataDisk: { path: '/var/lib/tether', totalBytes: 32 * GiB, freeBytes: 1 },
  engineDisk: { path: '/var/lib/docker', totalBytes: 32 * GiB, freeBytes: 1 },
};

let fleet: SimFleet | undefined;
const sockets: WebSocket[] = [];
afterEach(async () => {
  for (const ws of sockets.splice(0)) ws.close();
  await fleet?.close();
});

async function device(f: SimFleet, name: string): Promise<{ nodeId: string; ws: WebSocket }> {
  const { token } = await f.hub.nodes.createJoinToken(60);
  const joined = (await f.hub.nodes.join(token, name, {}))!;
  const ws = new WebSocket(`${f.url.replace('http', 'ws')}/v1/agent/connect`, { headers: { authorization: `Bearer ${joined.credential}` } });
  ws.on('error', () => undefined);
  sockets.push(ws);
  await new Promise((r) => ws.once('open', r));
  const welcomed = new Promise((r) => ws.once('message', r));
  ws.send(JSON.stringify({ ...helloFrame(name), conditions: healthy }));
  await welcomed;
  const heartbeat = setInterval(() => ws.send(JSON.stringify({ type: 'heartbeat' })), 100);
  ws.once('close', () => clearInterval(heartbeat));
  return { nodeId: joined.nodeId, ws };
}

it('a device flipping its conditions thousands of times costs a few log lines and state changes; the last word lands; others are heard', async () => {
  const f = (fleet = await SimFleet.start());
  const flap = await device(f, 'flap');
  const calm = await device(f, 'calm');
  const lines: Array<{ nodeId?: string; msg: string }> = [];
  for (const level of ['warn', 'info'] as const) {
    vi.spyOn(f.app.log, level).mockImplementation(((obj: { nodeId?: string }, msg: string) => {
      lines.push({ nodeId: obj?.nodeId, msg });
    }) as never);
  }
  // Every change of a node's state (but to lost) asks the scheduler for a pass.
  const stateChanges = vi.spyOn(f.hub.loop, 'nodesChanged');
  const state = () => f.hub.detector.state(flap.nodeId);
  const frames = 5000; // the first says sick, the last healthy
  for (let i = 0; i < frames; i++) {
    flap.ws.send(JSON.stringify({ type: 'conditions', conditions: i % 2 === 0 ? sick : healthy }));
  }
  // Another node's news during the flood is applied as it comes.
  calm.ws.send(JSON.stringify({ type: 'conditions', conditions: sick }));
  await vi.waitFor(() => expect(f.hub.detector.state(calm.nodeId)).toBe('not_ready'), { timeout: 10_000, interval: 10 });
  // The latest of the flood lands once the interval ends.
  await vi.waitFor(
    () => {
      expect(f.hub.conditions.get(flap.nodeId)?.conditions).toEqual(healthy);
    },
    { timeout: 10_000, interval: 50 },
  );
  expect(state()).toBe('ready');
  const flapLines = lines.filter((l) => l.nodeId === flap.nodeId);
  expect(flapLines.length).toBeGreaterThan(0);
  expect(flapLines.length).toBeLessThanOrEqual(10);
  const stateLines = flapLines.filter((l) => /^node (ready|not ready)/.test(l.msg));
  expect(stateLines.length).toBeLessThanOrEqual(2);
  // The flood's first frame, its last, and the other node's one.
  expect(stateChanges.mock.calls.length).toBeLessThanOrEqual(3);
  expect(lines.filter((l) => l.nodeId === calm.nodeId && /not ready/.test(l.msg))).toHaveLength(1);
  // What was held back is counted, for an alert on the device that sends it.
  const metrics = (await f.app.inject({ url: '/metrics', headers: { authorization: `Bearer ${ADMIN_TOKEN}` } })).body;
  const held = Number(/^tether_agent_conditions_held_total (\d+)$/m.exec(metrics)?.[1]);
  expect(held).toBeGreaterThan(frames - 10);
}, 30_000);

it('a device reconnecting over and over, its conditions flipping in each hello, gets a few log lines a minute; its state stays right', async () => {
  const f = (fleet = await SimFleet.start());
  const { token } = await f.hub.nodes.createJoinToken(60);
  const joined = (await f.hub.nodes.join(token, 'bouncy', {}))!;
  const lines: Array<{ nodeId?: string; msg: string }> = [];
  for (const level of ['warn', 'info'] as const) {
    vi.spyOn(f.app.log, level).mockImplementation(((obj: { nodeId?: string }, msg: string) => {
      lines.push({ nodeId: obj?.nodeId, msg });
    }) as never);
  }
  const hellos = 40;
  for (let i = 0; i < hellos; i++) {
    const ws = new WebSocket(`${f.url.replace('http', 'ws')}/v1/agent/connect`, { headers: { authorization: `Bearer ${joined.credential}` } });
    ws.on('error', () => undefined);
    await new Promise((r) => ws.once('open', r));
    const welcomed = new Promise((r) => ws.once('message', r));
    ws.send(JSON.stringify({ ...helloFrame('bouncy'), conditions: i % 2 === 0 ? sick : healthy }));
    await welcomed;
    if (i === hellos - 1) {
      sockets.push(ws);
      break;
    }
    const closed = new Promise((r) => ws.once('close', r));
    ws.close();
    await closed;
    await vi.waitFor(() => expect(f.hub.detector.state(joined.nodeId)).toBe('unreachable'), { timeout: 5_000, interval: 5 });
  }
  // The last hello said healthy.
  expect(f.hub.detector.state(joined.nodeId)).toBe('ready');
  expect(f.hub.conditions.get(joined.nodeId)?.conditions).toEqual(healthy);
  const transitions = lines.filter((l) => l.nodeId === joined.nodeId && /^node (ready|not ready|unreachable)|target|disk/.test(l.msg));
  expect(transitions.length).toBeGreaterThan(0);
  expect(transitions.length).toBeLessThanOrEqual(20);
}, 30_000);
