/**
 * Nothing a client does on its socket stops the hub: TCP resets at every refusal path of the agent
 * endpoint (404, 401, 503), in the middle of a handshake, in the middle of an HTTP request and
 * while the hub writes a large target, one at a time and in a storm. A real hub process (an
 * unhandled socket error exits a process, which an in-process hub would hide) and raw sockets.
 */
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import type net from 'node:net';
import { afterAll, beforeAll, beforeEach, describe, expect, it, vi } from 'vitest';
import { helloFrame } from '../helpers/sim-fleet.js';
import { hubClient, startHub as startHubProgram, stopProgram, type Proc } from '../helpers/processes.js';
import { connectRaw, helloOnce, holdHandshake, maskedTextFrame, readResponseHead, upgradeRequest, upgradeStatus } from '../helpers/raw-upgrade.js';

const BAD_CREDENTIAL = 'tnc_00000000-0000-0000-0000-000000000000.AAAAAAAAAAAAAAAAAAAAAAAA';

const hello = (name: string) => JSON.stringify(helloFrame(name));

describe('hub process under client socket faults', () => {
  let url = '';
  /** The hub's address: its port is chosen at its first start and kept by its restarts. */
  const target = { host: '127.0.0.1', port: 0 };
  let dir = '';
  let hub: Proc | undefined;
  let api: Awaited<ReturnType<typeof hubClient>>;
  let adminToken = '';

  const join = async (name: string): Promise<{ nodeId: string; credential: string }> => {
    const { body } = await api<{ token: string }>('POST', '/v1/join-tokens', {});
    const res = await fetch(`${url}/v1/join`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ joinToken: body.token, name }),
    });
    expect(res.status).toBe(201);
    return (await res.json()) as { nodeId: string; credential: string };
  };

  /** Writes `request` and resets the connection at once (RST, not FIN), before the hub answers. */
  const resetAfter = async (request: string, localAddress?: string) => {
    const socket = await connectRaw(target, localAddress);
    socket.write(request);
    socket.resetAndDestroy();
  };

  const expectHubUp = async () => {
    // A crash on a reset surfaces a moment later, when the error is emitted.
    await new Promise((r) => setTimeout(r, 300));
    expect(hub!.child.exitCode, hub!.output().slice(-3000)).toBeNull();
    expect((await fetch(`${url}/healthz`)).status).toBe(200);
  };

  /** What an agent does: upgrade with its credential, hello, and wait for the welcome. */
  const agentConnects = async (credential: string, name: string) => {
    expect(await helloOnce(target, credential, JSON.parse(hello(name)) as object)).toEqual({ welcomed: true });
  };

  const startHub = async () => {
    // One handshake slot, so that one held handshake is enough to reach the busy refusal.
    const args = ['--max-pending-handshakes', '1', '--log-level', 'warn'];
    const started = await startHubProgram({ dataDir: path.join(dir, 'hub'), args, port: target.port === 0 ? undefined : target.port });
    hub = started;
    url = started.url;
    target.port = started.port;
  };

  let holder: { nodeId: string; credential: string };
  let other: { nodeId: string; credential: string };

  beforeAll(async () => {
    dir = await mkdtemp(path.join(os.tmpdir(), 'tether-faults-'));
    await startHub();
    api = await hubClient(url, path.join(dir, 'hub'));
    adminToken = (await readFile(path.join(dir, 'hub', 'admin-token'), 'utf8')).trim();
    holder = await join('holder');
    other = await join('other');
  });

  // Each case on a live hub, so that each shows its own outcome.
  beforeEach(async () => {
    if (hub!.child.exitCode !== null || hub!.child.signalCode !== null) await startHub();
  });

  afterAll(async () => {
    await stopProgram(hub);
    await rm(dir, { recursive: true, force: true });
  });

  it('answers each refusal path with its status (the paths the resets below hit)', async () => {
    expect(await upgradeStatus(target, { path: '/nowhere' })).toBe(404);
    expect(await upgradeStatus(target, { credential: BAD_CREDENTIAL })).toBe(401);
    expect(await upgradeStatus(target, {})).toBe(401);
    const held = await holdHandshake(target, holder.credential);
    try {
      expect(await upgradeStatus(target, { credential: other.credential, localAddress: '127.0.0.2' })).toBe(503);
    } finally {
      held.destroy();
    }
  });

  it('stays up when a client resets right after an upgrade to an unknown path (404)', async () => {
    for (let i = 0; i < 5; i++) await resetAfter(upgradeRequest({ path: '/nowhere' }));
    await expectHubUp();
  });

  it('stays up when a client resets right after an upgrade with a bad or missing credential (401)', async () => {
    for (let i = 0; i < 5; i++) {
      await resetAfter(upgradeRequest({ credential: BAD_CREDENTIAL }));
      await resetAfter(upgradeRequest({}));
    }
    await expectHubUp();
  });

  it('stays up when a client resets right after an upgrade refused as busy (503)', async () => {
    const held = await holdHandshake(target, holder.credential);
    try {
      for (let i = 0; i < 5; i++) {
        await resetAfter(upgradeRequest({ credential: other.credential }), '127.0.0.2');
        await resetAfter(upgradeRequest({ credential: other.credential }), '127.0.0.1');
      }
      await expectHubUp();
    } finally {
      held.destroy();
    }
  });

  it('stays up when a client resets mid-handshake (after the 101, before hello) and frees the slot', async () => {
    for (let i = 0; i < 10; i++) {
      const socket = await vi.waitFor(() => holdHandshake(target, other.credential), { timeout: 5000, interval: 50 });
      socket.resetAndDestroy();
    }
    // Half a hello, then a reset.
    const socket = await vi.waitFor(() => holdHandshake(target, other.credential), { timeout: 5000, interval: 50 });
    socket.write(maskedTextFrame(hello('other')).subarray(0, 20));
    socket.resetAndDestroy();
    await expectHubUp();
    // The slot the reset handshakes held is free again: with one slot, an agent gets in.
    await vi.waitFor(() => agentConnects(other.credential, 'other'), { timeout: 5000, interval: 100 });
  });

  it('stays up when a client resets mid-request or while the hub answers over HTTP', async () => {
    for (let i = 0; i < 5; i++) {
      await resetAfter('GET /healthz HTTP/1.1\r\nHost: hub\r\n');
      await resetAfter(upgradeRequest({ credential: other.credential }).slice(0, 60));
      await resetAfter(`GET /v1/nodes HTTP/1.1\r\nHost: hub\r\nAuthorization: Bearer ${adminToken}\r\nConnection: keep-alive\r\n\r\n`);
      await resetAfter(`POST /v1/join HTTP/1.1\r\nHost: hub\r\nContent-Type: application/json\r\nContent-Length: 100000\r\n\r\n{"joinToken":`);
    }
    // A keep-alive connection that served one request, reset while idle.
    const socket = await connectRaw(target);
    socket.write('GET /healthz HTTP/1.1\r\nHost: hub\r\nConnection: keep-alive\r\n\r\n');
    expect((await readResponseHead(socket)).status).toBe(200);
    socket.resetAndDestroy();
    await expectHubUp();
  });

  it('stays up when a node resets while the hub writes it a large target', async () => {
    const node = await join('big');
    const socket = await vi.waitFor(() => holdHandshake(target, node.credential), { timeout: 5000, interval: 50 });
    let received = 0;
    socket.on('data', (chunk: Buffer) => {
      received += chunk.length;
      // Read the welcome, then stop reading so the target backs up in the hub's buffers.
      if (received > 0) socket.pause();
    });
    socket.write(maskedTextFrame(hello('big')));
    await vi.waitFor(async () => {
      const { body } = await api<{ state: string }>('GET', `/v1/nodes/${node.nodeId}`);
      expect(body.state).toBe('ready');
    }, { timeout: 10_000, interval: 100 });
    // About 800 KB of spec per replica: a target of several megabytes, more than the socket buffers hold.
    const env: Record<string, string> = {};
    for (let i = 0; i < 190; i++) env[`VAR_${i}`] = 'x'.repeat(4000);
    const put = await api('PUT', '/v1/services/big', { image: 'tether-test/busybox:1', replicas: 8, env });
    expect(put.status).toBe(201);
    await new Promise((r) => setTimeout(r, 1000));
    socket.resetAndDestroy();
    await expectHubUp();
    // The hub noticed the reset in the middle of its write and let the node go.
    await vi.waitFor(async () => {
      const { body } = await api<{ state: string }>('GET', `/v1/nodes/${node.nodeId}`);
      expect(body.state).toBe('unreachable');
    }, { timeout: 5_000, interval: 100 });
  });

  it('stays up through a storm of a few hundred resets across every path, then lets an agent in', async () => {
    const held = await holdHandshake(target, holder.credential);
    const storm: Promise<unknown>[] = [];
    for (let i = 0; i < 300; i++) {
      const from = i % 2 === 0 ? '127.0.0.1' : '127.0.0.2';
      switch (i % 5) {
        case 0:
          storm.push(resetAfter(upgradeRequest({ path: '/nowhere' }), from));
          break;
        case 1:
          storm.push(resetAfter(upgradeRequest({ credential: BAD_CREDENTIAL }), from));
          break;
        case 2:
          storm.push(resetAfter(upgradeRequest({ credential: other.credential }), from));
          break;
        case 3:
          storm.push(resetAfter(upgradeRequest({ credential: other.credential }).slice(0, 50), from));
          break;
        case 4:
          storm.push(holdHandshake(target, other.credential, from).then((s: net.Socket) => s.resetAndDestroy(), () => undefined));
          break;
      }
    }
    await Promise.allSettled(storm);
    held.destroy();
    await expectHubUp();
    await vi.waitFor(() => agentConnects(other.credential, 'other'), { timeout: 10_000, interval: 100 });
  });
});
