/**
 * The limits a request meets before any route: headers (Node's 16 KiB, on the API and the agent
 * upgrade alike) and bodies (1 MiB). Each is a clear refusal of that request, and the hub goes on.
 */
import type { FastifyInstance } from 'fastify';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { listeningHub } from '../helpers/api-hub.js';
import { connectRaw, readResponseHead, upgradeRequest, type HubAddress } from '../helpers/raw-upgrade.js';

const ADMIN = 'admin-token-for-request-limits';
let app: FastifyInstance;
let address: HubAddress;
let close: () => Promise<void>;

beforeAll(async () => {
  ({ app, address, close } = await listeningHub('tether-request-limits-', { adminToken: ADMIN }));
});

afterAll(() => close());

async function statusOf(request: string): Promise<number> {
  const socket = await connectRaw(address);
  try {
    socket.write(request);
    return (await readResponseHead(socket)).status;
  } finally {
    socket.destroy();
  }
}

const bigHeader = `X-Padding: ${'a'.repeat(20 * 1024)}\r\n`;

describe('request limits', () => {
  it('refuses headers over 16 KiB with 431, at the API and at the agent upgrade, and goes on', async () => {
    expect(await statusOf(`GET /healthz HTTP/1.1\r\nHost: hub\r\n${bigHeader}\r\n`)).toBe(431);
    const upgrade = upgradeRequest({ credential: 'tnc_x.y' }).replace(/\r\n\r\n$/, `\r\n${bigHeader}\r\n`);
    expect(await statusOf(upgrade)).toBe(431);
    expect(await statusOf('GET /healthz HTTP/1.1\r\nHost: hub\r\nConnection: close\r\n\r\n')).toBe(200);
  });

  it('refuses a body over 1 MiB with 413 in the API error shape, and goes on', async () => {
    const payload = JSON.stringify({ image: 'busybox:1', replicas: 1, env: { PAD: 'a'.repeat(1024 * 1024) } });
    const res = await app.inject({ method: 'PUT', url: '/v1/services/web', headers: { authorization: `Bearer ${ADMIN}`, 'content-type': 'application/json' }, payload });
    expect(res.statusCode).toBe(413);
    expect(res.json().error.code).toMatch(/too_large/);
    const small = await app.inject({ method: 'GET', url: '/v1/services', headers: { authorization: `Bearer ${ADMIN}` } });
    expect(small.statusCode).toBe(200);
  });
});
