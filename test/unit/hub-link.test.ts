import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { HubLink } from '../../agent/hub-link.js';
import { JoinRefusedError, joinHub } from '../../agent/node-identity.js';
import { PROTOCOL_VERSION } from '../../shared/protocol.js';
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

/** A hub stand-in that answers every agent upgrade with 503 and the given Retry-After. */
async function busyHub(retryAfter: string | null): Promise<{ url: string; attempts: number[] }> {
  const attempts: number[] = [];
  server = http.createServer();
  server.on('upgrade', (_req, socket) => {
    attempts.push(performance.now());
    socket.end(`HTTP/1.1 503 Service Unavailable\r\n${retryAfter === null ? '' : `Retry-After: ${retryAfter}\r\n`}Content-Length: 0\r\nConnection: close\r\n\r\n`);
  });
  await new Promise<void>((resolve) => server!.listen(0, '127.0.0.1', resolve));
  return { url: `http://127.0.0.1:${(server!.address() as AddressInfo).port}`, attempts };
}

function startLink(url: string): void {
  link = new HubLink({
    hubUrl: url,
    credential: 'tnc_x.y',
    logger: silentLogger,
    hello: () => ({ type: 'hello', protocolVersion: PROTOCOL_VERSION, name: 'n', labels: {}, advertiseAddress: null, facts: simFacts(), appliedGeneration: 0, replicas: [] }),
    onTarget: () => undefined,
    // Without Retry-After the agent would come back within 100 ms every time.
    reconnectBaseMs: 50,
    reconnectCapMs: 100,
  });
  link.start();
}

describe('HubLink against a busy hub', () => {
  it('waits out a Retry-After (jittered to 0.5-1.5x) instead of its own short backoff', async () => {
    const hub = await busyHub('2');
    startLink(hub.url);
    await new Promise((r) => setTimeout(r, 900));
    expect(hub.attempts).toHaveLength(1);
  });

  it('backs off on its own when the 503 carries no Retry-After', async () => {
    const hub = await busyHub(null);
    startLink(hub.url);
    await new Promise((r) => setTimeout(r, 900));
    expect(hub.attempts.length).toBeGreaterThanOrEqual(4);
  });
});

describe('joinHub', () => {
  it('refuses a hub address that redirects, naming where to', async () => {
    server = http.createServer((_req, res) => res.writeHead(307, { location: 'https://hub.example/v1/join' }).end());
    await new Promise<void>((resolve) => server!.listen(0, '127.0.0.1', resolve));
    const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
    const joining = joinHub(url, 'tjt_x', 'n', {});
    await expect(joining).rejects.toBeInstanceOf(JoinRefusedError);
    await expect(joining).rejects.toThrow(/redirects \(HTTP 307\) to https:\/\/hub\.example\/v1\/join/);
  });
});
