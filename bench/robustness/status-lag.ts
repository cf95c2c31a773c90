#!/usr/bin/env node
/**
 * How long the hub waits to hear of replicas that already run: one agent (the real Agent, its hub
 * link and reconcile loop) on the simulated runtime with a delay on every container start, and a
 * test hub on loopback that sends it one target and timestamps every status and ack frame. Most
 * replicas use an image that is present; a few use one whose pull takes --pull-delay-ms.
 *
 *   node dist/bench/robustness/status-lag.js [--replicas 700] [--slow-replicas 50]
 *     [--start-delay-ms 50] [--pull-delay-ms 10000]
 *
 * Prints one JSON line, times in ms from the target's sending: the first and the last 'running'
 * report at the hub, the lag between a container's start returning and the hub hearing it runs
 * (median, max), the status frames, and each ack (generation, pending, time). Stops by itself
 * once every replica is reported running and the generation is acked with nothing pending, or
 * at its deadline.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import { parseArgs } from 'node:util';
import { WebSocketServer, type WebSocket } from 'ws';
import { Agent } from '../../agent/agent.js';
import type { StartResult } from '../../agent/runtime/container-runtime.js';
import { SimulatedRuntime, simulatedFacts } from '../../agent/runtime/simulated-runtime.js';
import { containerSpecHash, type ContainerSpec } from '../../shared/container-spec.js';
import { AGENT_PATH, PROTOCOL_VERSION, type AgentFrame, type AssignedReplica, type HubFrame } from '../../shared/protocol.js';

const { values } = parseArgs({
  options: {
    replicas: { type: 'string', default: '700' },
    'slow-replicas': { type: 'string', default: '50' },
    'start-delay-ms': { type: 'string', default: '50' },
    'pull-delay-ms': { type: 'string', default: '10000' },
  },
});
const bounded = (v: string | undefined, min: number, max: number) => Math.min(max, Math.max(min, Math.floor(Number(v))));
const REPLICAS = bounded(values.replicas, 1, 5000);
const SLOW_REPLICAS = bounded(values['slow-replicas'], 0, REPLICAS);
const START_DELAY_MS = bounded(values['start-delay-ms'], 0, 1000);
const PULL_DELAY_MS = bounded(values['pull-delay-ms'], 0, 60_000);
const DEADLINE_MS = 170_000;
const NODE_ID = 'node-status-lag';

const deadline = setTimeout(() => {
  process.stderr.write(`status-lag: over ${DEADLINE_MS} ms; stopping\n`);
  process.exit(2);
}, DEADLINE_MS);
deadline.unref();

function replica(i: number, image: string): AssignedReplica {
  const container: ContainerSpec = {
    image,
    command: null,
    env: { INDEX: String(i) },
    ports: [],
    resources: { cpus: null, memoryMB: null },
    labels: {},
    registryAuth: null,
  };
  return { replicaId: `r${i}`, service: 'web', specHash: containerSpecHash(container), container };
}

/**
 * The simulated runtime with every start taking START_DELAY_MS (it has a pull delay, but none for
 * starts); notes when each start returned. A subclass, so it is whatever runtime the agent takes.
 */
class SlowStartRuntime extends SimulatedRuntime {
  readonly startedAtMs = new Map<string, number>();

  override async startContainer(id: string): Promise<StartResult> {
    await sleep(START_DELAY_MS);
    const result = await super.startContainer(id);
    this.startedAtMs.set(id, performance.now());
    return result;
  }
}

const quiet = { info() {}, warn() {}, error() {} };

async function main(): Promise<void> {
  const target = Array.from({ length: REPLICAS }, (_, i) => replica(i, i < REPLICAS - SLOW_REPLICAS ? 'bench/app:1' : 'bench/big:1'));
  const runtime = new SlowStartRuntime({ images: ['bench/app:1'], pullDelayMs: PULL_DELAY_MS });

  let sentAtMs = 0;
  let statusFrames = 0;
  let reports = 0;
  /** First 'running' report per replica: [time, container id]. */
  const runningAt = new Map<string, [number, string]>();
  const acks: Array<{ generation: number; pending: number | null; atMs: number }> = [];
  let done: () => void = () => undefined;
  const finished = new Promise<void>((resolve) => (done = resolve));

  const server = new WebSocketServer({ host: '127.0.0.1', port: 0, path: AGENT_PATH });
  server.on('error', (err) => process.stderr.write(`status-lag: test hub: ${err.message}\n`));
  await new Promise<void>((resolve) => server.once('listening', () => resolve()));
  const port = (server.address() as { port: number }).port;
  server.on('connection', (ws: WebSocket) => {
    ws.on('error', () => undefined);
    const send = (frame: HubFrame) => ws.send(JSON.stringify(frame));
    ws.on('message', (data) => {
      const nowMs = performance.now();
      const frame = JSON.parse(String(data)) as AgentFrame;
      if (frame.type === 'hello') {
        send({ type: 'welcome', protocolVersion: PROTOCOL_VERSION, nodeId: NODE_ID, heartbeatIntervalMs: 5_000 });
        sentAtMs = performance.now();
        send({ type: 'target', generation: 1, replicas: target });
      } else if (frame.type === 'status') {
        statusFrames++;
        reports += frame.replicas.length;
        for (const r of frame.replicas) {
          if (r.state === 'running' && r.containerId && !runningAt.has(r.replicaId)) runningAt.set(r.replicaId, [nowMs, r.containerId]);
        }
      } else if (frame.type === 'ack') {
        acks.push({ generation: frame.generation, pending: frame.pending ?? null, atMs: nowMs });
      }
      if (runningAt.size === REPLICAS && acks.some((a) => a.generation === 1 && !a.pending)) done();
    });
  });

  const agent = new Agent({
    identity: { hubUrl: `http://127.0.0.1:${port}`, nodeId: NODE_ID, credential: 'bench' },
    name: 'status-lag',
    labels: {},
    advertiseAddress: null,
    publishAddress: null,
    runtime,
    targetCache: null,
    facts: simulatedFacts('status-lag'),
    logger: quiet,
    resyncIntervalMs: 3_600_000,
  });
  await agent.start();
  await finished;
  // A moment for anything that would still come (there should be nothing).
  await sleep(500);
  await agent.stop();
  for (const ws of server.clients) ws.terminate();
  server.close();

  const since = (ms: number) => Math.round(ms - sentAtMs);
  const times = [...runningAt.values()].map(([ms]) => ms).sort((a, b) => a - b);
  const lags = [...runningAt.values()].map(([ms, id]) => ms - (runtime.startedAtMs.get(id) ?? ms)).sort((a, b) => a - b);
  const fullAck = acks.find((a) => a.generation === 1 && !a.pending);
  process.stdout.write(
    `${JSON.stringify({
      replicas: REPLICAS,
      slowReplicas: SLOW_REPLICAS,
      startDelayMs: START_DELAY_MS,
      pullDelayMs: PULL_DELAY_MS,
      firstRunningReportMs: since(times[0]!),
      lastRunningReportMs: since(times.at(-1)!),
      runningLagMedianMs: Math.round(lags[Math.floor(lags.length / 2)]!),
      runningLagMaxMs: Math.round(lags.at(-1)!),
      statusFrames,
      reports,
      firstAckMs: acks[0] ? since(acks[0].atMs) : null,
      firstAckPending: acks[0]?.pending ?? null,
      fullAckMs: fullAck ? since(fullAck.atMs) : null,
      acks: acks.map((a) => [a.generation, a.pending, since(a.atMs)]),
    })}\n`,
  );
}

main().then(
  () => process.exit(0),
  (err: unknown) => {
    process.stderr.write(`status-lag: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
    process.exit(1);
  },
);
