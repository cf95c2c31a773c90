/**
 * What the gateway keeps per connection once a node has said hello: the hub holds tens of
 * thousands of them, so the listeners it gives each socket and WebSocket are shared functions
 * (the connection's state lives in its session), never closures made per connection, and
 * nothing of the upgrade (its handshake slot, its close listener, the peer address read to admit
 * it) outlives the hello. Every socket keeps an error listener.
 */
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Duplex } from 'node:stream';
import WebSocket from 'ws';
import { afterEach, expect, it } from 'vitest';
import { AgentGateway } from '../../hub/agents/gateway.js';
import { AgentSocket } from '../../hub/agents/agent-socket.js';
import { AGENT_PATH } from '../../shared/protocol.js';
import { makeNodeCredential } from '../../hub/auth/secrets.js';
import type { FailureDetector } from '../../hub/failure-detector.js';
import type { Store } from '../../hub/store/store.js';
import { systemClock } from '../../shared/clock.js';
import { helloFrame } from '../helpers/sim-fleet.js';
import { silentLogger } from '../helpers/silent-logger.js';

let server: http.Server | null = null;
let gateway: AgentGateway | null = null;
const clients: WebSocket[] = [];

afterEach(async () => {
  for (const ws of clients.splice(0)) ws.terminate();
  await gateway?.close();
  await new Promise((r) => server?.close(r));
});

/** The server-side WebSocket ws keeps on the socket it took over. */
function webSocketOf(socket: Duplex): WebSocket {
  const key = Object.getOwnPropertySymbols(socket).find((s) => s.description === 'websocket');
  if (!key) throw new Error('socket was not taken over by ws');
  return (socket as unknown as Record<symbol, WebSocket>)[key]!;
}

const EVENTS = ['close', 'error', 'end', 'data', 'message', 'ping', 'pong', 'finish', 'drain', 'timeout'];

function listenersOf(emitter: NodeJS.EventEmitter): Record<string, Function[]> {
  const out: Record<string, Function[]> = {};
  for (const event of EVENTS) out[event] = emitter.rawListeners(event);
  return out;
}

it('gives every connection the same shared listeners after hello, and keeps an error listener on each socket', async () => {
  const nodes = new Map<string, { id: string; credentialHash: string; generation: number }>();
  const credentials: string[] = [];
  for (const id of ['node-a', 'node-b']) {
    const { credential, hash } = makeNodeCredential(id);
    nodes.set(id, { id, credentialHash: hash, generation: 0 });
    credentials.push(credential);
  }
  const detector = { connected: () => 0, seen: () => undefined, disconnected: () => undefined } as unknown as FailureDetector;
  gateway = new AgentGateway({
    store: { getNode: (id: string) => nodes.get(id) } as unknown as Store,
    clock: systemClock,
    detector,
    logger: silentLogger,
    heartbeatIntervalMs: 1000,
    maxPendingHandshakes: 8,
    handlers: { onHello: () => undefined, onStatus: () => undefined, onDisconnect: () => undefined },
  });
  server = http.createServer();
  // Registered before the gateway's: sees each raw socket the gateway is handed.
  const sockets: Duplex[] = [];
  server.on('upgrade', (_req, socket: Duplex) => sockets.push(socket));
  gateway.attach(server);
  await new Promise<void>((r) => server!.listen(0, '127.0.0.1', r));
  const port = (server.address() as AddressInfo).port;

  for (const credential of credentials) {
    const ws = new WebSocket(`ws://127.0.0.1:${port}${AGENT_PATH}`, { headers: { authorization: `Bearer ${credential}` } });
    clients.push(ws);
    ws.on('error', () => undefined);
    ws.once('open', () => ws.send(JSON.stringify(helloFrame('n'))));
    const first = await new Promise<{ type: string }>((resolve) => ws.once('message', (data) => resolve(JSON.parse(data.toString()))));
    expect(first.type).toBe('welcome');
  }
  expect(gateway.connectedCount).toBe(2);
  expect(gateway.pendingHandshakeCount).toBe(0);

  const [a, b] = sockets.map((socket) => ({ socket: listenersOf(socket), ws: listenersOf(webSocketOf(socket)) }));
  for (const side of ['socket', 'ws'] as const) {
    for (const event of EVENTS) {
      // The same functions, in the same order: nothing made for one connection alone.
      expect(a![side][event], `${side} '${event}' listeners`).toHaveLength(b![side][event]!.length);
      a![side][event]!.forEach((fn, i) => expect(fn, `${side} '${event}' listener ${i}`).toBe(b![side][event]![i]));
    }
    expect(a![side]['error']!.length, `${side} keeps an error listener`).toBeGreaterThan(0);
  }
  // The gateway's own message, close and error listeners on the WebSocket, besides ws's.
  expect(a!.ws['message']).toHaveLength(1);
  expect(a!.ws['close']).toHaveLength(1);
  // The session is the server's WebSocket itself, not an object beside it.
  expect(sockets.map((socket) => webSocketOf(socket))).toEqual([expect.any(AgentSocket), expect.any(AgentSocket)]);
  expect(sockets.map((socket) => (webSocketOf(socket) as unknown as AgentSocket).nodeId)).toEqual(['node-a', 'node-b']);
  // The peer address read for admission is not kept per connection, yet can still be read.
  for (const socket of sockets) {
    expect((socket as Duplex & { _peername?: unknown })._peername, 'cached peer address').toBeFalsy();
    expect((socket as import('node:net').Socket).remoteAddress).toBe('127.0.0.1');
  }
});
