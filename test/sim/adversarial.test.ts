/**
 * A seeded adversarial run: hostile devices (malformed frames, forged and flooding reports,
 * handshake floods, resets mid-upgrade, bad credentials) and flaky links against a fleet of
 * honest agents running services. The hub must stay up, keep what it holds per node bounded, and
 * restart nothing that was healthy. Replays from its seed: TETHER_SEED=<seed> npx vitest run <this file>.
 */
import net from 'node:net';
import WebSocket from 'ws';
import { afterEach, describe, expect, it, vi } from 'vitest';
import type { Agent } from '../../agent/agent.js';
import { PROTOCOL_LIMITS, type ReplicaReport } from '../../shared/protocol.js';
import { FaultProxy } from '../helpers/fault-proxy.js';
import { prng } from '../helpers/prng.js';
import { SimFleet, helloFrame } from '../helpers/sim-fleet.js';

const SEED = Number(process.env.TETHER_SEED ?? Math.floor(Math.random() * 2 ** 31));
const ACTIONS = 120;
const spec = { image: 'tether-test/busybox:1', command: ['/bin/httpd', '-f', '-p', '8080'] };

let fleet: SimFleet;
const proxies: FaultProxy[] = [];
const sockets = new Set<WebSocket | net.Socket>();
afterEach(async () => {
  for (const s of sockets) (s instanceof WebSocket ? s.terminate() : s.destroy());
  sockets.clear();
  await Promise.all(proxies.splice(0).map((p) => p.close()));
  await fleet?.close();
});

const wsUrl = () => `${fleet.url.replace('http', 'ws')}/v1/agent/connect`;

function track<T extends WebSocket | net.Socket>(s: T): T {
  sockets.add(s);
  s.on('error', () => undefined);
  s.on('close', () => sockets.delete(s));
  return s;
}

/** Opens a connection with a credential; resolves on open, or with the refusal's status. */
function upgrade(credential: string): Promise<{ ws: WebSocket; status: number }> {
  const ws = track(new WebSocket(wsUrl(), { headers: { authorization: `Bearer ${credential}` } }));
  return new Promise((resolve) => {
    ws.once('open', () => resolve({ ws, status: 101 }));
    ws.once('unexpected-response', (_req, res) => {
      resolve({ ws, status: res.statusCode ?? 0 });
      ws.terminate();
    });
    ws.once('error', () => resolve({ ws, status: 0 }));
  });
}

const closeOf = (ws: WebSocket) =>
  new Promise<number>((resolve) => {
    if (ws.readyState === WebSocket.CLOSED) resolve(-1);
    ws.once('close', (code) => resolve(code));
  });

const report = (replicaId: string, state: ReplicaReport['state'], service = 'web'): ReplicaReport => ({
  replicaId,
  service,
  state,
  specHash: 'x'.repeat(16),
  containerId: state === 'running' ? 'c'.repeat(64) : null,
  error: state === 'failed' ? 'forged' : null,
  restarts: 7,
});

describe(`adversarial devices against a fleet (seed ${SEED})`, () => {
  it('keeps the hub up, its per-node state bounded, and every healthy replica untouched', async () => {
    const random = prng(SEED);
    const pick = <T>(list: readonly T[]): T => list[Math.floor(random() * list.length)]!;
    fleet = await SimFleet.start({ heartbeatIntervalMs: 200, heartbeatGraceMs: 2000, lostAfterMs: 60_000 });
    const honest: Array<{ agent: Agent; proxy: FaultProxy }> = [];
    for (let i = 0; i < 4; i++) {
      const proxy = await FaultProxy.start({ target: { host: '127.0.0.1', port: Number(new URL(fleet.url).port) } });
      proxies.push(proxy);
      honest.push({ agent: await fleet.addAgent({ hubUrl: proxy.url }), proxy });
    }
    await fleet.api('PUT', '/v1/services/web', { ...spec, replicas: 6 });
    await fleet.api('PUT', '/v1/services/edge', { ...spec, mode: 'global', command: ['/bin/sleep', '3600'] });
    const settled = async () =>
      vi.waitFor(
        async () => {
          for (const [name, n] of [['web', 6], ['edge', 4]] as const) {
            const { body } = await fleet.api<{ status: { running: number } }>('GET', `/v1/services/${name}`);
            expect(body.status.running, name).toBe(n);
          }
        },
        { timeout: 20_000, interval: 100 },
      );
    await settled();
    const containersBefore = fleet.runtime
      .containers()
      .filter((c) => c.state === 'running')
      .map((c) => c.id)
      .sort();
    const createsBefore = fleet.runtime.calls.createContainer;
    const replicaIds = [...(await fleet.api<{ status: { replicas: Array<{ replicaId: string }> } }>('GET', '/v1/services/web')).body.status.replicas].map((r) => r.replicaId);

    const join = async (name: string) => {
      const { token } = await fleet.hub.nodes.createJoinToken(600);
      return (await fleet.hub.nodes.join(token, name, {}))!;
    };
    const rogue = await join('rogue');
    const flooder = await join('flooder');
    let forgedSent = 0;

    const actions: Record<string, () => Promise<void>> = {
      async malformedFrame() {
        const { ws, status } = await upgrade(rogue.credential);
        if (status !== 101) return;
        const closed = closeOf(ws);
        const frames: Array<string | Buffer> = [
          'not json at all',
          Buffer.from(Array.from({ length: 64 }, () => Math.floor(random() * 256))),
          JSON.stringify({ type: 'status', replicas: [] }),
          JSON.stringify({ type: 'hello', protocolVersion: 'one' }),
          JSON.stringify({ ...helloFrame('rogue'), replicas: 'many' }),
          `{"type":"hello","name":"${'\u0000'.repeat(10)}"`,
          'x'.repeat(PROTOCOL_LIMITS.maxAgentFrameBytes + 1),
        ];
        ws.send(pick(frames));
        expect([1009, 4000, 4002]).toContain(await closed);
      },
      async forgedReports() {
        const { ws, status } = await upgrade(rogue.credential);
        if (status !== 101) return;
        ws.send(JSON.stringify(helloFrame('rogue', { replicas: replicaIds.slice(0, 3).map((id) => report(id, 'running')) })));
        const states = ['failed', 'stopped', 'removed', 'starting', 'pending'] as const;
        const forged = Array.from({ length: 1 + Math.floor(random() * 6) }, () => report(pick(replicaIds), pick(states)));
        ws.send(JSON.stringify({ type: 'status', replicas: forged }));
        forgedSent += forged.filter((r) => r.state !== 'removed').length + 3;
        // Closed before the next action: a newer session of this node would replace this one,
        // and the hub rightly ignores what a replaced session still sends.
        const closed = closeOf(ws);
        ws.close();
        await closed;
      },
      async reportFlood() {
        const { ws, status } = await upgrade(flooder.credential);
        if (status !== 101) return;
        ws.send(JSON.stringify(helloFrame('flooder')));
        for (let f = 0; f < 3; f++) {
          const replicas = Array.from({ length: PROTOCOL_LIMITS.maxReportedReplicas }, (_, i) => report(`flood-${f}-${i}-${random()}`, 'running'));
          ws.send(JSON.stringify({ type: 'status', replicas }));
        }
        const closed = closeOf(ws);
        ws.close();
        await closed;
      },
      async handshakeFlood() {
        // Upgrades that never say hello, all with one credential.
        const held = await Promise.all(Array.from({ length: 40 }, () => upgrade(flooder.credential)));
        await new Promise((r) => setTimeout(r, 20 + random() * 200));
        for (const { ws } of held) ws.terminate();
      },
      async resetMidUpgrade() {
        const socket = track(net.connect(Number(new URL(fleet.url).port), '127.0.0.1'));
        await new Promise<void>((resolve) => socket.once('connect', () => resolve()));
        socket.write(
          `GET /v1/agent/connect HTTP/1.1\r\nHost: hub\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nAuthorization: Bearer ${pick([rogue.credential, 'tnc_bogus.AAAAAAAAAAAAAAAAAAAA', ''])}\r\n\r\n`,
        );
        await new Promise((r) => setTimeout(r, random() * 5));
        socket.resetAndDestroy();
      },
      async badCredential() {
        const { status } = await upgrade(pick(['tnc_00000000-0000-0000-0000-000000000000.AAAAAAAAAAAAAAAAAAAAAAAA', 'garbage', `${rogue.credential}x`]));
        // Past the address's allowance of failures (every device here is 127.0.0.1), a 429 instead.
        expect([401, 429]).toContain(status);
      },
      async partition() {
        const { proxy } = pick(honest);
        proxy.cut();
        await new Promise((r) => setTimeout(r, 100 + random() * 700));
        proxy.restore();
      },
    };
    const names = Object.keys(actions);
    const done: Record<string, number> = {};
    for (let i = 0; i < ACTIONS; i++) {
      const name = pick(names);
      done[name] = (done[name] ?? 0) + 1;
      await actions[name]!();
      expect((await fleet.app.inject({ url: '/healthz' })).statusCode).toBe(200);
    }
    // Every kind of attack ran.
    expect(Object.keys(done).sort()).toEqual([...names].sort());

    await vi.waitFor(() => expect(honest.every((h) => h.agent.link.connected)).toBe(true), { timeout: 20_000, interval: 50 });
    await settled();
    // Nothing healthy was restarted or replaced: the same containers, no new ones.
    const containersAfter = fleet.runtime
      .containers()
      .filter((c) => c.state === 'running')
      .map((c) => c.id)
      .sort();
    expect(containersAfter).toEqual(containersBefore);
    expect(fleet.runtime.calls.createContainer).toBe(createsBefore);
    // What the hub holds per node follows the targets, not what devices sent.
    expect(fleet.hub.observed.size).toBe(10);
    if (done.forgedReports || done.reportFlood) expect(fleet.hub.nodes.refusedReports).toBeGreaterThanOrEqual(forgedSent);
    await vi.waitFor(() => expect(fleet.hub.gateway.pendingHandshakeCount).toBe(0), { timeout: 15_000, interval: 50 });
    // The honest agents, and no attacker's session left open (their closes may still be under way).
    await vi.waitFor(() => expect(fleet.hub.gateway.connectedCount).toBe(4), { timeout: 5_000, interval: 50 });
  }, 120_000);
});
