/**
 * How soon the agent notices its container engine going away, hanging and coming back. The real
 * DockerRuntime and EngineAvailability at their default deadlines and intervals, with an event
 * stream open as the agent keeps one, on the local engine reached through a unix-socket proxy this
 * script stops, starts and freezes. Loopback only; ROUNDS rounds, at most DEADLINE_MS in all.
 *
 *   node dist/bench/robustness/engine-outage.js
 *
 * Prints one JSON line: per kind of fault, the detection times of each round in ms.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { performance } from 'node:perf_hooks';
import { EngineAvailability } from '../../agent/engine-availability.js';
import { DockerRuntime } from '../../agent/runtime/docker-runtime.js';

const ENGINE_SOCKET = process.env.DOCKER_SOCKET ?? '/var/run/docker.sock';
const ROUNDS = 4;
/** Past this the script gives up and says so: a hang must be noticed long before. */
const WAIT_LIMIT_MS = 30_000;
const DEADLINE_MS = 240_000;
const SETTLE_MIN_MS = 500;
/** As long as the periodic check's interval (ENGINE_CHECK_INTERVAL_MS). */
const SETTLE_SPREAD_MS = 5_000;

/** Forwards to the engine; `frozen` swallows bytes both ways (an engine that accepts and never answers). */
class Proxy {
  frozen = false;
  private readonly sockets = new Set<net.Socket>();
  private server: net.Server | null = null;

  constructor(readonly socketPath: string) {}

  async start(): Promise<void> {
    const server = net.createServer((client) => {
      const upstream = net.connect(ENGINE_SOCKET);
      this.sockets.add(client).add(upstream);
      const drop = (): void => {
        client.destroy();
        upstream.destroy();
        this.sockets.delete(client);
        this.sockets.delete(upstream);
      };
      client.on('error', drop).on('close', drop);
      upstream.on('error', drop).on('close', drop);
      client.on('data', (chunk: Buffer) => void (this.frozen || upstream.write(chunk)));
      upstream.on('data', (chunk: Buffer) => void (this.frozen || client.write(chunk)));
    });
    server.on('error', (err) => {
      throw err;
    });
    await new Promise<void>((resolve) => server.listen(this.socketPath, resolve));
    this.server = server;
  }

  async stop(): Promise<void> {
    for (const s of this.sockets) s.destroy();
    const server = this.server;
    this.server = null;
    if (server) await new Promise<void>((resolve) => server.close(() => resolve()));
  }
}

async function main(): Promise<void> {
  const startedMs = performance.now();
  const hardStop = setTimeout(() => {
    process.stdout.write(`${JSON.stringify({ bench: 'engine-outage', error: `did not finish within ${DEADLINE_MS} ms` })}\n`);
    process.exit(1);
  }, DEADLINE_MS);
  const dir = await mkdtemp(path.join(os.tmpdir(), 'tether-bench-engine-'));
  const proxy = new Proxy(path.join(dir, 'docker.sock'));
  await proxy.start();
  const runtime = new DockerRuntime({ socketPath: proxy.socketPath });
  let available: boolean | null = null;
  let changedAtMs = 0;
  const quiet = { info() {}, warn() {} };
  const monitor = new EngineAvailability({
    probe: runtime,
    logger: quiet,
    onChange: (now) => {
      available = now;
      changedAtMs = performance.now();
    },
  });
  await monitor.start();
  if (available !== true) throw new Error(`no engine at ${ENGINE_SOCKET}`);
  // The agent keeps an event stream open: its breaking is what tells of an engine gone.
  const unwatch = runtime.watchEvents('bench-engine-outage', () => {});

  /** Time from `fault` until the monitor says `wanted`. */
  const timeTo = async (wanted: boolean, fault: () => Promise<void> | void): Promise<number | null> => {
    // A wait of random length between faults: the stream settles, and each fault lands at another
    // point of the periodic checks, so the figures sample their whole range, not one phase.
    await new Promise((r) => setTimeout(r, SETTLE_MIN_MS + Math.random() * SETTLE_SPREAD_MS));
    const atMs = performance.now();
    await fault();
    while (available !== wanted) {
      if (performance.now() - atMs > WAIT_LIMIT_MS) return null;
      await new Promise((r) => setTimeout(r, 10));
    }
    return Math.round(changedAtMs - atMs);
  };

  const result = { goneMs: [] as Array<number | null>, backMs: [] as Array<number | null>, hungMs: [] as Array<number | null>, unhungMs: [] as Array<number | null> };
  for (let round = 0; round < ROUNDS; round++) {
    result.goneMs.push(await timeTo(false, () => proxy.stop()));
    result.backMs.push(await timeTo(true, () => proxy.start()));
    result.hungMs.push(await timeTo(false, () => void (proxy.frozen = true)));
    result.unhungMs.push(await timeTo(true, () => void (proxy.frozen = false)));
  }

  unwatch();
  monitor.stop();
  await proxy.stop();
  await rm(dir, { recursive: true, force: true });
  clearTimeout(hardStop);
  const max = (xs: Array<number | null>): number | null => (xs.includes(null) ? null : Math.max(...(xs as number[])));
  process.stdout.write(
    `${JSON.stringify({
      bench: 'engine-outage',
      rounds: ROUNDS,
      ...result,
      maxGoneMs: max(result.goneMs),
      maxBackMs: max(result.backMs),
      maxHungMs: max(result.hungMs),
      maxUnhungMs: max(result.unhungMs),
      totalMs: Math.round(performance.now() - startedMs),
    })}\n`,
  );
}

main().catch((err: unknown) => {
  process.stdout.write(`${JSON.stringify({ bench: 'engine-outage', error: (err as Error).message })}\n`);
  process.exit(1);
});
