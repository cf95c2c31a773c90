#!/usr/bin/env node
/**
 * Hub memory under a status flood: one node's credential sends status frames full of replica ids
 * the hub never assigned to it (each frame at the protocol's limit of entries). Measures the hub
 * process's RSS idle (the same-run baseline), at its peak during the flood, after the flood, and
 * after the flooding node has left, plus what the hub counted as refused.
 *
 *   node dist/bench/robustness/status-flood.js [--frames 200]
 *
 * A real hub process on loopback; stops by itself within its deadline. Prints one JSON line.
 */
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import WebSocket from 'ws';
import { AGENT_PATH, PROTOCOL_LIMITS, PROTOCOL_VERSION } from '../../shared/protocol.js';
import { rssBytes } from '../proc-stats.js';
import { freePort, killAll, startHub, terminate } from '../processes.js';

const { values } = parseArgs({ options: { frames: { type: 'string', default: '200' } } });
const FRAMES = Math.min(2000, Math.max(1, Number(values.frames)));
const DEADLINE_MS = 180_000;
const MiB = 1024 * 1024;

const deadline = setTimeout(() => {
  process.stderr.write(`status-flood: over ${DEADLINE_MS} ms; stopping\n`);
  killAll();
  process.exit(2);
}, DEADLINE_MS);
deadline.unref();

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function main(): Promise<void> {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'tether-flood-'));
  const port = await freePort();
  const url = `http://127.0.0.1:${port}`;
  const hub = await startHub(url, { args: ['--port', String(port), '--data-dir', path.join(dir, 'hub'), '--log-level', 'warn'], logFile: path.join(dir, 'hub.log'), inspect: false });
  try {
    const admin = (await readFile(path.join(dir, 'hub', 'admin-token'), 'utf8')).trim();
    const api = async (method: string, route: string, body?: unknown) => {
      const res = await fetch(`${url}${route}`, {
        method,
        headers: { authorization: `Bearer ${admin}`, ...(body === undefined ? {} : { 'content-type': 'application/json' }) },
        body: body === undefined ? undefined : JSON.stringify(body),
      });
      return res.headers.get('content-type')?.includes('json') ? res.json() : res.text();
    };
    const { token } = (await api('POST', '/v1/join-tokens', {})) as { token: string };
    const joinRes = await fetch(`${url}/v1/join`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ joinToken: token, name: 'flooder' }) });
    const { credential } = (await joinRes.json()) as { credential: string };

    const ws = new WebSocket(`ws://127.0.0.1:${port}${AGENT_PATH}`, { headers: { authorization: `Bearer ${credential}` } });
    ws.on('error', () => undefined);
    await new Promise<void>((resolve, reject) => {
      ws.once('open', () => resolve());
      ws.once('error', reject);
    });
    const facts = { hostname: 'flooder', os: 'linux', osRelease: '6', arch: 'x64', cpus: 2, memoryBytes: 2 ** 31, diskBytes: 2 ** 34, diskFreeBytes: 2 ** 33, agentVersion: 'bench', runtime: 'none' };
    ws.send(JSON.stringify({ type: 'hello', protocolVersion: PROTOCOL_VERSION, name: 'flooder', labels: {}, advertiseAddress: null, facts, appliedGeneration: 0, replicas: [] }));
    await sleep(1000);

    const samples: number[] = [];
    for (let i = 0; i < 5; i++) {
      samples.push(rssBytes(hub.pid) ?? 0);
      await sleep(200);
    }
    const idleRss = Math.max(...samples);

    let peakRss = idleRss;
    const sampler = setInterval(() => (peakRss = Math.max(peakRss, rssBytes(hub.pid) ?? 0)), 100);
    const startedMs = performance.now();
    let bytesSent = 0;
    for (let f = 0; f < FRAMES; f++) {
      const replicas = Array.from({ length: PROTOCOL_LIMITS.maxReportedReplicas }, (_, i) => ({
        replicaId: `forged-${f}-${i}`,
        service: 'web',
        state: 'running',
        specHash: 'f'.repeat(16),
        containerId: 'c'.repeat(64),
        error: null,
        restarts: 0,
      }));
      const frame = JSON.stringify({ type: 'status', replicas });
      bytesSent += frame.length;
      // Wait for each frame to leave: the flood goes at the pace the hub reads it.
      await new Promise<void>((resolve, reject) => ws.send(frame, (err) => (err ? reject(err) : resolve())));
    }
    // A heartbeat round trip would need a reply; the refused count says when the hub has read all.
    const wanted = FRAMES * PROTOCOL_LIMITS.maxReportedReplicas;
    let refused = 0;
    while (refused < wanted && performance.now() - startedMs < DEADLINE_MS - 30_000) {
      const metrics = (await api('GET', '/metrics')) as string;
      refused = [...metrics.matchAll(/^tether_replica_reports_refused_total\{reason="\w+"\} (\d+)/gm)].reduce((n, m) => n + Number(m[1]), 0);
      if (refused < wanted) await sleep(200);
    }
    const floodS = (performance.now() - startedMs) / 1000;
    clearInterval(sampler);
    await sleep(2000);
    const afterRss = rssBytes(hub.pid) ?? 0;
    ws.close();
    await sleep(3000);
    const afterLeaveRss = rssBytes(hub.pid) ?? 0;
    const metrics = (await api('GET', '/metrics')) as string;
    const observed = Number(/^tether_observed_replicas (\d+)/m.exec(metrics)?.[1] ?? -1);
    const healthy = (await fetch(`${url}/healthz`)).ok;
    process.stdout.write(
      `${JSON.stringify({
        bench: 'status-flood',
        frames: FRAMES,
        reportsSent: wanted,
        mibSent: Math.round(bytesSent / MiB),
        floodS: Number(floodS.toFixed(1)),
        reportsRefused: refused,
        observedReplicasHeld: observed,
        hubRssMiB: {
          idle: Math.round(idleRss / MiB),
          peakDuringFlood: Math.round(peakRss / MiB),
          afterFlood: Math.round(afterRss / MiB),
          afterNodeLeft: Math.round(afterLeaveRss / MiB),
        },
        hubHealthyAfter: healthy,
      })}\n`,
    );
  } finally {
    await terminate(hub);
    await rm(dir, { recursive: true, force: true });
  }
}

main().then(
  () => process.exit(0),
  (error: unknown) => {
    process.stderr.write(`status-flood: ${(error as Error).stack ?? String(error)}\n`);
    killAll();
    process.exit(1);
  },
);
