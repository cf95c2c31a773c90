/**
 * The logs route against clients that do not read a whole answer: a HEAD, and a client gone while
 * its request was being checked. Neither may open a stream on an agent: a stream nobody reads
 * would hold one of the node's few log streams (and its link's bandwidth) until the node reconnects.
 */
import http from 'node:http';
import net from 'node:net';
import type { AddressInfo } from 'node:net';
import Fastify, { type FastifyInstance } from 'fastify';
import { afterEach, describe, expect, it } from 'vitest';
import type { AgentLogsSink } from '../../hub/agents/gateway.js';
import { logRoutes } from '../../hub/http/logs.js';
import { LogRelay } from '../../hub/logs/log-relay.js';
import type { ServiceRecord } from '../../hub/store/store.js';
import type { HubLogsFrame } from '../../shared/protocol.js';

const service = {
  name: 'web',
  placements: [{ replicaId: 'web-1', nodeId: 'n1', pendingReason: null }],
} as unknown as ServiceRecord;

async function setup(beforeHandler?: (request: http.IncomingMessage) => Promise<void>, record: ServiceRecord = service) {
  const sent: HubLogsFrame[] = [];
  let serviceRead: () => void = () => undefined;
  const handled = new Promise<void>((resolve) => {
    serviceRead = resolve;
  });
  const relay = new LogRelay({
    send: (_nodeId: string, frame: HubLogsFrame) => {
      sent.push(frame);
      return true;
    },
    attachLogs: (_sink: AgentLogsSink) => undefined,
  });
  const app = Fastify();
  if (beforeHandler) app.addHook('preHandler', async (request) => beforeHandler(request.raw));
  await app.register(logRoutes, {
    relay,
    services: {
      get: (name: string) => {
        serviceRead();
        return name === record.name ? record : undefined;
      },
    },
    agents: { protocolVersion: () => 8 },
  });
  await app.listen({ port: 0, host: '127.0.0.1' });
  apps.push(app);
  const port = (app.server.address() as AddressInfo).port;
  return { app, relay, sent, port, handled };
}

const apps: FastifyInstance[] = [];
afterEach(async () => {
  for (const app of apps.splice(0)) await app.close();
});

/** After the handler's synchronous part (everything from the service's lookup on) has run. */
const afterHandler = (handled: Promise<void>) => handled.then(() => new Promise<void>((resolve) => setImmediate(resolve)));

describe('GET /v1/services/:name/logs and clients that do not read', () => {
  it('answers a HEAD with the headers only, and asks no agent for logs', async () => {
    const t = await setup();
    const res = await new Promise<http.IncomingMessage>((resolve, reject) => {
      const req = http.request({ host: '127.0.0.1', port: t.port, method: 'HEAD', path: '/v1/services/web/logs?follow=1', agent: false }, resolve);
      req.on('error', reject);
      req.end();
    });
    res.resume();
    res.destroy();
    expect(res.statusCode).toBe(200);
    expect(res.headers['content-type']).toMatch(/^application\/x-ndjson/);
    await afterHandler(t.handled);
    expect(t.sent).toEqual([]);
    expect(t.relay.stats()).toMatchObject({ streams: 0, requests: 0 });
  });

  it('opens no stream for a client gone while its request was checked', async () => {
    let entered: () => void = () => undefined;
    const inHook = new Promise<void>((resolve) => {
      entered = resolve;
    });
    // An authentication that takes a while (a failed one is slowed down): the client leaves meanwhile.
    const t = await setup(async (request) => {
      entered();
      const socket = request.socket;
      if (!socket.destroyed) await new Promise((resolve) => socket.once('close', resolve));
    });
    const client = net.connect(t.port, '127.0.0.1');
    client.on('error', () => undefined);
    client.write('GET /v1/services/web/logs?follow=1 HTTP/1.1\r\nHost: hub\r\n\r\n');
    await inHook;
    client.destroy();
    await afterHandler(t.handled);
    expect(t.relay.stats()).toMatchObject({ streams: 0, requests: 0 });
    expect(t.sent.filter((f) => f.type === 'logs.open')).toEqual([]);
  });

  it('bounds the lines for replicas that cannot be read, whatever the size of the service', async () => {
    // A large service mostly pending: a line each would be megabytes, written at once whether or not the client reads.
    const placements = Array.from({ length: 5000 }, (_, i) => ({ replicaId: `big-${i}`, nodeId: null, pendingReason: 'no node fits' }));
    const t = await setup(undefined, { name: 'big', placements } as unknown as ServiceRecord);
    const res = await t.app.inject({ method: 'GET', url: '/v1/services/big/logs' });
    expect(res.statusCode).toBe(200);
    const lines = res.body.split('\n').filter(Boolean).map((l) => JSON.parse(l) as { replica: string | null; error: string });
    expect(lines.length).toBeLessThanOrEqual(101);
    expect(lines[0]).toEqual({ replica: 'big-0', node: null, error: 'not placed on any node: no node fits' });
    expect(lines.at(-1)).toEqual({ replica: null, node: null, error: expect.stringMatching(/^4900 more replicas cannot be read/) });
  });
});
