/**
 * DockerRuntime tells whoever watches when a call fails for want of an engine (no socket, no
 * answer in time), and only then: an engine that answers, even with an error, is there.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import http from 'node:http';
import os from 'node:os';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { EngineAvailability } from '../../agent/engine-availability.js';
import { DockerRuntime } from '../../agent/runtime/docker-runtime.js';

const DEADLINES = { queryMs: 200, pingMs: 200 };

let dir = '';
let server: http.Server | null = null;

beforeEach(async () => {
  dir = await mkdtemp(path.join(os.tmpdir(), 'tether-engine-away-'));
});

afterEach(async () => {
  server?.closeAllConnections();
  await new Promise<void>((resolve) => (server ? server.close(() => resolve()) : resolve()));
  server = null;
  await rm(dir, { recursive: true, force: true });
});

/** An engine on a socket in dir: routes answer, anything else hangs. */
async function engine(routes: Record<string, (res: http.ServerResponse) => void>): Promise<string> {
  const socketPath = path.join(dir, 'engine.sock');
  server = http.createServer((req, res) => {
    req.resume();
    routes[`${req.method} ${new URL(req.url ?? '/', 'http://engine').pathname}`]?.(res);
  });
  await new Promise<void>((resolve) => server!.listen(socketPath, resolve));
  return socketPath;
}

function watched(socketPath: string): { runtime: DockerRuntime; told: Error[] } {
  const runtime = new DockerRuntime({ socketPath, deadlines: DEADLINES });
  const told: Error[] = [];
  runtime.onUnreachable((error) => told.push(error));
  return { runtime, told };
}

describe('DockerRuntime engine availability', () => {
  it('a call with no engine on the socket is told as unreachable, and the ping fails', async () => {
    const { runtime, told } = watched(path.join(dir, 'missing.sock'));
    await expect(runtime.listContainers('n1')).rejects.toThrow(/list containers: .*ENOENT/);
    await expect(runtime.ping()).rejects.toThrow(/docker ping: .*ENOENT/);
    expect(told.map((e) => (e as NodeJS.ErrnoException).code)).toEqual(['ENOENT', 'ENOENT']);
  });

  it('a call the engine never answers is told as unreachable', async () => {
    const { runtime, told } = watched(await engine({}));
    await expect(runtime.ping()).rejects.toMatchObject({ code: 'engine_timeout' });
    expect(told).toHaveLength(1);
  });

  it('an event stream that breaks is told, so the engine is checked before the stream reconnects', async () => {
    const socketPath = await engine({
      'GET /events': (res) => {
        res.writeHead(200, { 'Content-Type': 'application/json' });
        res.flushHeaders();
        setTimeout(() => res.destroy(), 50);
      },
    });
    const { runtime, told } = watched(socketPath);
    const unwatch = runtime.watchEvents('n1', () => {});
    try {
      await vi.waitFor(() => expect(told[0]?.message).toMatch(/^docker event stream ended/), { timeout: 2_000, interval: 10 });
    } finally {
      unwatch();
    }
  });

  it('an event stream the engine ends at once while its pings answer reconnects with its backoff, not in a loop', async () => {
    let streams = 0;
    const socketPath = await engine({
      'GET /_ping': (res) => res.end('OK'),
      'GET /events': (res) => {
        streams++;
        res.writeHead(200, { 'Content-Type': 'application/json' });
        res.end();
      },
    });
    const runtime = new DockerRuntime({ socketPath, deadlines: DEADLINES });
    const monitor = new EngineAvailability({ probe: runtime, logger: { info() {}, warn() {} }, onChange() {}, checkIntervalMs: 60_000 });
    await monitor.start();
    let resyncs = 0;
    const unwatch = runtime.watchEvents('n1', (e) => void (e.action === 'resync' && resyncs++));
    try {
      await new Promise((resolve) => setTimeout(resolve, 1_500));
    } finally {
      unwatch();
      monitor.stop();
    }
    // Delays from up to 250 ms, doubling: a handful of streams in 1.5 s (it was hundreds).
    expect(streams).toBeGreaterThanOrEqual(1);
    expect(streams).toBeLessThan(20);
    expect(resyncs).toBe(streams);
  });

  it('the ping of a quiet event stream has the ping deadline, not that of a query', async () => {
    let streams = 0;
    const socketPath = await engine({
      'GET /events': (res) => {
        streams++;
        res.writeHead(200, { 'Content-Type': 'application/json' });
        res.flushHeaders();
      },
      // The ping hangs: a hung engine.
    });
    const runtime = new DockerRuntime({ socketPath, deadlines: { queryMs: 60_000, pingMs: 100, eventsIdleMs: 100 } });
    const unwatch = runtime.watchEvents('n1', () => {});
    try {
      await vi.waitFor(() => expect(streams).toBeGreaterThanOrEqual(2), { timeout: 5_000, interval: 20 });
    } finally {
      unwatch();
    }
  });

  it('an engine that answers, even with an error, is not told as unreachable', async () => {
    const socketPath = await engine({
      'GET /_ping': (res) => res.end('OK'),
      'POST /containers/abc/start': (res) => {
        res.writeHead(500, { 'Content-Type': 'application/json' });
        res.end('{"message":"driver failed"}');
      },
      'GET /info': (res) => {
        res.writeHead(200, { 'Content-Type': 'application/json' });
        res.end('{"DockerRootDir":"/srv/docker"}');
      },
    });
    const { runtime, told } = watched(socketPath);
    await runtime.ping();
    await expect(runtime.startContainer('abc')).rejects.toThrow(/driver failed/);
    expect(await runtime.storageDir()).toBe('/srv/docker');
    expect(told).toEqual([]);
  });
});
