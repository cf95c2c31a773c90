#!/usr/bin/env node
/**
 * Writes acknowledged vs persisted under a full disk: the real hub (dist/hub/main.js) with its
 * data directory on a small tmpfs, concurrent API writers (PUT and DELETE of services, each
 * writer on names of its own so that the order per name is known), while the disk is filled and
 * freed a few times; the last fill stays while the hub is SIGKILLed. Then it is started again on
 * the same directory (with space back), and every response is checked against what it loaded:
 *   - an acknowledged PUT (2xx, revision R) must be there with revision >= R, unless a later
 *     acknowledged DELETE of its name took it (goal: none lost);
 *   - an acknowledged DELETE must have left its name absent, unless a later acknowledged PUT
 *     created it again;
 *   - a refused PUT (507/503) must not be there: each PUT carries a sequence number in its env,
 *     so the one the hub loaded is known exactly (goal: none appear);
 *   - a refused DELETE must not have taken a name whose last acknowledged write was a PUT.
 * Also: what the hub showed just before the kill equals what it loaded after.
 *
 *   node dist/bench/robustness/full-disk.js [--writers 8] [--duration-ms 15000] [--fills 4]
 *
 * Needs root (mount). Loopback only; bounded in time (under 60 s) and in count. Prints one JSON
 * line; unmounts and removes what it made.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { fillDisk, SmallDisk } from './small-disk.js';

const { values } = parseArgs({
  options: {
    writers: { type: 'string', default: '8' },
    'duration-ms': { type: 'string', default: '15000' },
    fills: { type: 'string', default: '4' },
    'names-per-writer': { type: 'string', default: '4' },
  },
});
const WRITERS = Math.min(32, Math.max(1, Number(values.writers)));
const DURATION_MS = Math.min(30_000, Math.max(2_000, Number(values['duration-ms'])));
const FILLS = Math.min(10, Math.max(1, Number(values.fills)));
const NAMES_PER_WRITER = Math.min(16, Math.max(1, Number(values['names-per-writer'])));
/** Requests per writer at most, whatever the duration. */
const MAX_REQUESTS_PER_WRITER = 5_000;
/** The whole run, whatever happens. */
const DEADLINE_MS = 58_000;
/** Small: a few MB fill in an instant, and the hub's files are a few hundred KB at most. */
const TMPFS_SIZE = '4m';
const REQUEST_TIMEOUT_MS = 10_000;

const HUB_MAIN = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../hub/main.js');
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const log = (text: string) => process.stderr.write(`[full-disk ${new Date().toISOString().slice(11, 19)}] ${text}\n`);

type Op =
  | { kind: 'put'; name: string; seq: number; status: number; revision: number | null }
  | { kind: 'delete'; name: string; seq: number; status: number };

let mountDir = '';
let disk: SmallDisk | null = null;
let hub: ChildProcess | null = null;

function startHub(dataDir: string, port: number): ChildProcess {
  const child = spawn(process.execPath, [HUB_MAIN, '--insecure-http', '--host', '127.0.0.1', '--port', String(port), '--data-dir', dataDir], {
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  let err = '';
  child.stderr!.on('data', (chunk: Buffer) => (err = (err + chunk.toString()).slice(-4_000)));
  child.once('exit', (code, signal) => {
    if (signal !== 'SIGKILL' && code !== 0) log(`hub exited with ${code ?? signal}: ${err.trim().split('\n').slice(-3).join(' | ')}`);
  });
  return child;
}

async function waitHealthy(url: string, timeoutMs: number): Promise<number> {
  const startedMs = performance.now();
  while (performance.now() - startedMs < timeoutMs) {
    try {
      if ((await fetch(`${url}/healthz`, { signal: AbortSignal.timeout(1_000) })).ok) return performance.now() - startedMs;
    } catch {
      // Not listening yet.
    }
    await sleep(50);
  }
  throw new Error(`hub not healthy within ${timeoutMs} ms`);
}

async function killHub(): Promise<void> {
  const child = hub;
  hub = null;
  if (!child || child.exitCode !== null || child.signalCode !== null) return;
  const exited = new Promise((r) => child.once('exit', r));
  child.kill('SIGKILL');
  await exited;
}

async function cleanup(): Promise<void> {
  await killHub().catch(() => undefined);
  const unmounted = disk?.unmount(log) ?? true;
  if (mountDir && unmounted) await rm(mountDir, { recursive: true, force: true });
}

/** Fills the filesystem (see fillDisk). */
const fill = (file: string): Promise<void> => fillDisk(file, 16 * 1024 * 1024);

async function main(): Promise<void> {
  if (process.getuid?.() !== 0) throw new Error('needs root: it mounts a tmpfs');
  const deadline = setTimeout(() => {
    log('deadline passed, giving up');
    void cleanup().finally(() => process.exit(2));
  }, DEADLINE_MS);
  deadline.unref();

  mountDir = await mkdtemp(path.join(os.tmpdir(), 'tether-bench-full-disk-'));
  disk = new SmallDisk(mountDir, TMPFS_SIZE);
  disk.mount();
  const dataDir = path.join(mountDir, 'hub');
  const filler = path.join(mountDir, 'filler');
  const port = 20_000 + Math.floor(Math.random() * 20_000);
  const url = `http://127.0.0.1:${port}`;
  hub = startHub(dataDir, port);
  await waitHealthy(url, 20_000);
  const token = (await readFile(path.join(dataDir, 'admin-token'), 'utf8')).trim();
  const api = async (method: string, route: string, body?: unknown): Promise<{ status: number; body: any }> => {
    try {
      const res = await fetch(`${url}${route}`, {
        method,
        headers: { authorization: `Bearer ${token}`, ...(body === undefined ? {} : { 'content-type': 'application/json' }) },
        body: body === undefined ? undefined : JSON.stringify(body),
        signal: AbortSignal.timeout(REQUEST_TIMEOUT_MS),
      });
      const text = await res.text();
      return { status: res.status, body: text ? JSON.parse(text) : undefined };
    } catch {
      // No answer (refused, reset, timed out): neither acknowledged nor refused.
      return { status: 0, body: undefined };
    }
  };

  let seq = 0;
  const ops: Op[] = [];
  const endAtMs = performance.now() + DURATION_MS;
  const writer = async (w: number): Promise<void> => {
    const names = Array.from({ length: NAMES_PER_WRITER }, (_, i) => `fd-${w}-${i}`);
    for (let n = 0; n < MAX_REQUESTS_PER_WRITER && performance.now() < endAtMs; n++) {
      const name = names[Math.floor(Math.random() * names.length)]!;
      const mySeq = ++seq;
      if (Math.random() < 0.25) {
        const res = await api('DELETE', `/v1/services/${name}`);
        ops.push({ kind: 'delete', name, seq: mySeq, status: res.status });
      } else {
        const spec = { image: `nginx:${1 + Math.floor(Math.random() * 3)}`, replicas: 1 + Math.floor(Math.random() * 3), env: { SEQ: String(mySeq) } };
        const res = await api('PUT', `/v1/services/${name}`, spec);
        ops.push({ kind: 'put', name, seq: mySeq, status: res.status, revision: res.status < 300 ? (res.body?.revision ?? null) : null });
      }
    }
  };
  const filling = async (): Promise<number> => {
    // Fills spread over the run: free for a while, full for a while.
    const cycleMs = DURATION_MS / FILLS;
    let fills = 0;
    for (let i = 0; i < FILLS && performance.now() < endAtMs; i++) {
      await sleep(cycleMs * (0.2 + Math.random() * 0.3));
      await fill(filler);
      fills++;
      // The last fill stays until the hub is killed: what it acknowledged must already be on disk.
      if (i === FILLS - 1) break;
      await sleep(cycleMs * (0.2 + Math.random() * 0.3));
      await rm(filler, { force: true });
    }
    return fills;
  };
  const [fills] = await Promise.all([filling(), ...Array.from({ length: WRITERS }, (_, w) => writer(w))]);

  // What the hub shows just before it dies.
  const shown = await api('GET', '/v1/services');
  const before = new Map<string, { revision: number; seq: string }>(
    (shown.body?.services ?? []).map((s: any) => [s.name, { revision: s.revision, seq: s.spec?.env?.SEQ }]),
  );
  await killHub();
  // Space back for the start (a hub refuses to start on a full disk).
  await rm(filler, { force: true });
  hub = startHub(dataDir, port);
  const restartMs = await waitHealthy(url, 20_000);
  const loaded = await api('GET', '/v1/services');
  if (loaded.status !== 200) throw new Error(`GET /v1/services after the restart answered ${loaded.status}`);
  const after = new Map<string, { revision: number; seq: string }>(
    (loaded.body.services as any[]).map((s) => [s.name, { revision: s.revision, seq: s.spec?.env?.SEQ }]),
  );
  await killHub();

  const is2xx = (status: number) => status >= 200 && status < 300;
  const isRefused = (status: number) => status === 507 || status === 503;
  const byName = new Map<string, Op[]>();
  for (const op of ops.sort((a, b) => a.seq - b.seq)) {
    const list = byName.get(op.name);
    if (list) list.push(op);
    else byName.set(op.name, [op]);
  }
  let acknowledged = 0;
  let acknowledgedPersisted = 0;
  const lost: string[] = [];
  let refusedAppearing = 0;
  const appeared: string[] = [];
  for (const [name, list] of byName) {
    const found = after.get(name);
    for (let i = 0; i < list.length; i++) {
      const op = list[i]!;
      const later = list.slice(i + 1).filter((o) => is2xx(o.status));
      if (is2xx(op.status)) {
        acknowledged++;
        let kept: boolean;
        if (op.kind === 'put') {
          // Taken since only by an acknowledged delete, and then not written again.
          const deletedSince = later.length > 0 && later[later.length - 1]!.kind === 'delete';
          kept = (found !== undefined && op.revision !== null && found.revision >= op.revision) || (found === undefined && deletedSince);
        } else {
          kept = found === undefined || later.some((o) => o.kind === 'put');
        }
        if (kept) acknowledgedPersisted++;
        else lost.push(`${op.kind} ${name} #${op.seq}`);
      } else if (isRefused(op.status)) {
        const lastAcked = list.slice(0, i).filter((o) => is2xx(o.status)).pop();
        const shows =
          op.kind === 'put'
            ? found?.seq === String(op.seq)
            : found === undefined && lastAcked?.kind === 'put' && !later.some((o) => o.kind === 'delete');
        if (shows) {
          refusedAppearing++;
          appeared.push(`${op.kind} ${name} #${op.seq}`);
        }
      }
    }
  }
  let memoryDiskMismatches = 0;
  for (const name of new Set([...before.keys(), ...after.keys()])) {
    const a = before.get(name);
    const b = after.get(name);
    if (a?.revision !== b?.revision || a?.seq !== b?.seq) memoryDiskMismatches++;
  }
  const count = (pred: (o: Op) => boolean) => ops.filter(pred).length;
  const result = {
    bench: 'full-disk',
    writers: WRITERS,
    durationMs: DURATION_MS,
    fills,
    tmpfs: TMPFS_SIZE,
    requests: ops.length,
    acknowledged,
    refused507: count((o) => o.status === 507),
    refused503: count((o) => o.status === 503),
    notFound404: count((o) => o.status === 404),
    other: count((o) => !is2xx(o.status) && !isRefused(o.status) && o.status !== 404),
    acknowledgedPersisted,
    acknowledgedLost: lost.length,
    refusedAppearing,
    memoryDiskMismatches,
    servicesAfterRestart: after.size,
    restartMs: Math.round(restartMs),
    ...(lost.length > 0 ? { lostExamples: lost.slice(0, 5) } : {}),
    ...(appeared.length > 0 ? { appearedExamples: appeared.slice(0, 5) } : {}),
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
