/**
 * One agent process of the fleet benchmark: up to a few thousand real agents (`Agent` from
 * agent/agent.ts: real join, real WebSocket, real protocol, real reconcile loop), each over its
 * own SimulatedRuntime; or, for the baseline, as many bare `ws` clients sending the same frames.
 * Driven by its parent over IPC (fleet-messages.ts); exits when the parent goes away.
 *
 * Usage (by bench/fleet.ts only): node dist/bench/fleet-worker.js [--source-address 127.0.0.X]
 */
import net from 'node:net';
import { parseArgs } from 'node:util';
import WebSocket from 'ws';
import { Agent } from '../agent/agent.js';
import { joinHub, JoinRefusedError, type NodeIdentity } from '../agent/node-identity.js';
import { SimulatedRuntime, simulatedFacts } from '../agent/runtime/simulated-runtime.js';
import {
  BENCH_IMAGE,
  HEARTBEAT_FRAME,
  type AgentStatus,
  type BurstResult,
  type CutResult,
  type JoinResult,
  type RawConnectResult,
  type WorkerCommand,
  type WorkerReply,
  type WorkerRequest,
} from './fleet-messages.js';

const { values: argv } = parseArgs({ options: { 'source-address': { type: 'string' } }, strict: true });

// Spreading connections over loopback source addresses, when one address runs short of ephemeral
// ports: every outgoing TCP connection of this process binds to the given address. `ws` opens its
// sockets through net.connect, so this reaches the agents' links without touching agent code.
const sourceAddress = argv['source-address'];
if (sourceAddress) {
  const connect = net.connect;
  (net as { connect: unknown }).connect = (options: unknown, ...rest: unknown[]) =>
    typeof options === 'object' && options !== null
      ? (connect as (...a: unknown[]) => net.Socket)({ localAddress: sourceAddress, ...options }, ...rest)
      : (connect as (...a: unknown[]) => net.Socket)(options, ...rest);
}

/** Drops the agents' logs, counting warnings and errors by message (a few dozen distinct ones). */
const logStats = { warnings: 0, errors: 0, byMessage: new Map<string, number>() };
function keep(level: string, msg: string): void {
  const key = `${level}: ${msg.slice(0, 160)}`;
  const n = logStats.byMessage.get(key);
  if (n !== undefined) logStats.byMessage.set(key, n + 1);
  else if (logStats.byMessage.size < 50) logStats.byMessage.set(key, 1);
}
const logger = {
  info: () => undefined,
  warn: (obj: object, msg: string) => {
    logStats.warnings++;
    // The close code tells a hub restart (1006) from a replaced session (4004) and the like.
    const code = (obj as { code?: unknown }).code;
    keep('warn', code === undefined ? msg : `${msg} [code ${String(code)}]`);
  },
  error: (obj: object, msg: string) => {
    logStats.errors++;
    keep('error', `${msg} ${JSON.stringify(obj).slice(0, 120)}`);
  },
};

/** A distinct loopback address per agent (127.0.0.0/8), as agents sharing one machine publish on. */
function publishAddress(globalIndex: number): string {
  const n = globalIndex + 2;
  return `127.${(n >> 16) & 255}.${(n >> 8) & 255}.${n & 255}`;
}

interface SimAgent {
  globalIndex: number;
  name: string;
  identity: NodeIdentity;
  agent: Agent | null;
  cut: boolean;
}

const agents: SimAgent[] = [];
let raw: WebSocket[] = [];
const rawTimers: NodeJS.Timeout[] = [];

async function pool<T>(items: readonly T[], concurrency: number, fn: (item: T) => Promise<void>): Promise<void> {
  let next = 0;
  const worker = async () => {
    while (next < items.length) await fn(items[next++]!);
  };
  await Promise.all(Array.from({ length: Math.max(1, Math.min(concurrency, items.length)) }, worker));
}

async function join(c: Extract<WorkerCommand, { cmd: 'join' }>): Promise<JoinResult> {
  const indexes = Array.from({ length: c.count }, (_, i) => c.firstIndex + i);
  let failed = 0;
  let firstError: string | null = null;
  await pool(indexes, c.concurrency, async (globalIndex) => {
    const name = `sim-${globalIndex}`;
    // The agent's own join call; a hub too busy to answer is retried a few times like main.ts does.
    for (let attempt = 0; ; attempt++) {
      try {
        const identity = await joinHub(c.hubUrl, c.joinToken, name, {});
        agents.push({ globalIndex, name, identity, agent: null, cut: false });
        return;
      } catch (error) {
        if (error instanceof JoinRefusedError || attempt >= 4) {
          failed++;
          firstError ??= (error as Error).message;
          return;
        }
        await new Promise((r) => setTimeout(r, 200 * 2 ** attempt));
      }
    }
  });
  agents.sort((a, b) => a.globalIndex - b.globalIndex);
  return { joined: agents.length, failed, firstError };
}

async function start(): Promise<{ started: number }> {
  // Started in slices, so the process stays responsive (IPC, pongs) while thousands start.
  for (let i = 0; i < agents.length; i += 200) {
    await Promise.all(
      agents.slice(i, i + 200).map(async (a) => {
        if (a.agent) return;
        a.agent = new Agent({
          identity: a.identity,
          name: a.name,
          labels: {},
          advertiseAddress: null,
          publishAddress: publishAddress(a.globalIndex),
          runtime: new SimulatedRuntime({ images: [BENCH_IMAGE] }),
          targetCache: null,
          facts: simulatedFacts(a.name),
          logger,
        });
        await a.agent.start();
      }),
    );
    await new Promise((r) => setImmediate(r));
  }
  return { started: agents.filter((a) => a.agent).length };
}

function status(): AgentStatus {
  let live = 0;
  let ready = 0;
  let connects = 0;
  for (const a of agents) {
    if (!a.agent) continue;
    connects += a.agent.link.connects;
    if (a.cut) continue;
    live++;
    if (a.agent.link.connected) ready++;
  }
  return { live, ready, connects, warnings: logStats.warnings, errors: logStats.errors, messages: Object.fromEntries(logStats.byMessage) };
}

function reported(service: string): { running: number } {
  let running = 0;
  for (const a of agents) {
    if (!a.agent || a.cut) continue;
    for (const r of a.agent.loop.snapshot()) if (r.service === service && r.state === 'running') running++;
  }
  return { running };
}

/** The agent link's socket: a benchmark-only look behind HubLink's private field, to send a ping. */
function socketOf(agent: Agent): WebSocket | null {
  return (agent.link as unknown as { ws: WebSocket | null }).ws;
}

let pingSequence = 0;

/**
 * Sends `framesPerConnection` frames on every connection, one per connection per round (so the
 * server sees many sockets, as from a fleet, not one long stream), then a ping with a unique
 * payload on each: its pong proves the server has read every frame sent before it.
 */
async function burst(sockets: WebSocket[], framesPerConnection: number, sendOne: (i: number) => void): Promise<BurstResult> {
  const startedAtMs = Date.now();
  for (let round = 0; round < framesPerConnection; round++) {
    for (let i = 0; i < sockets.length; i++) sendOne(i);
    await new Promise((r) => setImmediate(r));
  }
  const sentAtMs = Date.now();
  const payload = Buffer.from(`bench-${process.pid}-${++pingSequence}`);
  let missing = sockets.length;
  let doneAtMs = sentAtMs;
  await new Promise<void>((resolve) => {
    const timer = setTimeout(resolve, 120_000);
    if (missing === 0) {
      clearTimeout(timer);
      resolve();
      return;
    }
    for (const ws of sockets) {
      const onPong = (data: Buffer) => {
        if (!data.equals(payload)) return;
        ws.off('pong', onPong);
        doneAtMs = Date.now();
        if (--missing === 0) {
          clearTimeout(timer);
          resolve();
        }
      };
      ws.on('pong', onPong);
      ws.ping(payload);
    }
  });
  return { connections: sockets.length, frames: sockets.length * framesPerConnection, startedAtMs, sentAtMs, doneAtMs, missingPongs: missing };
}

function agentBurst(framesPerConnection: number): Promise<BurstResult> {
  const live = agents.filter((a) => !a.cut && a.agent?.link.connected && socketOf(a.agent));
  const sockets = live.map((a) => socketOf(a.agent!)!);
  // The agent's own send path (encode + ws.send), the frame the hub sees every heartbeat interval.
  return burst(sockets, framesPerConnection, (i) => void live[i]!.agent!.link.send({ type: 'heartbeat' }));
}

async function cut(every: number, service: string): Promise<CutResult> {
  const chosen = agents.filter((a) => a.globalIndex % every === 0 && !a.cut && a.agent);
  let replicas = 0;
  for (const a of chosen) {
    a.cut = true;
    for (const r of a.agent!.loop.snapshot()) if (r.service === service && r.state === 'running') replicas++;
  }
  // As an agent process being stopped would: the link closes (1001), the containers stay.
  await Promise.all(chosen.map((a) => a.agent?.stop()));
  return { nodeIds: chosen.map((a) => a.identity.nodeId), replicas };
}

async function rawConnect(url: string, count: number, heartbeatMs: number): Promise<RawConnectResult> {
  let failed = 0;
  let firstError: string | null = null;
  const opened: WebSocket[] = [];
  const indexes = Array.from({ length: count }, (_, i) => i);
  // Handshakes in flight at once, like agents starting together; the same options as HubLink.
  await pool(indexes, 500, async () => {
    const ws = new WebSocket(url, {
      headers: { authorization: 'Bearer baseline' },
      maxPayload: 32 * 1024 * 1024,
      perMessageDeflate: false,
      handshakeTimeout: 15_000,
    });
    await new Promise<void>((resolve) => {
      ws.once('open', () => {
        opened.push(ws);
        resolve();
      });
      ws.once('error', (error) => {
        failed++;
        firstError ??= error.message;
        resolve();
      });
    });
  });
  for (const ws of opened) {
    ws.on('error', () => undefined);
    // What HubLink does every interval: a heartbeat frame, and a ping only when the server said
    // nothing (no message, no pong) since the previous tick; the phase is random, as it is for
    // agents that connected at different moments.
    let lastServerActivityMs = performance.now();
    let lastTickMs = performance.now();
    const heard = () => (lastServerActivityMs = performance.now());
    ws.on('message', heard);
    ws.on('pong', heard);
    const timer = setTimeout(() => {
      const interval = setInterval(() => {
        if (ws.readyState !== WebSocket.OPEN) return;
        ws.send(HEARTBEAT_FRAME);
        const heardSinceLastTick = lastServerActivityMs > lastTickMs;
        lastTickMs = performance.now();
        if (!heardSinceLastTick) ws.ping();
      }, heartbeatMs);
      rawTimers.push(interval);
    }, Math.random() * heartbeatMs);
    rawTimers.push(timer);
  }
  raw = opened;
  return { opened: opened.length, failed, firstError };
}

async function rawClose(): Promise<{ closed: number }> {
  for (const t of rawTimers) clearTimeout(t);
  rawTimers.length = 0;
  const n = raw.length;
  await Promise.all(
    raw.map(
      (ws) =>
        new Promise<void>((resolve) => {
          if (ws.readyState === WebSocket.CLOSED) return resolve();
          ws.once('close', () => resolve());
          ws.terminate();
        }),
    ),
  );
  raw = [];
  return { closed: n };
}

async function handle(c: WorkerCommand): Promise<unknown> {
  switch (c.cmd) {
    case 'join':
      return join(c);
    case 'start':
      return start();
    case 'status':
      return status();
    case 'reported':
      return reported(c.service);
    case 'burst':
      return agentBurst(c.framesPerConnection);
    case 'cut':
      return cut(c.every, c.service);
    case 'raw-connect':
      return rawConnect(c.url, c.count, c.heartbeatMs);
    case 'raw-burst':
      return burst(raw, c.framesPerConnection, (i) => raw[i]!.send(HEARTBEAT_FRAME));
    case 'raw-close':
      return rawClose();
  }
}

if (!process.send) {
  process.stderr.write('fleet-worker: run by bench/fleet.js over IPC, not by hand\n');
  process.exit(2);
}
process.on('message', (msg: WorkerRequest) => {
  handle(msg).then(
    (result) => process.send!({ id: msg.id, ok: true, result } satisfies WorkerReply),
    (error: unknown) => process.send!({ id: msg.id, ok: false, error: (error as Error).stack ?? String(error) } satisfies WorkerReply),
  );
});
// The parent went away (finished, crashed or killed): nothing here is worth keeping.
process.on('disconnect', () => process.exit(0));
process.send({ id: 0, ok: true, result: 'ready' } satisfies WorkerReply);
