/**
 * How long honest agents take to connect while someone floods the hub's handshake pool.
 *
 * A real hub process (default pool: --max-pending-handshakes 256). Three phases, each with the
 * same N honest agents connecting at once from 127.0.0.2 (as agents behind one NAT address would)
 * and retrying as the agent does (a 503's Retry-After times 0.5-1.5, else jittered backoff):
 *   baseline      no flood;
 *   oneCredential an attacker on 127.0.0.1 holds F upgrades open without hello, all under one
 *                 node credential, reopening each one as soon as it is closed or refused;
 *   oneAddress    the same from 127.0.0.1 with F different credentials.
 * Reports, per phase, the time until every honest agent has its welcome (null if not within the
 * phase's limit) and the 503s they met. Loopback only; stops by itself.
 *
 * Usage: node dist/bench/robustness/handshake-flood.js [--agents 50] [--flood 300] [--phase-limit-ms 30000]
 */
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { randomBytes } from 'node:crypto';
import { parseArgs } from 'node:util';
import WebSocket from 'ws';
import { simulatedFacts } from '../../agent/runtime/simulated-runtime.js';
import { AGENT_PATH, PROTOCOL_VERSION } from '../../shared/protocol.js';
import { freePort, killAll, startHub, terminate, type NodeProc } from '../processes.js';

const { values: args } = parseArgs({
  options: { agents: { type: 'string' }, flood: { type: 'string' }, 'phase-limit-ms': { type: 'string' } },
  strict: true,
});
const honestCount = Number(args.agents ?? 50);
const floodCount = Number(args.flood ?? 300);
const phaseLimitMs = Number(args['phase-limit-ms'] ?? 30_000);
/** The attacker's pause before reopening a closed upgrade: a flood, not a busy loop on one core. */
const REOPEN_DELAY_MS = 20;

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

interface Credential {
  nodeId: string;
  credential: string;
}

async function joinNodes(url: string, adminToken: string, prefix: string, count: number): Promise<Credential[]> {
  const out: Credential[] = [];
  for (let i = 0; i < count; i++) {
    const tokenRes = await fetch(`${url}/v1/join-tokens`, {
      method: 'POST',
      headers: { authorization: `Bearer ${adminToken}`, 'content-type': 'application/json' },
      body: '{}',
    });
    const { token } = (await tokenRes.json()) as { token: string };
    const joinRes = await fetch(`${url}/v1/join`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ joinToken: token, name: `${prefix}-${i}` }),
    });
    if (joinRes.status !== 201) throw new Error(`join failed: ${joinRes.status} ${await joinRes.text()}`);
    out.push((await joinRes.json()) as Credential);
  }
  return out;
}

/** Holds `count` upgrades open without hello, reopening each when the hub closes or refuses it. */
function flood(port: number, credentials: Credential[], count: number): { stop: () => void; opened: () => number } {
  let stopped = false;
  let opened = 0;
  const sockets = new Set<net.Socket>();
  const open = (i: number) => {
    if (stopped) return;
    const cred = credentials[i % credentials.length]!;
    const socket = net.connect({ host: '127.0.0.1', port, localAddress: '127.0.0.1' });
    sockets.add(socket);
    opened++;
    socket.on('error', () => undefined);
    socket.on('data', () => undefined);
    socket.once('connect', () =>
      socket.write(
        `GET ${AGENT_PATH} HTTP/1.1\r\nHost: hub\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n` +
          `Sec-WebSocket-Key: ${randomBytes(16).toString('base64')}\r\nSec-WebSocket-Version: 13\r\n` +
          `Authorization: Bearer ${cred.credential}\r\n\r\n`,
      ),
    );
    socket.once('close', () => {
      sockets.delete(socket);
      setTimeout(() => open(i), REOPEN_DELAY_MS);
    });
  };
  for (let i = 0; i < count; i++) open(i);
  return {
    stop: () => {
      stopped = true;
      for (const s of sockets) s.destroy();
    },
    opened: () => opened,
  };
}

/** One honest agent: connects until welcomed, retrying like the agent; resolves with its 503 count. */
function honestAgent(port: number, cred: Credential, deadlineMs: number, live: Set<WebSocket>): Promise<{ welcomedAtMs: number | null; refused: number }> {
  let refused = 0;
  let backoffMs = 500;
  return new Promise((resolve) => {
    const attempt = () => {
      if (performance.now() > deadlineMs) return resolve({ welcomedAtMs: null, refused });
      const ws = new WebSocket(`ws://127.0.0.1:${port}${AGENT_PATH}`, {
        headers: { authorization: `Bearer ${cred.credential}` },
        localAddress: '127.0.0.2',
        perMessageDeflate: false,
        handshakeTimeout: 15_000,
      });
      live.add(ws);
      let retryInMs: number | null = null;
      let welcomed = false;
      ws.on('error', () => undefined);
      ws.once('open', () =>
        ws.send(
          JSON.stringify({
            type: 'hello',
            protocolVersion: PROTOCOL_VERSION,
            name: cred.nodeId,
            labels: {},
            advertiseAddress: null,
            facts: simulatedFacts(cred.nodeId),
            appliedGeneration: 0,
            replicas: [],
          }),
        ),
      );
      ws.once('message', (data) => {
        if ((JSON.parse(data.toString()) as { type: string }).type !== 'welcome') return;
        welcomed = true;
        resolve({ welcomedAtMs: performance.now(), refused });
      });
      ws.once('unexpected-response', (_req, res) => {
        if (res.statusCode === 503) {
          refused++;
          const retryAfterS = Number(res.headers['retry-after']);
          if (Number.isInteger(retryAfterS) && retryAfterS > 0) retryInMs = retryAfterS * 1000 * (0.5 + Math.random());
        }
        res.resume();
        ws.terminate();
      });
      ws.once('close', () => {
        live.delete(ws);
        if (welcomed) return;
        const delayMs = retryInMs ?? Math.random() * backoffMs;
        if (retryInMs === null) backoffMs = Math.min(30_000, backoffMs * 2);
        setTimeout(attempt, delayMs);
      });
    };
    attempt();
  });
}

async function phase(port: number, honest: Credential[]): Promise<{ allWelcomedMs: number | null; welcomed: number; honest503s: number; p50Ms: number | null }> {
  const live = new Set<WebSocket>();
  const startMs = performance.now();
  const results = await Promise.all(honest.map((c) => honestAgent(port, c, startMs + phaseLimitMs, live)));
  const times = results.map((r) => r.welcomedAtMs).filter((t): t is number => t !== null).map((t) => t - startMs).sort((a, b) => a - b);
  for (const ws of live) ws.terminate();
  return {
    allWelcomedMs: times.length === honest.length ? Math.round(times.at(-1)!) : null,
    welcomed: times.length,
    honest503s: results.reduce((n, r) => n + r.refused, 0),
    p50Ms: times.length ? Math.round(times[Math.floor(times.length / 2)]!) : null,
  };
}

async function main(): Promise<void> {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'tether-flood-'));
  const port = await freePort();
  const url = `http://127.0.0.1:${port}`;
  let hub: NodeProc | null = null;
  // Bounded however it goes.
  const guard = setTimeout(() => {
    process.stderr.write('handshake-flood: overall time limit reached\n');
    killAll();
    process.exit(1);
  }, 4 * phaseLimitMs + 120_000);
  guard.unref();
  try {
    hub = await startHub(url, { args: ['--port', String(port), '--data-dir', dir, '--log-level', 'error'], logFile: path.join(dir, 'hub.log'), inspect: false });
    const adminToken = (await readFile(path.join(dir, 'admin-token'), 'utf8')).trim();
    const honest = await joinNodes(url, adminToken, 'honest', honestCount);
    const [stolen] = await joinNodes(url, adminToken, 'stolen', 1);
    const many = await joinNodes(url, adminToken, 'flood', floodCount);

    const baseline = await phase(port, honest);
    await sleep(500);

    const attackA = flood(port, [stolen!], floodCount);
    await sleep(2000);
    const oneCredential = await phase(port, honest);
    attackA.stop();
    await sleep(1000);

    const attackB = flood(port, many, floodCount);
    await sleep(2000);
    const oneAddress = await phase(port, honest);
    attackB.stop();

    const alive = hub.child.exitCode === null && hub.child.signalCode === null;
    process.stdout.write(
      `${JSON.stringify({
        bench: 'handshake-flood',
        honestAgents: honestCount,
        floodUpgrades: floodCount,
        reopenDelayMs: REOPEN_DELAY_MS,
        phaseLimitMs,
        baseline,
        oneCredential: { ...oneCredential, attackerUpgradesOpened: attackA.opened() },
        oneAddress: { ...oneAddress, attackerUpgradesOpened: attackB.opened() },
        hubAlive: alive,
      })}\n`,
    );
  } finally {
    await terminate(hub);
    killAll();
    await rm(dir, { recursive: true, force: true });
  }
}

main().then(
  () => process.exit(0),
  (error: unknown) => {
    process.stderr.write(`handshake-flood: ${(error as Error).stack ?? String(error)}\n`);
    killAll();
    process.exit(1);
  },
);
