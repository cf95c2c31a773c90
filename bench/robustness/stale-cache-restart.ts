#!/usr/bin/env node
/**
 * Containers removed after a stale-cache restart (goal 0): the real hub (dist/hub/main.js, data
 * dir in a temp dir) and the real agent (dist/agent/main.js) on the real Docker engine, the
 * agent's data dir on a small tmpfs. Each round:
 *   1. the service runs at version 1 (2 replicas of tether-test/busybox:1) and the agent has
 *      cached that target;
 *   2. the tmpfs is filled, so the agent cannot cache what comes next;
 *   3. the service moves to tether-test/busybox:2 (and, every other round, to 3 replicas); the
 *      agent runs it from a target it could not cache;
 *   4. the hub is SIGKILLed, then the agent is SIGKILLed and started again while the hub is away
 *      (the disk stays full in even rounds, is freed in odd ones): its cache is older than what
 *      runs;
 *   5. the engine is watched for --watch-ms: containers of the service that were running before
 *      and are removed, stopped, or replaced (a new id, or the same id started again) are counted;
 *   6. the hub is started again, and the round converges when the hub shows every replica of the
 *      service running with version 2 and the engine runs that many version 2 containers.
 *
 *   node dist/bench/robustness/stale-cache-restart.js [--rounds 3] [--watch-ms 15000]
 *        [--dist DIR]   (another build's dist/, to measure an older hub and agent)
 *
 * Needs root (mount) and the Docker CLI with the local images tether-test/busybox:1 and :2
 * (scripts/test-env.sh). Loopback only; bounded in time (under 3 minutes) and in count. Prints
 * one JSON line; removes every container it made (labelled with a node and service of this run
 * only), unmounts and removes its directories.
 */
import { spawn, execFile, execFileSync, type ChildProcess } from 'node:child_process';
import { mkdir, mkdtemp, readFile, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs, promisify } from 'node:util';
import { fillDisk, SmallDisk } from './small-disk.js';

const { values } = parseArgs({
  options: {
    rounds: { type: 'string', default: '3' },
    'watch-ms': { type: 'string', default: '15000' },
    dist: { type: 'string' },
  },
});
const ROUNDS = Math.min(5, Math.max(1, Number(values.rounds)));
const WATCH_MS = Math.min(30_000, Math.max(2_000, Number(values['watch-ms'])));
const DIST = path.resolve(values.dist ?? path.join(path.dirname(fileURLToPath(import.meta.url)), '../..'));
const HUB_MAIN = path.join(DIST, 'hub/main.js');
const AGENT_MAIN = path.join(DIST, 'agent/main.js');
/** The whole run, whatever happens. */
const DEADLINE_MS = 175_000;
/** The agent's files are a few KB; a few MB fill in an instant. */
const TMPFS_SIZE = '2m';
const WAIT_MS = 30_000;
/** The agent's reconnect delay may have grown to its cap while the hub was away. */
const CONVERGE_TIMEOUT_MS = 40_000;
const POLL_MS = 250;
const REQUEST_TIMEOUT_MS = 5_000;
const IMAGE_V1 = 'tether-test/busybox:1';
const IMAGE_V2 = 'tether-test/busybox:2';
const LABEL_NODE = 'io.tether.node-id';
const LABEL_SERVICE = 'io.tether.service';

const run = `${process.pid}-${Date.now().toString(36)}`;
const SERVICE = `scr-${run}`;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const log = (text: string) => process.stderr.write(`[stale-cache ${new Date().toISOString().slice(11, 19)}] ${text}\n`);
const execFileAsync = promisify(execFile);

let tempDir = '';
let mountDir = '';
let disk: SmallDisk | null = null;
let nodeId = '';
const children = new Set<ChildProcess>();

function startProgram(main: string, args: string[], name: string): ChildProcess {
  const child = spawn(process.execPath, [main, ...args], { stdio: ['ignore', 'ignore', 'pipe'] });
  children.add(child);
  let err = '';
  child.stderr!.on('data', (chunk: Buffer) => (err = (err + chunk.toString()).slice(-4_000)));
  child.once('exit', (code, signal) => {
    children.delete(child);
    if (signal !== 'SIGKILL' && code !== 0) log(`${name} exited with ${code ?? signal}: ${err.trim().split('\n').slice(-3).join(' | ')}`);
  });
  return child;
}

async function kill(child: ChildProcess | null): Promise<void> {
  if (!child || child.exitCode !== null || child.signalCode !== null) return;
  const exited = new Promise((r) => child.once('exit', r));
  child.kill('SIGKILL');
  await exited;
}

async function waitUntil<T>(what: string, timeoutMs: number, probe: () => Promise<T | undefined>): Promise<T> {
  const startedMs = performance.now();
  while (performance.now() - startedMs < timeoutMs) {
    try {
      const value = await probe();
      if (value !== undefined) return value;
    } catch {
      // Not there yet (not listening, not joined).
    }
    await sleep(POLL_MS);
  }
  throw new Error(`${what}: not within ${timeoutMs} ms`);
}

interface Container {
  id: string;
  running: boolean;
  startedAt: string;
  image: string;
}

/** The containers of this run's service on this run's node, as the engine shows them. */
async function containers(): Promise<Container[]> {
  const { stdout } = await execFileAsync('docker', ['ps', '-aq', '--no-trunc', '--filter', `label=${LABEL_NODE}=${nodeId}`, '--filter', `label=${LABEL_SERVICE}=${SERVICE}`]);
  const ids = stdout.split('\n').filter(Boolean);
  if (ids.length === 0) return [];
  try {
    const { stdout: json } = await execFileAsync('docker', ['inspect', ...ids], { maxBuffer: 16 * 1024 * 1024 });
    return (JSON.parse(json) as any[]).map((c) => ({ id: c.Id, running: c.State.Running === true, startedAt: c.State.StartedAt, image: c.Config.Image }));
  } catch {
    // One was removed between the listing and the inspect: list again.
    return containers();
  }
}

async function cleanup(): Promise<void> {
  await Promise.all([...children].map((c) => kill(c).catch(() => undefined)));
  if (nodeId) {
    try {
      const ids = execFileSync('docker', ['ps', '-aq', '--filter', `label=${LABEL_NODE}=${nodeId}`]).toString().split('\n').filter(Boolean);
      if (ids.length > 0) execFileSync('docker', ['rm', '-f', ...ids], { stdio: 'ignore' });
    } catch (error) {
      log(`removing the containers of node ${nodeId} failed: ${(error as Error).message}`);
    }
  }
  const unmounted = disk?.unmount(log) ?? true;
  if (tempDir && unmounted) await rm(tempDir, { recursive: true, force: true });
}

/** Fills the filesystem (see fillDisk). */
const fill = (file: string): Promise<void> => fillDisk(file, 8 * 1024 * 1024);

async function main(): Promise<void> {
  if (process.getuid?.() !== 0) throw new Error('needs root: it mounts a tmpfs');
  const deadline = setTimeout(() => {
    log('deadline passed, giving up');
    void cleanup().finally(() => process.exit(2));
  }, DEADLINE_MS);
  deadline.unref();
  const startedMs = performance.now();

  tempDir = await mkdtemp(path.join(os.tmpdir(), 'tether-bench-stale-cache-'));
  mountDir = path.join(tempDir, 'agent-disk');
  await mkdir(mountDir);
  disk = new SmallDisk(mountDir, TMPFS_SIZE);
  disk.mount();
  const hubDir = path.join(tempDir, 'hub');
  const agentDir = path.join(mountDir, 'agent');
  const filler = path.join(mountDir, 'filler');
  const port = 20_000 + Math.floor(Math.random() * 20_000);
  const url = `http://127.0.0.1:${port}`;
  const hubArgs = ['--insecure-http', '--host', '127.0.0.1', '--port', String(port), '--data-dir', hubDir];
  let hub: ChildProcess | null = startProgram(HUB_MAIN, hubArgs, 'hub');
  const healthy = () => waitUntil('hub healthy', WAIT_MS, async () => ((await fetch(`${url}/healthz`, { signal: AbortSignal.timeout(1_000) })).ok ? true : undefined));
  await healthy();
  const token = (await readFile(path.join(hubDir, 'admin-token'), 'utf8')).trim();
  const api = async (method: string, route: string, body?: unknown): Promise<{ status: number; body: any }> => {
    const res = await fetch(`${url}${route}`, {
      method,
      headers: { authorization: `Bearer ${token}`, ...(body === undefined ? {} : { 'content-type': 'application/json' }) },
      body: body === undefined ? undefined : JSON.stringify(body),
      signal: AbortSignal.timeout(REQUEST_TIMEOUT_MS),
    });
    const text = await res.text();
    return { status: res.status, body: text ? JSON.parse(text) : undefined };
  };

  const joinToken = (await api('POST', '/v1/join-tokens', {})).body.token as string;
  const nodeName = `scr-${run}`;
  const agentArgs = ['--data-dir', agentDir];
  let agent: ChildProcess | null = startProgram(AGENT_MAIN, ['--hub', url, '--join-token', joinToken, '--name', nodeName, ...agentArgs], 'agent');
  nodeId = await waitUntil('node ready', WAIT_MS, async () => {
    const nodes = (await api('GET', '/v1/nodes')).body.nodes as Array<{ id: string; name: string; state: string }>;
    return nodes.find((n) => n.name === nodeName && n.state === 'ready')?.id;
  });

  const command = ['sleep', '3600'];
  /** The engine runs exactly `replicas` containers of the service, all with `image`. */
  const engineRuns = async (image: string, replicas: number) => {
    const list = (await containers()).filter((c) => c.running);
    return list.length === replicas && list.every((c) => c.image === image) ? list : undefined;
  };
  /** The hub shows every replica of the service running with `image`. */
  const hubShows = async (image: string, replicas: number) => {
    const view = (await api('GET', `/v1/services/${SERVICE}`)).body;
    return view?.spec?.image === image && view.status.desired === replicas && view.status.running === replicas ? true : undefined;
  };

  const rounds: Array<Record<string, unknown>> = [];
  let containersBefore = 0;
  let removed = 0;
  let stopped = 0;
  let replaced = 0;
  let changedAfterHub = 0;
  let converged = 0;
  for (let round = 0; round < ROUNDS; round++) {
    const roundStartMs = performance.now();
    const diskFullAtRestart = round % 2 === 0;
    const scaled = round % 2 === 1;
    const marker = `${run}-${round}`;
    // 1. Version 1 runs, and its target is cached (the marker is in the cache file).
    await rm(filler, { force: true });
    const v1 = { image: IMAGE_V1, command, replicas: 2, env: { ROUND: marker } };
    const put1 = await api('PUT', `/v1/services/${SERVICE}`, v1);
    if (put1.status >= 300) throw new Error(`PUT version 1 answered ${put1.status}: ${JSON.stringify(put1.body)}`);
    await waitUntil('version 1 running', WAIT_MS, () => engineRuns(IMAGE_V1, 2));
    await waitUntil('version 1 cached', WAIT_MS, async () => ((await readFile(path.join(agentDir, 'target.json'), 'utf8')).includes(marker) ? true : undefined));
    await waitUntil('version 1 shown', WAIT_MS, () => hubShows(IMAGE_V1, 2));

    // 2 and 3. The disk fills; version 2 comes and runs from a target the agent cannot cache.
    await fill(filler);
    const replicas = scaled ? 3 : 2;
    const put2 = await api('PUT', `/v1/services/${SERVICE}`, { ...v1, image: IMAGE_V2, replicas });
    if (put2.status >= 300) throw new Error(`PUT version 2 answered ${put2.status}: ${JSON.stringify(put2.body)}`);
    await waitUntil('version 2 running', WAIT_MS, () => engineRuns(IMAGE_V2, replicas));
    await waitUntil('version 2 shown', WAIT_MS, () => hubShows(IMAGE_V2, replicas));
    const cacheStale = !(await readFile(path.join(agentDir, 'target.json'), 'utf8').catch(() => '')).includes(IMAGE_V2);

    // 4. The hub goes away; the agent restarts without it.
    await kill(hub);
    hub = null;
    await kill(agent);
    if (!diskFullAtRestart) await rm(filler, { force: true });
    const before = new Map((await containers()).filter((c) => c.running).map((c) => [c.id, c.startedAt]));
    agent = startProgram(AGENT_MAIN, agentArgs, 'agent');

    // 5. What the engine does to them while the hub is away.
    const gone = new Set<string>();
    const halted = new Set<string>();
    const fresh = new Set<string>();
    const watchEndMs = performance.now() + WATCH_MS;
    while (performance.now() < watchEndMs) {
      const seen = new Map((await containers()).map((c) => [c.id, c]));
      for (const [id, startedAt] of before) {
        const c = seen.get(id);
        if (!c) gone.add(id);
        else if (!c.running) halted.add(id);
        else if (c.startedAt !== startedAt) fresh.add(id);
      }
      for (const id of seen.keys()) if (!before.has(id)) fresh.add(id);
      await sleep(POLL_MS);
    }

    // 6. The hub returns: the node converges on version 2.
    await rm(filler, { force: true });
    const hubBackMs = performance.now();
    hub = startProgram(HUB_MAIN, hubArgs, 'hub');
    let convergeMs: number | null = null;
    try {
      await healthy();
      await waitUntil('converged', CONVERGE_TIMEOUT_MS, async () => ((await hubShows(IMAGE_V2, replicas)) && (await engineRuns(IMAGE_V2, replicas)) ? true : undefined));
      convergeMs = Math.round(performance.now() - hubBackMs);
      converged++;
    } catch (error) {
      log(`round ${round}: ${(error as Error).message}`);
    }
    const after = new Map((await containers()).filter((c) => c.running).map((c) => [c.id, c.startedAt]));
    const changed = [...before].filter(([id, startedAt]) => after.get(id) !== startedAt).length;

    containersBefore += before.size;
    removed += gone.size;
    stopped += halted.size;
    replaced += fresh.size;
    changedAfterHub += changed;
    rounds.push({
      round,
      diskFullAtRestart,
      replicas,
      cacheStale,
      containersBefore: before.size,
      removed: gone.size,
      stopped: halted.size,
      replaced: fresh.size,
      changedAfterHub: changed,
      convergeMs,
      roundMs: Math.round(performance.now() - roundStartMs),
    });
  }

  const result = {
    bench: 'stale-cache-restart',
    dist: values.dist === undefined ? 'this build' : DIST,
    rounds: ROUNDS,
    watchMs: WATCH_MS,
    tmpfs: TMPFS_SIZE,
    containersBefore,
    removed,
    stopped,
    replaced,
    changedAfterHub,
    convergedRounds: converged,
    totalMs: Math.round(performance.now() - startedMs),
    perRound: rounds,
  };
  process.stdout.write(`${JSON.stringify(result)}\n`);
}

main()
  .then(cleanup)
  .then(
    () => process.exit(0),
    (error: unknown) => {
      log(`failed: ${(error as Error).message}`);
      return cleanup().finally(() => process.exit(1));
    },
  );
