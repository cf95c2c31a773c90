/**
 * The CLI's client against a hub that takes the connection and never answers: a streamed request
 * (logs, events -f) fails after the idle timeout instead of hanging a script for good; once the
 * answer has started, the stream has no timeout (a followed stream may be quiet for hours).
 */
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { HubClient } from '../../cli/client.js';

describe('HubClient.open', () => {
  let server: http.Server;
  let hub: URL;
  beforeAll(async () => {
    server = http.createServer((request, response) => {
      if (request.url?.startsWith('/silent')) return; // takes the request, never answers
      response.writeHead(200, { 'content-type': 'text/event-stream' });
      response.flushHeaders(); // and then nothing, as a quiet followed stream
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    hub = new URL(`http://127.0.0.1:${(server.address() as AddressInfo).port}`);
  });
  afterAll(async () => {
    server.closeAllConnections();
    await new Promise<void>((resolve) => server.close(() => resolve()));
  });

  const client = () => HubClient.connect({ hub, token: 't', trust: { kind: 'system' } }, undefined, 200);

  it('fails a stream whose answer never starts, in one line naming the hub', async () => {
    await expect((await client()).open('/silent', {}, 'text/event-stream')).rejects.toThrow(`cannot reach the hub at ${hub.origin}: no answer within 0.2 s`);
  });

  it('keeps no timeout on a stream once its answer has started', async () => {
    const response = await (await client()).open('/quiet', {}, 'text/event-stream');
    try {
      expect(response.statusCode).toBe(200);
      expect(response.socket.timeout ?? 0).toBe(0);
    } finally {
      response.destroy();
    }
  });
});
