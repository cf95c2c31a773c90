import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { WebSocketServer } from 'ws';
import { HubLink } from '../../agent/hub-link.js';
import { ReconnectSchedule, type AttemptOutcome } from '../../agent/reconnect-schedule.js';
import { JoinRefusedError, JoinThrottledError, joinHub } from '../../agent/node-identity.js';
import { AGENT_PATH, PROTOCOL_VERSION } from '../../shared/protocol.js';
import { encodeFrame } from '../../shared/codec.js';
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

/** A hub stand-in that answers every agent upgrade with the status (503 unless told) and the given Retry-After. */
async function busyHub(retryAfter: string | null, status = '503 Service Unavailable'): Promise<{ url: string; attempts: number[] }> {
  const attempts: number[] = [];
  server = http.createServer();
  server.on('upgrade', (_req, socket) => {
    // The server hands an upgraded socket over without its error listener: a client that resets
    // it (the agent gives up on the refused upgrade) must not throw past the test.
    socket.on('error', () => undefined);
    attempts.push(performance.now());
    socket.end(`HTTP/1.1 ${status}\r\n${retryAfter === null ? '' : `Retry-After: ${retryAfter}\r\n`}Content-Length: 0\r\nConnection: close\r\n\r\n`);
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

  it('waits out the Retry-After of a 429 (its address failed authentication too often) the same way', async () => {
    const hub = await busyHub('2', '429 Too Many Requests');
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

/** A schedule on a fake clock: each delay is waited (the clock moves by it) before the next attempt. */
function fakeClockSchedule(random: () => number, opts: { fastIntervalMs?: number; fastWindowMs?: number } = {}) {
  let nowMs = 0;
  const schedule = new ReconnectSchedule({ baseMs: 500, capMs: 30_000, fastIntervalMs: 1000, fastWindowMs: 20_000, ...opts, random, nowMs: () => nowMs });
  const attempt = (outcome: AttemptOutcome | null): number => {
    const delayMs = schedule.nextDelayMs(outcome);
    nowMs += delayMs;
    return delayMs;
  };
  return { schedule, attempt, now: () => nowMs };
}

const REFUSED: AttemptOutcome = { kind: 'refused' };

describe('ReconnectSchedule (fake clock)', () => {
  it('after a working link is lost, retries a refusing hub at the short jittered pace for the window, then backs off exponentially', () => {
    const { schedule, attempt, now } = fakeClockSchedule(() => 1);
    schedule.lost();
    const delays = [attempt(null)];
    while (now() < 20_000) delays.push(attempt(REFUSED));
    // random() = 1: the top of the 0.5-1.5x jitter, 1,500 ms, for the whole 20 s window...
    expect(delays.slice(0, 14)).toEqual(Array(14).fill(1500));
    // ...then the exponential backoff from its base, as before the loss.
    const after = [attempt(REFUSED), attempt(REFUSED), attempt(REFUSED), attempt(REFUSED)];
    expect(after).toEqual([500, 1000, 2000, 4000]);
  });

  it('a fleet that lost its hub together is back within about the fast pace of the hub listening, not the backoff cap', () => {
    // 1,000 agents, a hub back 8 s after the loss: when does each next try?
    let seed = 7;
    const random = () => ((seed = (seed * 1103515245 + 12345) % 2 ** 31) / 2 ** 31);
    const backAtMs = 8_000;
    const arrivals: number[] = [];
    for (let i = 0; i < 1000; i++) {
      const { schedule, attempt, now } = fakeClockSchedule(random);
      schedule.lost();
      attempt(null);
      while (now() < backAtMs) attempt(REFUSED);
      arrivals.push(now() - backAtMs);
    }
    arrivals.sort((a, b) => a - b);
    expect(arrivals[arrivals.length - 1]).toBeLessThanOrEqual(1500);
    // Jittered: not in lock-step.
    expect(new Set(arrivals).size).toBeGreaterThan(500);
    expect(arrivals[Math.floor(arrivals.length / 2)]).toBeGreaterThan(200);
  });

  it('backs off exponentially as before when the agent never had a working link', () => {
    const { attempt } = fakeClockSchedule(() => 1);
    expect([attempt(null), attempt(REFUSED), attempt(REFUSED), attempt(REFUSED)]).toEqual([500, 1000, 2000, 4000]);
  });

  it('ends the fast phase at the first failure other than a refusal: a hub that answers may be overloaded', () => {
    const { schedule, attempt } = fakeClockSchedule(() => 1);
    schedule.lost();
    expect(attempt(REFUSED)).toBe(1500);
    expect(schedule.fast).toBe(true);
    expect(attempt({ kind: 'failed' })).toBe(500);
    expect(schedule.fast).toBe(false);
    expect(attempt(REFUSED)).toBe(1000);
  });

  it('honours Retry-After, jittered to 0.5-1.5x, without moving the backoff', () => {
    const low = fakeClockSchedule(() => 0);
    expect(low.attempt({ kind: 'retryAfter', seconds: 4 })).toBe(2000);
    const high = fakeClockSchedule(() => 0.999);
    expect(high.attempt({ kind: 'retryAfter', seconds: 4 })).toBe(5996);
    expect(high.attempt({ kind: 'retryAfter', seconds: 4 })).toBe(5996);
    expect(high.attempt({ kind: 'failed' })).toBe(499);
    // In the fast phase too: the hub listens and said when.
    high.schedule.lost();
    expect(high.attempt({ kind: 'retryAfter', seconds: 2 })).toBe(2998);
    expect(high.attempt(REFUSED)).toBe(1499);
  });

  it('never waits longer in the fast phase than the backoff cap allows', () => {
    // Agents with a short cap (and a hub whose startup grace is sized by it) keep within it.
    const { schedule, attempt } = fakeClockSchedule(() => 1, { fastIntervalMs: 1000 });
    const short = new ReconnectSchedule({ baseMs: 50, capMs: 500, random: () => 1, nowMs: () => 0 });
    short.lost();
    expect(short.nextDelayMs(REFUSED)).toBeLessThanOrEqual(500);
    schedule.lost();
    expect(attempt(REFUSED)).toBe(1500);
  });

  it('starts over after a welcome: the fast phase needs a new loss', () => {
    const { schedule, attempt } = fakeClockSchedule(() => 1);
    schedule.lost();
    attempt(REFUSED);
    schedule.connected();
    expect(schedule.fast).toBe(false);
    expect(attempt(REFUSED)).toBe(500);
  });
});

describe('HubLink after its hub restarts', () => {
  it('is back soon after the hub listens again, though its backoff base is long', async () => {
    const welcomeOn = (wss: WebSocketServer) =>
      wss.on('connection', (ws) => ws.send(encodeFrame({ type: 'welcome', protocolVersion: PROTOCOL_VERSION, nodeId: 'n1', heartbeatIntervalMs: 60_000 } as never)));
    let wss = new WebSocketServer({ host: '127.0.0.1', port: 0, path: AGENT_PATH });
    welcomeOn(wss);
    await new Promise((r) => wss.once('listening', r));
    const port = (wss.address() as AddressInfo).port;
    let welcomes = 0;
    link = new HubLink({
      hubUrl: `http://127.0.0.1:${port}`,
      credential: 'tnc_x.y',
      logger: silentLogger,
      hello: () => ({ type: 'hello', protocolVersion: PROTOCOL_VERSION, name: 'n', labels: {}, advertiseAddress: null, facts: simFacts(), appliedGeneration: 0, replicas: [] }),
      onTarget: () => undefined,
      onConnectionChange: (connected) => {
        if (connected) welcomes++;
      },
      // An exponential backoff from this base would wait up to a minute after the hub is back.
      reconnectBaseMs: 60_000,
      reconnectCapMs: 60_000,
      fastReconnectIntervalMs: 200,
    });
    link.start();
    await until(() => welcomes === 1, 5000);
    // The hub dies: its sockets close and the port refuses, for a second.
    for (const ws of wss.clients) ws.terminate();
    await new Promise((r) => wss.close(r));
    await new Promise((r) => setTimeout(r, 1000));
    wss = new WebSocketServer({ host: '127.0.0.1', port, path: AGENT_PATH });
    welcomeOn(wss);
    await new Promise((r) => wss.once('listening', r));
    try {
      // At most one fast interval (1.5 x 200 ms) and a handshake after the listen; generous for a busy machine.
      await until(() => welcomes === 2, 5000);
      expect(link.connected).toBe(true);
    } finally {
      await link.stop();
      link = null;
      for (const ws of wss.clients) ws.terminate();
      await new Promise((r) => wss.close(r));
    }
  });
});

async function until(condition: () => boolean, timeoutMs: number): Promise<void> {
  const deadline = performance.now() + timeoutMs;
  while (!condition()) {
    if (performance.now() > deadline) throw new Error('condition not met in time');
    await new Promise((r) => setTimeout(r, 20));
  }
}

describe('joinHub', () => {
  it('refuses a hub address that redirects, naming where to', async () => {
    server = http.createServer((_req, res) => res.writeHead(307, { location: 'https://hub.example/v1/join' }).end());
    await new Promise<void>((resolve) => server!.listen(0, '127.0.0.1', resolve));
    const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
    const joining = joinHub(url, 'tjt_x', 'n', {});
    await expect(joining).rejects.toBeInstanceOf(JoinRefusedError);
    await expect(joining).rejects.toThrow(/redirects \(HTTP 307\) to https:\/\/hub\.example\/v1\/join/);
  });

  it("takes a 429 (its address failed authentication too often) as a wait of the hub's Retry-After, not a refusal", async () => {
    server = http.createServer((_req, res) =>
      res.writeHead(429, { 'retry-after': '42', 'content-type': 'application/json' }).end(JSON.stringify({ error: { code: 'too_many_failures', message: 'wait' } })),
    );
    await new Promise<void>((resolve) => server!.listen(0, '127.0.0.1', resolve));
    const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
    const joining = joinHub(url, 'tjt_x', 'n', {});
    await expect(joining).rejects.toBeInstanceOf(JoinThrottledError);
    await expect(joining).rejects.toMatchObject({ retryAfterMs: 42_000 });
  });
});

describe('HubLink pings only a silent hub', () => {
  const intervalMs = 200;

  /** A hub stand-in on loopback: welcomes with a short interval and counts what each agent sends. */
  async function countingHub(opts: { targetEveryMs?: number; pongDelayMs?: number } = {}) {
    const wss = new WebSocketServer({ host: '127.0.0.1', port: 0, path: AGENT_PATH, autoPong: opts.pongDelayMs === undefined });
    const seen = { connections: 0, pings: 0, heartbeats: 0, pingAtMs: [] as number[] };
    const timers: NodeJS.Timeout[] = [];
    wss.on('connection', (ws) => {
      seen.connections++;
      ws.on('error', () => undefined);
      ws.on('ping', (data) => {
        seen.pings++;
        seen.pingAtMs.push(performance.now());
        // A slow link: the answer comes back this much later.
        if (opts.pongDelayMs !== undefined) timers.push(setTimeout(() => ws.readyState === ws.OPEN && ws.pong(data), opts.pongDelayMs));
      });
      ws.on('message', (data) => {
        if (String(data).includes('"heartbeat"')) seen.heartbeats++;
      });
      ws.send(encodeFrame({ type: 'welcome', protocolVersion: PROTOCOL_VERSION, nodeId: 'n1', heartbeatIntervalMs: intervalMs } as never));
      if (opts.targetEveryMs !== undefined) {
        let generation = 0;
        timers.push(setInterval(() => ws.send(encodeFrame({ type: 'target', generation: ++generation, replicas: [] })), opts.targetEveryMs));
      }
    });
    await new Promise((r) => wss.once('listening', r));
    const close = async () => {
      for (const t of timers) clearInterval(t);
      for (const ws of wss.clients) ws.terminate();
      await new Promise((r) => wss.close(r));
    };
    return { wss, seen, close, url: `http://127.0.0.1:${(wss.address() as AddressInfo).port}` };
  }

  function linkTo(url: string, changes: boolean[]): HubLink {
    const l = new HubLink({
      hubUrl: url,
      credential: 'tnc_x.y',
      logger: silentLogger,
      hello: () => ({ type: 'hello', protocolVersion: PROTOCOL_VERSION, name: 'n', labels: {}, advertiseAddress: null, facts: simFacts(), appliedGeneration: 0, replicas: [] }),
      onTarget: () => undefined,
      onConnectionChange: (connected) => changes.push(connected),
      reconnectBaseMs: 50,
      reconnectCapMs: 100,
    });
    l.start();
    return l;
  }

  it('sends no ping while the hub sends frames more often than the interval, yet heartbeats as before', async () => {
    const hub = await countingHub({ targetEveryMs: 50 });
    const changes: boolean[] = [];
    link = linkTo(hub.url, changes);
    try {
      await until(() => changes.length === 1, 5000);
      await until(() => hub.seen.heartbeats >= 6, 10_000);
      expect(hub.seen.pings).toBe(0);
      expect(changes).toEqual([true]);
    } finally {
      await link.stop();
      link = null;
      await hub.close();
    }
  });

  it('still pings an idle hub, at most once an interval, and its pongs keep the link up', async () => {
    const hub = await countingHub();
    const changes: boolean[] = [];
    link = linkTo(hub.url, changes);
    try {
      await until(() => changes.length === 1, 5000);
      const fromMs = performance.now();
      // Six intervals: longer than the stale time (four intervals), so without pongs the link would drop.
      await until(() => hub.seen.heartbeats >= 7, 10_000);
      const elapsedMs = performance.now() - fromMs;
      expect(hub.seen.pings).toBeGreaterThanOrEqual(2);
      expect(hub.seen.pings).toBeLessThanOrEqual(Math.floor(elapsedMs / intervalMs) + 1);
      expect(changes).toEqual([true]);
      expect(hub.seen.connections).toBe(1);
      expect(link.connected).toBe(true);
    } finally {
      await link.stop();
      link = null;
      await hub.close();
    }
  });

  it('keeps a link whose round trip is longer than an interval', async () => {
    // 2.5 intervals there and back: slow, yet a live hub; before pings were skipped, an agent
    // pinging every interval took it; skipping them must not make it look dead.
    const hub = await countingHub({ pongDelayMs: 2.5 * intervalMs });
    const changes: boolean[] = [];
    link = linkTo(hub.url, changes);
    try {
      await until(() => changes.length === 1, 5000);
      await until(() => hub.seen.heartbeats >= 20, 20_000);
      expect(changes).toEqual([true]);
      expect(hub.seen.connections).toBe(1);
    } finally {
      await link.stop();
      link = null;
      await hub.close();
    }
  });

  it('drops a hub that stops answering after the stale time, and connects again', async () => {
    const hub = await countingHub();
    const changes: boolean[] = [];
    link = linkTo(hub.url, changes);
    try {
      await until(() => changes.length === 1, 5000);
      await until(() => hub.seen.heartbeats >= 2, 5000);
      // A half-open hub: the server reads nothing more, so neither pongs nor frames come back.
      for (const ws of hub.wss.clients) (ws as unknown as { _socket: import('node:net').Socket })._socket.pause();
      await until(() => changes.length >= 2, 10_000);
      expect(changes.slice(0, 2)).toEqual([true, false]);
      await until(() => changes.length >= 3 && link!.connected, 10_000);
      expect(hub.seen.connections).toBe(2);
    } finally {
      await link.stop();
      link = null;
      await hub.close();
    }
  });
});
