import http from 'node:http';
import net from 'node:net';
import type { AddressInfo } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { probeHttp } from '../../agent/health/http-probe.js';
import { probeTcp } from '../../agent/health/tcp-probe.js';
import { HEALTH_OUTPUT_MAX_LENGTH } from '../../shared/container-spec.js';

const servers: Array<http.Server | net.Server> = [];
afterEach(async () => {
  await Promise.all(servers.splice(0).map((s) => new Promise<void>((resolve) => s.close(() => resolve()))));
});

async function listen<T extends http.Server | net.Server>(server: T): Promise<number> {
  servers.push(server);
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', () => resolve()));
  return (server.address() as AddressInfo).port;
}

/** A port nothing listens on: one that was just closed. */
async function closedPort(): Promise<number> {
  const s = net.createServer();
  await new Promise<void>((resolve) => s.listen(0, '127.0.0.1', () => resolve()));
  const port = (s.address() as AddressInfo).port;
  await new Promise<void>((resolve) => s.close(() => resolve()));
  return port;
}

const http200to399 = { host: '127.0.0.1', path: '/', statusMin: 200, statusMax: 399, timeoutMs: 2_000 };

describe('http probe', () => {
  it('passes on a status within the range, and asks the path of the check', async () => {
    const paths: string[] = [];
    const port = await listen(
      http.createServer((req, res) => {
        paths.push(req.url ?? '');
        res.writeHead(req.url === '/healthz' ? 200 : 404).end('nope');
      }),
    );
    expect(await probeHttp({ ...http200to399, port, path: '/healthz' })).toEqual({ ok: true });
    expect(paths).toEqual(['/healthz']);
    const missing = await probeHttp({ ...http200to399, port, path: '/missing' });
    expect(missing).toEqual({ ok: false, output: 'GET /missing: HTTP 404 Not Found: nope' });
  });

  it('fails on a 500 with the status and the start of the body, read no further than a bound', async () => {
    const port = await listen(http.createServer((_req, res) => res.writeHead(500).end('x'.repeat(1024 * 1024))));
    const result = await probeHttp({ ...http200to399, port });
    expect(result.ok).toBe(false);
    const output = (result as { output: string }).output;
    expect(output).toMatch(/^GET \/: HTTP 500 Internal Server Error: x+$/);
    expect(output.length).toBeLessThanOrEqual(HEALTH_OUTPUT_MAX_LENGTH);
  });

  it('honours a custom status range', async () => {
    const port = await listen(http.createServer((_req, res) => res.writeHead(503).end()));
    expect(await probeHttp({ ...http200to399, port, statusMin: 500, statusMax: 503 })).toEqual({ ok: true });
    expect(await probeHttp({ ...http200to399, port })).toEqual({ ok: false, output: 'GET /: HTTP 503 Service Unavailable' });
  });

  it('fails within its timeout on a server that never answers, and leaves no socket open', async () => {
    const sockets = new Set<net.Socket>();
    const server = http.createServer(() => undefined);
    server.on('connection', (s) => {
      sockets.add(s);
      s.on('close', () => sockets.delete(s));
    });
    const port = await listen(server);
    const result = await probeHttp({ ...http200to399, port, timeoutMs: 200 });
    expect(result).toEqual({ ok: false, output: 'GET /: no answer within 200 ms' });
    await expect.poll(() => sockets.size, { timeout: 2_000 }).toBe(0);
  });

  it('fails on a refused port with the connection error', async () => {
    const port = await closedPort();
    const result = await probeHttp({ ...http200to399, port });
    expect(result).toEqual({ ok: false, output: expect.stringContaining('ECONNREFUSED') });
  });

  it('fails on a path node:http refuses, without throwing', async () => {
    const port = await closedPort();
    const result = await probeHttp({ ...http200to399, port, path: '/a b' });
    expect(result).toEqual({ ok: false, output: expect.stringContaining('GET /a b:') });
  });
});

describe('tcp probe', () => {
  it('passes when a connection opens', async () => {
    const port = await listen(net.createServer((s) => s.end()));
    expect(await probeTcp({ host: '127.0.0.1', port, timeoutMs: 2_000 })).toEqual({ ok: true });
  });

  it('fails on a refused port with the connection error', async () => {
    const port = await closedPort();
    expect(await probeTcp({ host: '127.0.0.1', port, timeoutMs: 2_000 })).toEqual({ ok: false, output: expect.stringContaining('ECONNREFUSED') });
  });
});
