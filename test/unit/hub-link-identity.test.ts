/**
 * HubLink and the node's identity, against hub stand-ins: which refusals are final (a removal)
 * and which are not, and how a new credential is taken (acknowledged only once it is kept).
 */
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { WebSocketServer, type WebSocket } from 'ws';
import { HubLink, type HubLinkOptions } from '../../agent/hub-link.js';
import { encodeFrame } from '../../shared/codec.js';
import { CloseCode, PROTOCOL_VERSION } from '../../shared/protocol.js';
import { simFacts } from '../helpers/sim-fleet.js';
import { silentLogger } from '../helpers/silent-logger.js';

let server: http.Server | null = null;
let link: HubLink | null = null;
afterEach(async () => {
  await link?.stop();
  link = null;
  await new Promise<void>((resolve) => (server ? server.close(() => resolve()) : resolve()));
  server = null;
});

async function listen(onUpgrade: (req: http.IncomingMessage, socket: import('node:stream').Duplex, head: Buffer) => void): Promise<string> {
  server = http.createServer();
  server.on('upgrade', (req, socket, head) => {
    socket.on('error', () => undefined);
    onUpgrade(req, socket, head);
  });
  await new Promise<void>((resolve) => server!.listen(0, '127.0.0.1', resolve));
  return `http://127.0.0.1:${(server!.address() as AddressInfo).port}`;
}

/** A hub that answers every upgrade with 401 and this JSON error. */
async function refusingHub(error: { code: string; message: string }): Promise<{ url: string; attempts: () => number }> {
  let attempts = 0;
  const url = await listen((_req, socket) => {
    attempts++;
    const body = JSON.stringify({ error });
    socket.end(`HTTP/1.1 401 Unauthorized\r\nContent-Type: application/json\r\nContent-Length: ${Buffer.byteLength(body)}\r\nConnection: close\r\n\r\n${body}`);
  });
  return { url, attempts: () => attempts };
}

function startLink(url: string, opts: Partial<HubLinkOptions> = {}): HubLink {
  link = new HubLink({
    hubUrl: url,
    credential: 'tnc_node-1.aaaaaaaaaaaaaaaaaaaa',
    logger: silentLogger,
    hello: () => ({ type: 'hello', protocolVersion: PROTOCOL_VERSION, name: 'n', labels: {}, advertiseAddress: null, facts: simFacts(), appliedGeneration: 0, replicas: [] }),
    onTarget: () => undefined,
    reconnectBaseMs: 20,
    reconnectCapMs: 50,
    ...opts,
  });
  link.start();
  return link;
}

describe('HubLink refusals', () => {
  it('keeps trying after a 401 that does not say the node was removed', async () => {
    const hub = await refusingHub({ code: 'unauthorized', message: 'unknown or invalid node credential' });
    const removed = vi.fn();
    startLink(hub.url, { onRemoved: removed });
    await vi.waitFor(() => expect(hub.attempts()).toBeGreaterThanOrEqual(3), { timeout: 5_000, interval: 20 });
    expect(removed).not.toHaveBeenCalled();
  });

  it('stops for good after a 401 saying the node was removed, and says so once', async () => {
    const hub = await refusingHub({ code: 'node_removed', message: 'node removed by the operator at 2026-01-01T00:00:00.000Z' });
    const removed = vi.fn();
    const l = startLink(hub.url, { onRemoved: removed });
    await vi.waitFor(() => expect(removed).toHaveBeenCalledTimes(1), { timeout: 5_000, interval: 20 });
    expect(removed.mock.calls[0]![0]).toMatch(/removed by the operator/);
    await new Promise((r) => setTimeout(r, 300));
    expect(hub.attempts()).toBe(1);
    expect(l.nodeRemoved).toBe(true);
  });

  it('stops for good after a nodeRemoved close', async () => {
    let connections = 0;
    const wss = new WebSocketServer({ noServer: true });
    const url = await listen((req, socket, head) =>
      wss.handleUpgrade(req, socket, head, (ws) => {
        connections++;
        ws.once('message', () => {
          ws.send(encodeFrame({ type: 'welcome', protocolVersion: PROTOCOL_VERSION, nodeId: 'node-1', heartbeatIntervalMs: 1000 }));
          setTimeout(() => ws.close(CloseCode.nodeRemoved, 'node removed by the operator'), 50);
        });
      }),
    );
    const removed = vi.fn();
    const l = startLink(url, { onRemoved: removed });
    await vi.waitFor(() => expect(removed).toHaveBeenCalledTimes(1), { timeout: 5_000, interval: 20 });
    await new Promise((r) => setTimeout(r, 300));
    expect(connections).toBe(1);
    expect(l.connected).toBe(false);
    wss.close();
  });
});

describe('HubLink taking a new credential', () => {
  it('acknowledges only a credential it kept, may take another after a failed write, and connects with it', async () => {
    const wss = new WebSocketServer({ noServer: true });
    const used: string[] = [];
    const saved: string[] = [];
    let first: WebSocket | null = null;
    const url = await listen((req, socket, head) =>
      wss.handleUpgrade(req, socket, head, (ws) => {
        used.push(req.headers.authorization ?? '');
        first ??= ws;
        ws.on('message', (data) => {
          const frame = JSON.parse(data.toString()) as { type: string; rotation?: string };
          if (frame.type === 'hello') ws.send(encodeFrame({ type: 'welcome', protocolVersion: PROTOCOL_VERSION, nodeId: 'node-1', heartbeatIntervalMs: 1000 }));
          if (frame.type === 'credentialSaved') saved.push(frame.rotation!);
        });
      }),
    );
    let writes = 0;
    const kept: string[] = [];
    const l = startLink(url, {
      onCredential: async (frame) => {
        if (++writes === 1) throw new Error('disk full');
        kept.push(frame.credential);
      },
    });
    await vi.waitFor(() => expect(l.connected).toBe(true), { timeout: 5_000, interval: 20 });
    const send = (rotation: string, credential: string) => first!.send(encodeFrame({ type: 'credential', rotation, credential }));
    send('r1', 'tnc_node-1.bbbbbbbbbbbbbbbbbbbb');
    await new Promise((r) => setTimeout(r, 200));
    expect(saved).toEqual([]);
    expect(used).toHaveLength(1);
    send('r2', 'tnc_node-1.cccccccccccccccccccc');
    await vi.waitFor(() => expect(used).toHaveLength(2), { timeout: 5_000, interval: 20 });
    expect(saved).toEqual(['r2']);
    expect(kept).toEqual(['tnc_node-1.cccccccccccccccccccc']);
    expect(used[1]).toBe('Bearer tnc_node-1.cccccccccccccccccccc');
    wss.close();
  });
});
