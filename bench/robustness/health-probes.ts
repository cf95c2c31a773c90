/**
 * What the agent's own health probes cost a node with many checked containers: CONTAINERS http
 * checks at INTERVAL_MS against one loopback server that answers each try after SERVER_DELAY_MS
 * (a slow service), run by the real HealthMonitor for RUN_MS. Shows the bound on tries in flight
 * holding (the server never sees more connections at once than HEALTH_PROBES_IN_FLIGHT_MAX), that
 * no socket outlives its try, and the memory the checks take. Loopback only, stops by itself.
 *
 *   node dist/bench/robustness/health-probes.js
 *
 * Prints one JSON line.
 */
import http from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import { performance } from 'node:perf_hooks';
import { HEALTH_PROBES_IN_FLIGHT_MAX, HealthMonitor } from '../../agent/health/health-monitor.js';
import type { ObservedContainer } from '../../agent/runtime/container-runtime.js';
import type { HealthCheck } from '../../shared/container-spec.js';

const CONTAINERS = 1_000;
const INTERVAL_MS = 500;
const SERVER_DELAY_MS = 20;
const RUN_MS = 5_000;

async function main(): Promise<void> {
  let open = 0;
  let mostOpen = 0;
  let answered = 0;
  const sockets = new Set<Socket>();
  const server = http.createServer((_req, res) => {
    setTimeout(() => {
      answered++;
      res.writeHead(200).end('ok');
    }, SERVER_DELAY_MS);
  });
  server.on('connection', (s) => {
    sockets.add(s);
    mostOpen = Math.max(mostOpen, ++open);
    s.on('close', () => {
      open--;
      sockets.delete(s);
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', () => resolve()));
  const port = (server.address() as AddressInfo).port;

  const check: HealthCheck = {
    type: 'http',
    port,
    path: '/',
    statusMin: 200,
    statusMax: 399,
    command: null,
    intervalMs: INTERVAL_MS,
    timeoutMs: INTERVAL_MS,
    retries: 3,
    startPeriodMs: 0,
  };
  const containers: ObservedContainer[] = Array.from({ length: CONTAINERS }, (_, i) => ({
    id: `c${i}`,
    name: `c${i}`,
    replicaId: `r${i}`,
    service: 'web',
    specHash: 'a',
    state: 'running',
    exitCode: null,
    restartCount: 0,
    error: null,
    healthCheck: check,
    address: '127.0.0.1',
  }));

  let changes = 0;
  global.gc?.();
  const rssBefore = process.memoryUsage().rss;
  const monitor = new HealthMonitor({ onChange: () => changes++ });
  const startedAt = performance.now();
  monitor.track(containers);
  await new Promise((resolve) => setTimeout(resolve, RUN_MS));
  const healthy = containers.filter((c) => monitor.healthOf(c.id)?.status === 'healthy').length;
  const rssAfter = process.memoryUsage().rss;
  monitor.close();
  const elapsedS = (performance.now() - startedAt) / 1000;
  // Tries in flight at close finish on their own; their sockets close with them.
  await new Promise((resolve) => setTimeout(resolve, INTERVAL_MS + SERVER_DELAY_MS * 2));
  const socketsLeft = sockets.size;
  await new Promise<void>((resolve) => server.close(() => resolve()));

  console.log(
    JSON.stringify({
      containers: CONTAINERS,
      intervalMs: INTERVAL_MS,
      serverDelayMs: SERVER_DELAY_MS,
      runMs: RUN_MS,
      inFlightBound: HEALTH_PROBES_IN_FLIGHT_MAX,
      mostConnectionsAtOnce: mostOpen,
      triesAnswered: answered,
      triesPerS: Math.round(answered / elapsedS),
      healthyAtEnd: healthy,
      healthChanges: changes,
      socketsLeftAfterClose: socketsLeft,
      rssGrowthMiB: Math.round(((rssAfter - rssBefore) / 1024 / 1024) * 10) / 10,
    }),
  );
}

void main();
