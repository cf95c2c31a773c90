import net from 'node:net';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { FaultProxy, MAX_QUEUED_BYTES } from '../helpers/fault-proxy.js';

const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

async function waitFor(what: string, check: () => boolean, timeoutMs = 5_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!check()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(10);
  }
}

/** A plain TCP echo server that remembers its sockets so the test can count and clean them up. */
async function startEcho(): Promise<{ server: net.Server; port: number; sockets: Set<net.Socket>; accepted: () => number }> {
  const sockets = new Set<net.Socket>();
  let accepted = 0;
  const server = net.createServer((s) => {
    accepted++;
    sockets.add(s);
    s.on('error', () => {});
    s.on('close', () => sockets.delete(s));
    s.pipe(s);
  });
  await new Promise<void>((resolve) => server.listen({ host: '127.0.0.1', port: 0 }, resolve));
  return { server, port: (server.address() as net.AddressInfo).port, sockets, accepted: () => accepted };
}

/** A client that records what it receives and whether it closed. */
interface Client {
  sock: net.Socket;
  received: () => string;
  closed: () => boolean;
  closedP: Promise<void>;
  /** Resolves with the time (Date.now()) at which `text` has been fully received. */
  waitFor: (text: string, timeoutMs?: number) => Promise<number>;
}

const clients: net.Socket[] = [];

async function connect(port: number): Promise<Client> {
  const sock = net.connect({ host: '127.0.0.1', port });
  clients.push(sock);
  sock.on('error', () => {});
  let data = '';
  let closed = false;
  const closedP = new Promise<void>((r) =>
    sock.once('close', () => {
      closed = true;
      r();
    }),
  );
  sock.on('data', (c: Buffer) => (data += c.toString()));
  await new Promise<void>((resolve, reject) => {
    sock.once('connect', resolve);
    sock.once('close', () => reject(new Error('closed before connecting')));
  });
  return {
    sock,
    received: () => data,
    closed: () => closed,
    closedP,
    waitFor: async (text, timeoutMs = 5_000) => {
      await waitFor(`"${text}" (got "${data}")`, () => data.includes(text), timeoutMs);
      return Date.now();
    },
  };
}

let echo: Awaited<ReturnType<typeof startEcho>>;
let proxy: FaultProxy;

beforeEach(async () => {
  echo = await startEcho();
  proxy = await FaultProxy.start({ target: { host: '127.0.0.1', port: echo.port } });
});

afterEach(async () => {
  await proxy.close();
  for (const c of clients.splice(0)) c.destroy();
  for (const s of echo.sockets) s.destroy();
  await new Promise<void>((r) => echo.server.close(() => r()));
});

describe('FaultProxy', () => {
  it('listens on loopback and gives an http:// url for --hub', () => {
    expect(proxy.port).toBeGreaterThan(0);
    expect(proxy.url).toBe(`http://127.0.0.1:${proxy.port}`);
  });

  it('refuses non-loopback listen hosts and targets', async () => {
    await expect(FaultProxy.start({ target: { host: '10.0.0.1', port: 80 } })).rejects.toThrow(/loopback/);
    await expect(FaultProxy.start({ target: { host: 'example.com', port: 80 } })).rejects.toThrow(/loopback/);
    await expect(FaultProxy.start({ target: { host: '127.0.0.1', port: 80 }, listenHost: '0.0.0.0' })).rejects.toThrow(
      /loopback/,
    );
  });

  it('passes traffic through both ways and counts connections', async () => {
    expect(proxy.connections).toBe(0);
    const a = await connect(proxy.port);
    a.sock.write('hello');
    await a.waitFor('hello');
    const b = await connect(proxy.port);
    b.sock.write('world');
    await b.waitFor('world');
    expect(a.received()).toBe('hello');
    expect(proxy.connections).toBe(2);

    a.sock.end();
    await a.closedP;
    await waitFor('one connection', () => proxy.connections === 1);
    b.sock.destroy();
    await waitFor('no connections', () => proxy.connections === 0);
    await waitFor('echo server sockets closed', () => echo.sockets.size === 0);
  });

  it('closes the client when the target closes, and the target when the client closes', async () => {
    const a = await connect(proxy.port);
    a.sock.write('x');
    await a.waitFor('x');
    expect(echo.sockets.size).toBe(1);
    for (const s of echo.sockets) s.destroy();
    await a.closedP;
    await waitFor('no connections', () => proxy.connections === 0);

    const b = await connect(proxy.port);
    b.sock.write('y');
    await b.waitFor('y');
    b.sock.destroy();
    await waitFor('echo server socket closed', () => echo.sockets.size === 0);
    await waitFor('no connections', () => proxy.connections === 0);
  });

  it('closes the client when the target refuses the connection', async () => {
    const dead = await startEcho();
    const deadPort = dead.port;
    await new Promise<void>((r) => dead.server.close(() => r()));
    const p = await FaultProxy.start({ target: { host: '127.0.0.1', port: deadPort } });
    try {
      const a = await connect(p.port);
      await a.closedP;
      await waitFor('no connections', () => p.connections === 0);
    } finally {
      await p.close();
    }
  });

  it('cut() closes open connections and refuses new ones until restore()', async () => {
    const a = await connect(proxy.port);
    a.sock.write('before');
    await a.waitFor('before');

    proxy.cut();
    await a.closedP;
    expect(proxy.connections).toBe(0);

    // Accepted, then closed at once; nothing reaches the target.
    const acceptedBefore = echo.accepted();
    const b = await connect(proxy.port).catch(() => undefined);
    if (b) {
      b.sock.write('during');
      await b.closedP;
      expect(b.received()).toBe('');
    }
    expect(echo.accepted()).toBe(acceptedBefore);
    expect(proxy.connections).toBe(0);

    proxy.restore();
    const c = await connect(proxy.port);
    c.sock.write('after');
    await c.waitFor('after');
    expect(proxy.connections).toBe(1);
  });

  it('blackhole() keeps connections open but drops everything; restore() destroys them', async () => {
    const a = await connect(proxy.port);
    a.sock.write('before');
    await a.waitFor('before');
    const acceptedBefore = echo.accepted();

    proxy.blackhole();
    a.sock.write('lost');
    // A new connection during the outage is accepted but gets nothing through.
    const b = await connect(proxy.port);
    b.sock.write('also lost');
    await sleep(300);
    expect(a.received()).toBe('before');
    expect(a.closed()).toBe(false);
    expect(b.received()).toBe('');
    expect(b.closed()).toBe(false);
    expect(echo.accepted()).toBe(acceptedBefore);
    expect(proxy.connections).toBe(2);

    proxy.restore();
    await a.closedP;
    await b.closedP;
    expect(a.received()).toBe('before');
    expect(proxy.connections).toBe(0);

    const c = await connect(proxy.port);
    c.sock.write('after');
    await c.waitFor('after');
  });

  it('blackhole() does not pass a FIN either: a client that ends stays half-open until restore()', async () => {
    const a = await connect(proxy.port);
    a.sock.write('x');
    await a.waitFor('x');
    proxy.blackhole();
    a.sock.end();
    await sleep(200);
    expect(a.closed()).toBe(false);
    expect(echo.sockets.size).toBe(1);
    proxy.restore();
    await a.closedP;
    await waitFor('echo server socket closed', () => echo.sockets.size === 0);
  });

  it('delay() adds latency both ways and keeps order', async () => {
    const a = await connect(proxy.port);
    a.sock.write('warm');
    await a.waitFor('warm');

    proxy.delay(200);
    const sentAt = Date.now();
    a.sock.write('one;');
    await sleep(20);
    a.sock.write('two;');
    await sleep(20);
    a.sock.write('three;');
    const gotAt = await a.waitFor('three;');
    // 200 ms to the target and 200 ms back; lower bound only (with a little slack for clocks).
    expect(gotAt - sentAt).toBeGreaterThanOrEqual(390);
    expect(a.received()).toBe('warmone;two;three;');

    // A FIN is delayed behind the data, not ahead of it.
    a.sock.write('last');
    a.sock.end();
    await a.closedP;
    expect(a.received()).toBe('warmone;two;three;last');

    proxy.delay(0);
    const b = await connect(proxy.port);
    b.sock.write('fast');
    await b.waitFor('fast');
  });

  it(`drops a connection that has more than ${MAX_QUEUED_BYTES} bytes held back by delay()`, async () => {
    proxy.delay(60_000);
    const a = await connect(proxy.port);
    a.sock.write(Buffer.alloc(MAX_QUEUED_BYTES + 1024 * 1024));
    await a.closedP;
    await waitFor('no connections', () => proxy.connections === 0);
    expect(echo.accepted()).toBe(1);
  });

  it('close() stops listening and leaves no sockets or timers behind', async () => {
    const count = (kind: string) => process.getActiveResourcesInfo().filter((r) => r === kind).length;
    const handles = () => ({ sockets: count('TCPSocketWrap'), servers: count('TCPServerWrap') });
    // Baseline: the echo server and the proxy from beforeEach. Handles closed by the previous
    // test's afterEach can linger in the list for a moment, so let them go first.
    await sleep(50);
    const baseline = handles();

    // Track every timer started from here on (vitest's own come and go, so counting is unreliable):
    // after close() each must have fired or been cleared.
    const pending = new Set<unknown>();
    const realSet = globalThis.setTimeout;
    const realClear = globalThis.clearTimeout;
    const tracked = ((fn: (...a: unknown[]) => void, ms?: number, ...args: unknown[]) => {
      const t = realSet((...a: unknown[]) => {
        pending.delete(t);
        fn(...a);
      }, ms, ...args);
      pending.add(t);
      return t;
    }) as unknown as typeof setTimeout;
    globalThis.setTimeout = tracked;
    globalThis.clearTimeout = ((t: NodeJS.Timeout | undefined) => {
      pending.delete(t);
      realClear(t);
    }) as typeof clearTimeout;
    try {
      const p = await FaultProxy.start({ target: { host: '127.0.0.1', port: echo.port } });
      const a = await connect(p.port);
      a.sock.write('x');
      await a.waitFor('x');
      const b = await connect(p.port);
      p.delay(10_000);
      b.sock.write('held back'); // starts a delay timer in the proxy
      await sleep(50);
      expect(p.connections).toBe(2);
      expect(pending.size).toBeGreaterThan(0);

      await p.close();
      expect(p.connections).toBe(0);
      expect(pending.size).toBe(0);
      await Promise.all([a.closedP, b.closedP]);
      await expect(connect(p.port)).rejects.toThrow();
      await waitFor('echo server sockets closed', () => echo.sockets.size === 0);
      clients.splice(0);
      await waitFor('socket and server handles back to baseline', () => {
        const now = handles();
        return now.sockets === baseline.sockets && now.servers === baseline.servers;
      });
      expect(pending.size).toBe(0);
      await p.close(); // idempotent
    } finally {
      globalThis.setTimeout = realSet;
      globalThis.clearTimeout = realClear;
    }
  });
});
