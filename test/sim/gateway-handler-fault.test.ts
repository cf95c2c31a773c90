/**
 * A fault in the hub's handling of one node's frame closes that node's connection and nothing
 * else: the gateway over a real socket, with handlers that throw.
 */
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import WebSocket from 'ws';
import { afterEach, expect, it } from 'vitest';
import { AgentGateway } from '../../hub/agents/gateway.js';
import { AGENT_PATH } from '../../shared/protocol.js';
import { makeNodeCredential } from '../../hub/auth/secrets.js';
import type { FailureDetector } from '../../hub/failure-detector.js';
import type { Store } from '../../hub/store/store.js';
import { systemClock } from '../../shared/clock.js';
import { helloFrame } from '../helpers/sim-fleet.js';
import { silentLogger } from '../helpers/silent-logger.js';

let server: http.Server | null = null;
let gateway: AgentGateway | null = null;

afterEach(async () => {
  await gateway?.close();
  await new Promise((r) => server?.close(r));
});

it('closes the connection with 1011 when handling a frame throws, and keeps serving other nodes', async () => {
  const nodes = new Map<string, { id: string; credentialHash: string }>();
  const credentials: string[] = [];
  for (const id of ['node-a', 'node-b']) {
    const { credential, hash } = makeNodeCredential(id);
    nodes.set(id, { id, credentialHash: hash });
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
    handlers: {
      onHello: (nodeId) => {
        if (nodeId === 'node-a') throw new Error('a broken invariant');
      },
      onStatus: () => undefined,
      onDisconnect: () => undefined,
    },
  });
  server = http.createServer();
  gateway.attach(server);
  await new Promise<void>((r) => server!.listen(0, '127.0.0.1', r));
  const port = (server.address() as AddressInfo).port;

  const connect = (credential: string) => {
    const ws = new WebSocket(`ws://127.0.0.1:${port}${AGENT_PATH}`, { headers: { authorization: `Bearer ${credential}` } });
    ws.on('error', () => undefined);
    ws.once('open', () =>
      ws.send(JSON.stringify(helloFrame('n'))),
    );
    return ws;
  };
  const faulty = connect(credentials[0]!);
  const closed = await new Promise<number>((resolve) => faulty.once('close', (code) => resolve(code)));
  expect(closed).toBe(1011);

  const healthy = connect(credentials[1]!);
  const first = await new Promise<{ type: string }>((resolve) => healthy.once('message', (data) => resolve(JSON.parse(data.toString()))));
  expect(first.type).toBe('welcome');
  expect(gateway.connectedCount).toBe(1);
  healthy.terminate();
});
