/**
 * DockerRuntime against a fake engine on a unix socket: one that accepts a request and never
 * answers, a pull whose progress stalls, an event stream whose engine clock is far behind ours.
 * The runtime must never hang on the engine, and the device clock must not decide which events count.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import http from 'node:http';
import type { ServerResponse } from 'node:http';
import os from 'node:os';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { LABELS, type RuntimeEvent } from '../../agent/runtime/container-runtime.js';
import { DockerRuntime } from '../../agent/runtime/docker-runtime.js';
import { containerSpec } from '../helpers/container-spec.js';

const NODE = 'node-d';
const ID = 'd'.repeat(64);
const DEADLINES = { queryMs: 200, pingMs: 200, createMs: 200, startMs: 200, stopMarginMs: 200, removeMs: 200, pullStallMs: 300, eventsIdleMs: 300 };

type Route = (res: ServerResponse, url: URL) => void;

/** An engine that answers the routes a test gives it and hangs on every other request. */
class FakeEngine {
  readonly routes = new Map<string, Route>();
  readonly requests: string[] = [];
  /** Requests left hanging, ended at close so the server can stop. */
  readonly hanging = new Set<ServerResponse>();
  private server: http.Server | null = null;
  socketPath = '';

  async listen(dir: string): Promise<void> {
    this.socketPath = path.join(dir, 'engine.sock');
    this.server = http.createServer((req, res) => {
      const url = new URL(req.url ?? '/', 'http://engine');
      const key = `${req.method} ${url.pathname}`;
      this.requests.push(key);
      req.resume();
      const route = this.routes.get(key);
      this.hanging.add(res);
      res.on('close', () => this.hanging.delete(res));
      if (route) route(res, url);
    });
    await new Promise<void>((resolve) => this.server!.listen(this.socketPath, resolve));
  }

  count(key: string): number {
    return this.requests.filter((r) => r === key).length;
  }

  async close(): Promise<void> {
    for (const res of this.hanging) res.destroy();
    this.server?.closeAllConnections();
    await new Promise<void>((resolve) => (this.server ? this.server.close(() => resolve()) : resolve()));
  }
}

function json(res: ServerResponse, status: number, body: unknown): void {
  res.writeHead(status, { 'Content-Type': 'application/json' });
  res.end(JSON.stringify(body));
}

/** An event stream's head: the engine sends its headers at once, then lines as things happen. */
function openStream(res: ServerResponse): void {
  res.writeHead(200, { 'Content-Type': 'application/json' });
  res.flushHeaders();
}

function eventLine(action: string, timeS: number): string {
  return `${JSON.stringify({ Type: 'container', Action: action, Actor: { ID, Attributes: {} }, time: timeS, timeNano: timeS * 1e9 })}\n`;
}

let dir = '';
let engine: FakeEngine;
let runtime: DockerRuntime;
const timers: NodeJS.Timeout[] = [];

beforeEach(async () => {
  dir = await mkdtemp(path.join(os.tmpdir(), 'tether-fake-engine-'));
  engine = new FakeEngine();
  await engine.listen(dir);
  runtime = new DockerRuntime({ socketPath: engine.socketPath, deadlines: DEADLINES });
});

afterEach(async () => {
  for (const t of timers.splice(0)) clearInterval(t);
  await engine.close();
  await rm(dir, { recursive: true, force: true });
});

describe('DockerRuntime on an engine that does not answer', () => {
  it('a hung list, inspect, start, create, stop, remove or version rejects with engine_timeout naming the call', async () => {
    const labels = { [LABELS.managed]: 'true', [LABELS.nodeId]: NODE, [LABELS.service]: 'web', [LABELS.replicaId]: 'r1', [LABELS.specHash]: 'abcdef0123456789' };
    await expect(runtime.listContainers(NODE)).rejects.toMatchObject({ code: 'engine_timeout', message: expect.stringMatching(/^list containers: /) });
    await expect(runtime.version()).rejects.toMatchObject({ code: 'engine_timeout', message: expect.stringMatching(/^docker version: /) });
    const create = { nodeId: NODE, replicaId: 'r1', service: 'web', specHash: 'abcdef0123456789', name: 'tether-node-d-r1', spec: containerSpec('busybox:1'), publishAddress: null };
    await expect(runtime.createContainer(create)).rejects.toMatchObject({ code: 'engine_timeout', message: expect.stringMatching(/^create container tether-node-d-r1: /) });
    await expect(runtime.startContainer(ID)).rejects.toMatchObject({ code: 'engine_timeout', message: expect.stringMatching(/^start container d{12}: /) });
    await expect(runtime.stopContainer(ID, 0)).rejects.toMatchObject({ code: 'engine_timeout', message: expect.stringMatching(/^stop container d{12}: /) });
    await expect(runtime.removeContainer(ID)).rejects.toMatchObject({ code: 'engine_timeout' });
    await expect(runtime.hasImage('busybox:1')).rejects.toMatchObject({ code: 'engine_timeout' });

    // An answer that starts and never finishes is abandoned as well.
    engine.routes.set('GET /version', (res) => {
      openStream(res);
      res.write('{"Version":');
    });
    await expect(runtime.version()).rejects.toMatchObject({ code: 'engine_timeout' });

    // The listing answers, the inspect hangs: the container is shown with the timeout as its error.
    engine.routes.set('GET /containers/json', (res) => json(res, 200, [{ Id: ID, Names: ['/c'], State: 'running', Labels: labels }]));
    const [listed] = await runtime.listContainers(NODE);
    expect(listed).toMatchObject({ id: ID, state: 'running', restartCount: null, error: expect.stringMatching(/did not answer/) });
    // Every hung request was abandoned: the engine saw its connection close.
    await vi.waitFor(() => expect(engine.hanging.size).toBe(0), { timeout: 2_000, interval: 20 });
  });

  it('once inspects go unanswered, the rest of the listing does not ask: it does not wait out one deadline per container', async () => {
    const ids = Array.from({ length: 20 }, (_, i) => String(i).padStart(2, '0').repeat(32));
    engine.routes.set('GET /containers/json', (res) =>
      json(
        res,
        200,
        ids.map((id, i) => ({
          Id: id,
          Names: [`/c${i}`],
          State: 'exited',
          Labels: { [LABELS.managed]: 'true', [LABELS.nodeId]: NODE, [LABELS.service]: 'web', [LABELS.replicaId]: `r${i}`, [LABELS.specHash]: 'abcdef0123456789' },
        })),
      ),
    );
    const listed = await runtime.listContainers(NODE);
    expect(listed).toHaveLength(20);
    expect(listed.every((c) => c.state === 'exited' && c.restartCount === null && /did not answer/.test(c.error ?? ''))).toBe(true);
    // The first batch in flight together; none after the first went unanswered.
    expect(engine.requests.filter((r) => r.startsWith('GET /containers/') && r.endsWith('/json') && r !== 'GET /containers/json').length).toBeLessThanOrEqual(8);
  });

  it('a pull whose progress stalls is abandoned; a slow pull that keeps progressing is not', async () => {
    engine.routes.set('POST /images/create', (res, url) => {
      openStream(res);
      res.write('{"status":"Pulling from library/busybox"}\n');
      if (url.searchParams.get('tag') === 'stalls') return; // and nothing more, ever
      let left = 8;
      const t = setInterval(() => {
        if (left-- > 0) res.write('{"status":"Downloading","progressDetail":{"current":1,"total":8}}\n');
        else {
          clearInterval(t);
          res.end('{"status":"Downloaded newer image for busybox:slow"}\n');
        }
      }, 100); // 900 ms in all: three times the stall deadline, never silent for long
      timers.push(t);
    });
    await expect(runtime.pullImage('busybox:stalls', null)).rejects.toMatchObject({ code: 'engine_timeout', message: expect.stringMatching(/^pull busybox:stalls: /) });
    await expect(runtime.pullImage('busybox:slow', null)).resolves.toBeUndefined();
  });

  it('a pull whose answer never starts is abandoned too', async () => {
    await expect(runtime.pullImage('busybox:1', null)).rejects.toMatchObject({ code: 'engine_timeout' });
  });
});

describe('DockerRuntime event stream', () => {
  it('delivers events whose engine time is far behind the device clock, after a resync on subscribing', async () => {
    const streams: ServerResponse[] = [];
    engine.routes.set('GET /events', (res, url) => {
      // The engine would hold back everything older than `since`: the runtime must not ask for it from our clock.
      if (url.searchParams.has('since')) return json(res, 400, { message: 'since from the device clock' });
      openStream(res);
      streams.push(res);
    });
    engine.routes.set('GET /_ping', (res) => res.end('OK'));
    const events: RuntimeEvent[] = [];
    const unsubscribe = runtime.watchEvents(NODE, (e) => events.push(e));
    try {
      await vi.waitFor(() => expect(streams).toHaveLength(1), { timeout: 2_000, interval: 10 });
      const engineTimeS = Math.floor(Date.now() / 1000) - 10 * 365 * 86_400; // an engine ten years behind
      streams[0]!.write(eventLine('start', engineTimeS));
      streams[0]!.write(eventLine('die', engineTimeS - 5)); // and its clock stepped back meanwhile
      await vi.waitFor(
        () => {
          expect(events).toContainEqual({ containerId: ID, action: 'start' });
          expect(events).toContainEqual({ containerId: ID, action: 'die' });
        },
        { timeout: 2_000, interval: 10 },
      );
      // Whatever happened before the stream was up is read by a full listing, which the resync asks for.
      expect(events[0]).toEqual({ containerId: null, action: 'resync' });
    } finally {
      unsubscribe();
    }
  });

  it('a silent stream on an engine that stops answering pings is reconnected, with a resync', async () => {
    let pingAnswers = true;
    engine.routes.set('GET /events', (res) => openStream(res));
    engine.routes.set('GET /_ping', (res) => (pingAnswers ? res.end('OK') : undefined));
    const events: RuntimeEvent[] = [];
    const unsubscribe = runtime.watchEvents(NODE, (e) => events.push(e));
    try {
      await vi.waitFor(() => expect(engine.count('GET /_ping')).toBeGreaterThanOrEqual(2), { timeout: 3_000, interval: 20 });
      // Quiet but answering: the stream is kept.
      expect(engine.count('GET /events')).toBe(1);
      pingAnswers = false;
      await vi.waitFor(() => expect(engine.count('GET /events')).toBeGreaterThanOrEqual(2), { timeout: 3_000, interval: 20 });
      await vi.waitFor(() => expect(events.filter((e) => e.action === 'resync').length).toBeGreaterThanOrEqual(2), { timeout: 3_000, interval: 20 });
    } finally {
      unsubscribe();
    }
  });
});
