/**
 * The hub's memory per connected agent against a bare ws server's per connection, measured the
 * same way in the same run: RSS after a forced GC (through the inspector), before and after N
 * connections. The connections are light protocol clients in this process (a hello like an
 * agent's, with its conditions and disks, then a heartbeat every 5 s), not agent processes, so
 * the figure holds on a busy machine where a fleet of real agents would not connect in time.
 *
 * Usage: node dist/bench/robustness/hub-memory.js [--agents N] (default 3000, at most 5000)
 * Prints one JSON line: per agent (node record included), per connection (after the joins),
 * the baseline's per connection, and the ratios. Loopback only; stops by itself (5 min at most).
 */
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import WebSocket from 'ws';
import { AGENT_PATH, PROTOCOL_VERSION, type HelloFrame } from '../../shared/protocol.js';
import { simulatedFacts } from '../../agent/runtime/simulated-runtime.js';
import { collectGarbage } from '../inspector.js';
import { freePort, kill, startBaseline, startHub, type NodeProc } from '../processes.js';
import { rssBytes } from '../proc-stats.js';

const { values: args } = parseArgs({ options: { agents: { type: 'string' } }, strict: true });
const agents = Math.min(5000, Math.max(1, Number(args.agents ?? 3000)));
const DEADLINE_MS = 5 * 60_000;
const HEARTBEAT_MS = 5000;
const KiB = 1024;
const MiB = 1024 * 1024;

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const round = (x: number, digits = 2) => Math.round(x * 10 ** digits) / 10 ** digits;

async function gcRss(proc: NodeProc): Promise<{ rss: number; heapUsed: number }> {
  const { heapUsed } = await collectGarbage(proc.inspectorUrl!);
  // A moment for the allocator to hand freed pages back before reading RSS.
  await sleep(500);
  const rss = rssBytes(proc.pid);
  if (rss === null) throw new Error(`process ${proc.pid} is gone`);
  return { rss, heapUsed };
}

/** Runs `fn` over `items`, `concurrency` at a time. */
async function pool<T>(items: T[], concurrency: number, fn: (item: T, i: number) => Promise<void>): Promise<void> {
  let next = 0;
  await Promise.all(
    Array.from({ length: concurrency }, async () => {
      while (next < items.length) {
        const i = next++;
        await fn(items[i]!, i);
      }
    }),
  );
}

const open: WebSocket[] = [];
const timers: NodeJS.Timeout[] = [];

function closeAll(): void {
  for (const t of timers.splice(0)) clearInterval(t);
  for (const ws of open.splice(0)) ws.terminate();
}

/**
 * Opens a connection and, with a hello, waits for the welcome; a hub busy with other handshakes
 * (503) is asked again a little later, as an agent would.
 */
async function connect(url: string, headers: Record<string, string>, hello: HelloFrame | null): Promise<void> {
  for (let attempt = 0; ; attempt++) {
    const ws = new WebSocket(url, { headers, perMessageDeflate: false, handshakeTimeout: 30_000 });
    const outcome = await new Promise<'ok' | 'retry'>((resolve, reject) => {
      ws.on('error', (error) => (/503/.test(error.message) && attempt < 50 ? resolve('retry') : reject(error)));
      ws.once('open', () => {
        if (!hello) return resolve('ok');
        ws.once('message', () => resolve('ok'));
        ws.send(JSON.stringify(hello));
      });
    });
    if (outcome === 'retry') {
      await sleep(200 + Math.random() * 300);
      continue;
    }
    ws.on('close', () => undefined);
    open.push(ws);
    timers.push(setInterval(() => ws.send('{"type":"heartbeat"}'), HEARTBEAT_MS));
    return;
  }
}

function hello(i: number): HelloFrame {
  const name = `mem-${i}`;
  const disk = (p: string) => ({ path: p, totalBytes: 64 * 1024 ** 3, freeBytes: (20 + (i % 30)) * 1024 ** 3 });
  return {
    type: 'hello',
    protocolVersion: PROTOCOL_VERSION,
    name,
    labels: {},
    advertiseAddress: null,
    facts: simulatedFacts(name),
    appliedGeneration: 0,
    replicas: [],
    conditions: { engine: { available: true, error: null }, targetCache: { current: true, error: null }, dataDisk: disk('/var/lib/tether-agent'), engineDisk: disk('/var/lib/docker') },
  };
}

async function baseline(): Promise<{ perConnectionKiB: number }> {
  const server = await startBaseline(true);
  try {
    const before = await gcRss(server);
    await pool(Array.from({ length: agents }), 32, () => connect(`ws://127.0.0.1:${server.port}${AGENT_PATH}`, {}, null));
    await sleep(2000);
    const after = await gcRss(server);
    return { perConnectionKiB: round((after.rss - before.rss) / KiB / agents) };
  } finally {
    closeAll();
    await kill(server);
  }
}

async function hub(): Promise<Record<string, number>> {
  const tmp = mkdtempSync(path.join(os.tmpdir(), 'tether-hub-memory-'));
  const port = await freePort();
  const url = `http://127.0.0.1:${port}`;
  const dataDir = path.join(tmp, 'hub');
  const proc = await startHub(url, { args: ['--port', String(port), '--host', '127.0.0.1', '--data-dir', dataDir, '--log-level', 'warn'], logFile: path.join(tmp, 'hub.log'), inspect: true });
  try {
    const token = readFileSync(path.join(dataDir, 'admin-token'), 'utf8').trim();
    const post = async (route: string, body: unknown, auth: boolean) => {
      const res = await fetch(`${url}${route}`, {
        method: 'POST',
        headers: { 'content-type': 'application/json', ...(auth ? { authorization: `Bearer ${token}` } : {}) },
        body: JSON.stringify(body),
      });
      if (res.status >= 300) throw new Error(`POST ${route}: HTTP ${res.status} ${await res.text()}`);
      return (await res.json()) as Record<string, string>;
    };
    const before = await gcRss(proc);
    const joinToken = (await post('/v1/join-tokens', { ttlSeconds: 3600 }, true)).token!;
    const credentials: string[] = new Array(agents);
    await pool(Array.from({ length: agents }), 16, async (_, i) => {
      credentials[i] = (await post('/v1/join', { joinToken, name: `mem-${i}`, labels: {} }, false)).credential!;
    });
    const joined = await gcRss(proc);
    await pool(credentials, 32, (credential, i) => connect(`ws://127.0.0.1:${port}${AGENT_PATH}`, { authorization: `Bearer ${credential}` }, hello(i)));
    await sleep(2000);
    const after = await gcRss(proc);
    return {
      perAgentKiB: round((after.rss - before.rss) / KiB / agents),
      perConnectionKiB: round((after.rss - joined.rss) / KiB / agents),
      nodeRecordKiB: round((joined.rss - before.rss) / KiB / agents),
      heapPerAgentKiB: round((after.heapUsed - before.heapUsed) / KiB / agents),
      rssBeforeMiB: round(before.rss / MiB, 1),
      rssAfterMiB: round(after.rss / MiB, 1),
    };
  } finally {
    closeAll();
    await kill(proc);
    rmSync(tmp, { recursive: true, force: true });
  }
}

async function main(): Promise<void> {
  const deadline = setTimeout(() => {
    process.stderr.write('hub-memory: deadline passed\n');
    process.exit(1);
  }, DEADLINE_MS);
  deadline.unref();
  const bare = await baseline();
  const h = await hub();
  process.stdout.write(
    `${JSON.stringify({
      agents,
      hub: h,
      baselinePerConnectionKiB: bare.perConnectionKiB,
      perAgentOverBaseline: round(h.perAgentKiB! / bare.perConnectionKiB),
      perConnectionOverBaseline: round(h.perConnectionKiB! / bare.perConnectionKiB),
    })}\n`,
  );
  process.exit(0);
}

main().catch((error: unknown) => {
  process.stderr.write(`hub-memory: ${(error as Error).stack ?? String(error)}\n`);
  process.exit(1);
});
