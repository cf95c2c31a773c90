#!/usr/bin/env node
/**
 * How long a hub takes to start on a big data dir: the store is filled through its own API
 * (LowdbStore, nothing about its files assumed), with the change-log lines a fleet run leaves
 * (target publishes, a failover; `--no-history` leaves them out), then `dist/hub/main.js` is started on it several
 * times, each until /healthz answers (the API serves, which it does only once the store is
 * loaded) and until its first scheduling pass has planned (`tether_scheduler_plan_seconds_count`
 * on /metrics reaches 1: the first pass has judged every service; with no agent connected yet it
 * has no target to send, so planning is most of it). One more start runs with `--cpu-prof` and
 * gives the functions with the most self time.
 *
 *   node dist/bench/hub-start.js [--nodes 10000] [--replicas 100000] [--runs 3] [--data-dir DIR] [--no-history]
 *
 * Prints one JSON line; removes its data dir (one given with --data-dir is built there when it
 * holds no store yet, used as it is otherwise, and kept); every hub is killed by pid at the end.
 */
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { simulatedFacts } from '../agent/runtime/simulated-runtime.js';
import { validateServiceSpec } from '../hub/spec/service-spec.js';
import { loadOrCreateAdminToken } from '../hub/auth/secrets.js';
import { LowdbStore } from '../hub/store/lowdb-store.js';
import type { NodeRecord, ServiceRecord } from '../hub/store/store.js';
import type { Placement } from '../hub/scheduler/types.js';
import { topSelfTime, type CpuProfile } from './inspector.js';
import { freePort, killAll, startHub, terminate, type NodeProc } from './processes.js';

const { values } = parseArgs({
  options: {
    nodes: { type: 'string', default: '10000' },
    replicas: { type: 'string', default: '100000' },
    runs: { type: 'string', default: '3' },
    'data-dir': { type: 'string' },
    'no-history': { type: 'boolean', default: false },
  },
});
const NODES = Math.min(50_000, Math.max(1, Number(values.nodes)));
const REPLICAS = Math.min(100_000, Math.max(0, Number(values.replicas)));
const RUNS = Math.min(10, Math.max(1, Number(values.runs)));
/** Whether the data dir gets the change-log lines a fleet run leaves (see writeHistory). */
const HISTORY = !values['no-history'];
/** One start, to the first pass planned. */
const START_TIMEOUT_MS = 60_000;
/** The whole run, whatever happens. */
const DEADLINE_MS = 60_000 + (RUNS + 1) * (START_TIMEOUT_MS + 20_000);

const log = (text: string) => process.stderr.write(`[hub-start ${new Date().toISOString().slice(11, 19)}] ${text}\n`);
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

const workDir = mkdtempSync(path.join(tmpdir(), 'tether-hub-start-'));
const givenDataDir = values['data-dir'] === undefined ? null : path.resolve(values['data-dir']);
const dataDir = givenDataDir ?? path.join(workDir, 'hub');
const profileDir = path.join(workDir, 'profile');
const cleanUp = () => {
  killAll();
  rmSync(workDir, { recursive: true, force: true });
};
process.on('exit', cleanUp);
for (const signal of ['SIGINT', 'SIGTERM'] as const) process.on(signal, () => process.exit(130));
const deadline = setTimeout(() => {
  log(`not done within ${DEADLINE_MS} ms; giving up`);
  process.exit(1);
}, DEADLINE_MS);
deadline.unref();

/** Fills the store as a hub that ran the fleet would have left it: every node said hello, one big service placed. */
async function buildDataDir(): Promise<{ buildMs: number; storeBytes: number }> {
  const startedMs = performance.now();
  const store = new LowdbStore({ dir: path.join(dataDir, 'store') });
  await store.open();
  const now = new Date().toISOString();
  const nodeIds: string[] = [];
  const puts: Array<Promise<void>> = [];
  for (let i = 0; i < NODES; i++) {
    const id = `n${String(i).padStart(6, '0')}-${(i * 2654435761 >>> 0).toString(16)}`;
    nodeIds.push(id);
    const name = `edge-${i}`;
    const node: NodeRecord = {
      id,
      name,
      labels: { zone: `z${i % 4}` },
      credentialHash: (i * 40503).toString(16).padStart(64, '0'),
      advertiseAddress: null,
      facts: simulatedFacts(name),
      generation: 3,
      targetHash: (i * 7919).toString(16).padStart(64, '0'),
      joinedAt: now,
      declared: { name, labels: { zone: `z${i % 4}` } },
      requested: null,
      lostSince: null,
    };
    puts.push(store.putNode(node));
  }
  await Promise.all(puts);
  const service = (name: string, replicas: number): ServiceRecord => {
    const spec = validateServiceSpec({ image: '127.0.0.1:5000/busybox:1', command: ['sleep', '3600'], replicas });
    if (!spec.ok) throw new Error(`bench spec refused: ${JSON.stringify(spec)}`);
    const placements: Placement[] = [];
    for (let r = 0; r < replicas; r++) {
      placements.push({ replicaId: `${name}.${(r * 2246822519 >>> 0).toString(16).padStart(8, '0')}${(r % 256).toString(16).padStart(2, '0')}`, nodeId: nodeIds[r % nodeIds.length]!, pendingReason: null });
    }
    return { name, spec: spec.value, revision: 1, createdAt: now, updatedAt: now, placements };
  };
  const bench = service('bench', REPLICAS);
  await store.putService(bench);
  await store.putService(service('probe', Math.min(1, NODES)));
  if (HISTORY) await writeHistory(store, bench, nodeIds);
  await store.close();
  return { buildMs: Math.round(performance.now() - startedMs), storeBytes: storeBytesIn(path.join(dataDir, 'store')) };
}

/**
 * What a fleet run leaves in the change logs after the whole writes: every node's target published
 * again (a line per shard per publish, a hundred nodes at a time as passes publish them), and a
 * failover of a tenth of the big service (each replacement where its lost replica was, the lost
 * ones handing over after the rest) followed by the end of its hand-overs.
 */
async function writeHistory(store: LowdbStore, bench: ServiceRecord, nodeIds: readonly string[]): Promise<void> {
  for (let from = 0; from < nodeIds.length; from += 100) {
    const batch = nodeIds.slice(from, from + 100).map((id) => {
      const node = store.getNode(id)!;
      return store.putNode({ ...node, generation: node.generation + 1, targetHash: node.targetHash.replace(/^./, 'f') });
    });
    await Promise.all(batch);
  }
  const lost = new Set(nodeIds.filter((_, i) => i % 10 === 0));
  const survivors = nodeIds.filter((id) => !lost.has(id));
  const handingOver: Placement[] = [];
  let next = 0;
  const replaced = bench.placements.map((p, i) => {
    if (p.nodeId === null || !lost.has(p.nodeId)) return p;
    const replacement: Placement = { replicaId: `bench.r${i.toString(16).padStart(8, '0')}`, nodeId: survivors[next++ % survivors.length]!, pendingReason: null, movedFrom: p.nodeId };
    handingOver.push({ ...p, replacedBy: replacement.replicaId });
    return replacement;
  });
  await store.putService({ ...bench, placements: [...replaced, ...handingOver] });
  await store.putService({ ...bench, placements: replaced });
}

/** Bytes of the store's current files (previous copies left out). */
function storeBytesIn(dir: string): number {
  let bytes = 0;
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    const full = path.join(dir, entry.name);
    if (entry.isDirectory()) bytes += storeBytesIn(full);
    else if (!entry.name.endsWith('.prev')) bytes += statSync(full).size;
  }
  return bytes;
}

async function metricValue(url: string, token: string, name: string): Promise<number | null> {
  try {
    const res = await fetch(`${url}/metrics`, { headers: { authorization: `Bearer ${token}` }, signal: AbortSignal.timeout(5000) });
    const text = await res.text();
    const line = text.split('\n').find((l) => l.startsWith(`${name} `));
    return line === undefined ? null : Number(line.split(' ')[1]);
  } catch {
    return null;
  }
}

interface StartFigures {
  healthzMs: number;
  firstPassPlannedMs: number;
  firstPlanMs: number | null;
}

/** One start of the hub on the data dir: times from the spawn. */
async function startOnce(token: string, extraExecArgv: string[]): Promise<StartFigures> {
  const port = await freePort();
  const url = `http://127.0.0.1:${port}`;
  const t0 = performance.now();
  let hub: NodeProc | null = null;
  try {
    hub = await startHub(
      url,
      { args: ['--port', String(port), '--data-dir', dataDir, '--log-level', 'warn'], logFile: path.join(workDir, 'hub.log'), inspect: false, extraExecArgv },
      START_TIMEOUT_MS,
    );
    const healthzMs = performance.now() - t0;
    for (;;) {
      const planned = await metricValue(url, token, 'tether_scheduler_plan_seconds_count');
      if (planned !== null && planned >= 1) {
        const firstPassPlannedMs = performance.now() - t0;
        const sum = await metricValue(url, token, 'tether_scheduler_plan_seconds_sum');
        return { healthzMs: Math.round(healthzMs), firstPassPlannedMs: Math.round(firstPassPlannedMs), firstPlanMs: sum === null ? null : Math.round(sum * 1000) };
      }
      if (performance.now() - t0 > START_TIMEOUT_MS) throw new Error('no scheduling pass planned in time');
      await sleep(20);
    }
  } finally {
    // SIGTERM: a clean exit, so that --cpu-prof writes its profile.
    await terminate(hub);
  }
}

/**
 * Stages of a start, by a function of the hub on the stack (its name and file: its module, or the
 * bundle the build makes of the hub, dist/hub/main.js).
 */
const PHASES: Array<[string, RegExp, RegExp]> = [
  ['storeRead', /^readChecked$|^decodeStoreFile$/, /hub\/(store\/checked-file|main)\.js$/],
  ['dispatcherLoad', /^load$/, /hub\/(dispatcher|main)\.js$/],
  ['firstPlan', /^planPlacements$/, /hub\/(scheduler\/[^/]*|main)\.js$/],
  ['firstPublish', /^publish$/, /hub\/(dispatcher|main)\.js$/],
];

const IDLE = /^\(idle\)$/;

/**
 * When each stage ran in the profiled start (ms from the profile's start: first and last sample
 * with it on the stack) and the CPU it took; `beforeStoreRead` is the process starting and its
 * modules loading.
 */
function phasesOf(profile: CpuProfile): Record<string, { fromMs: number; toMs: number; cpuMs: number }> {
  const withSamples = profile as CpuProfile & { timeDeltas?: number[]; nodes: Array<{ children?: number[] }> };
  const parent = new Map<number, number>();
  const byId = new Map<number, CpuProfile['nodes'][number]>();
  for (const node of withSamples.nodes) {
    byId.set(node.id, node);
    for (const child of (node as { children?: number[] }).children ?? []) parent.set(child, node.id);
  }
  const phaseOfNode = new Map<number, string | null>();
  const phaseOf = (id: number): string | null => {
    const known = phaseOfNode.get(id);
    if (known !== undefined) return known;
    const frame = byId.get(id)!.callFrame;
    const own = PHASES.find(([, fn, file]) => fn.test(frame.functionName) && file.test(frame.url))?.[0] ?? null;
    const up = parent.get(id);
    const phase = own ?? (up === undefined ? null : phaseOf(up));
    phaseOfNode.set(id, phase);
    return phase;
  };
  const out: Record<string, { fromMs: number; toMs: number; cpuMs: number }> = {};
  const samples = withSamples.samples ?? [];
  const deltas = withSamples.timeDeltas ?? [];
  let atUs = profile.startTime;
  let firstStoreMs: number | null = null;
  let cpuBeforeStoreUs = 0;
  for (let i = 0; i < samples.length; i++) {
    atUs += deltas[i] ?? 0;
    const phase = phaseOf(samples[i]!);
    if (firstStoreMs === null && phase !== 'storeRead' && !IDLE.test(byId.get(samples[i]!)!.callFrame.functionName)) cpuBeforeStoreUs += deltas[i] ?? 0;
    if (phase === null) continue;
    const ms = Math.round((atUs - profile.startTime) / 1000);
    if (phase === 'storeRead') firstStoreMs ??= ms;
    const entry = (out[phase] ??= { fromMs: ms, toMs: ms, cpuMs: 0 });
    entry.toMs = ms;
    entry.cpuMs += (deltas[i] ?? 0) / 1000;
  }
  for (const entry of Object.values(out)) entry.cpuMs = Math.round(entry.cpuMs);
  // Before the store is read: the process starting, modules loading, the command line.
  if (firstStoreMs !== null) out.beforeStoreRead = { fromMs: 0, toMs: firstStoreMs, cpuMs: Math.round(cpuBeforeStoreUs / 1000) };
  return out;
}

const summary = (xs: number[]) => ({ min: Math.min(...xs), median: [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!, max: Math.max(...xs) });

async function main(): Promise<void> {
  const reuse = givenDataDir !== null && existsSync(path.join(givenDataDir, 'store'));
  log(reuse ? `using the data dir ${dataDir} as it is` : `building a data dir of ${NODES} nodes and ${REPLICAS} replicas`);
  const built = reuse ? { buildMs: 0, storeBytes: storeBytesIn(path.join(dataDir, 'store')) } : await buildDataDir();
  const { token } = await loadOrCreateAdminToken(dataDir);
  log(`built in ${built.buildMs} ms (${(built.storeBytes / 2 ** 20).toFixed(1)} MiB); starting the hub ${RUNS} times`);
  const runs: StartFigures[] = [];
  for (let i = 0; i < RUNS; i++) {
    runs.push(await startOnce(token, []));
    log(`run ${i + 1}: ${JSON.stringify(runs[i])}`);
  }
  await startOnce(token, ['--cpu-prof', '--cpu-prof-dir', profileDir]);
  const profileFile = readdirSync(profileDir).find((f) => f.endsWith('.cpuprofile'));
  const profile = profileFile ? (JSON.parse(readFileSync(path.join(profileDir, profileFile), 'utf8')) as CpuProfile) : null;
  const profileMs = profile ? Math.round((profile.endTime - profile.startTime) / 1000) : null;
  process.stdout.write(
    `${JSON.stringify({
      nodes: NODES,
      replicas: REPLICAS,
      storeMiB: Math.round((built.storeBytes / 2 ** 20) * 10) / 10,
      history: HISTORY,
      buildMs: reuse ? null : built.buildMs,
      healthzMs: summary(runs.map((r) => r.healthzMs)),
      firstPassPlannedMs: summary(runs.map((r) => r.firstPassPlannedMs)),
      firstPlanMs: runs.map((r) => r.firstPlanMs),
      runs,
      firstPassSign: 'tether_scheduler_plan_seconds_count >= 1 on /metrics',
      profile: profile ? { wholeProcessMs: profileMs, phases: phasesOf(profile), topSelf: topSelfTime(profile, 15) } : null,
    })}\n`,
  );
}

main().then(
  () => process.exit(0),
  (error: unknown) => {
    log(`failed: ${(error as Error).stack ?? String(error)}`);
    process.exit(1);
  },
);
