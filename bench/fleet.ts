#!/usr/bin/env node
/**
 * `npm run bench:fleet -- --agents N [--replicas R] [--heartbeat-ms H] [--duration-s S] ...`
 *
 * The fleet simulator and its raw baseline, measured in one run: the real hub as its own process
 * (node dist/hub/main.js, temp data dir, 127.0.0.1) and N real agents (agent/agent.ts over the
 * simulated container runtime) in several agent processes; and a bare `ws` server that takes the
 * same N connections and parses the same frames, so hub figures read as hub / baseline. Measures,
 * never asserts: prints a table, appends it to docs/benchmarks.md, optionally writes JSON.
 *
 * Bounded: every wait has a deadline, the whole run has one (--timeout-s), and whatever happens
 * every child process is killed by pid and the temp dir removed.
 */
import { execFileSync } from 'node:child_process';
import { appendFileSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { BENCH_IMAGE, type AgentStatus, type BurstResult, type CutResult, type JoinResult, type RawConnectResult } from './fleet-messages.js';
import type { BurstFigures, CpuFigures, FleetFigures, Latency } from './fleet-figures.js';
import { DOC_HEADER, formatReport } from './fleet-report.js';
import { collectGarbage, PhaseProfiler, topSelfTime } from './inspector.js';
import { baselineStats, distDir, kill, freePort, killAll, repoRoot, startBaseline, startHub, Worker, type NodeProc } from './processes.js';
import { CpuWindow, gitState, ioCounters, machineFacts, rssBytes } from './proc-stats.js';
import { StoreWatch } from './store-watch.js';

const HELP = `Usage: npm run bench:fleet -- --agents N [options]

  --agents N              simulated agents (real agent code, simulated container engine)
  --replicas R            replicas of the "bench" service to place (default 10 x N, at most 100000)
  --heartbeat-ms H        the hub's heartbeat interval (default 5000)
  --duration-s S          length of each idle-heartbeating window that hub CPU is measured over (default 20)
  --processes P           agent processes (default: one per 2500 agents)
  --lost-after-ms L       the hub's --lost-after-ms, also used for the failover figure (default: the hub's own default)
  --burst-frames F        heartbeat frames sent in the throughput burst, over all connections (default 200000)
  --settle-ms M           pause after connecting before RSS is read (default 2000)
  --quiet-s Q             before an idle window, wait (up to 120 s) for Q s with no store write and
                          no agent reconnecting (default 5; 0 does not wait)
  --api-requests K        sequential GETs and as many PUTs for the API latency (default 300)
  --join-concurrency C    POST /v1/join calls in flight (default 32)
  --skip LIST             comma-separated phases to leave out: baseline, burst, placement, api, restart, failover
  --source-addresses      bind each agent process to its own 127.0.0.x (default: on above 15000 agents)
  --no-gc                 no inspector: RSS without a forced GC
  --profile DIR           CPU-profile the hub per phase (inspector) into DIR; figures then carry the overhead
  --profile-phases LIST   only these: connect, idle, burst, placement, api, reconnect (default all)
  --hub-log-level LEVEL   (default warn: the hub's log goes to a file in the temp dir)
  --timeout-s T           the whole run's deadline (default 900)
  --work-dir DIR          where the temp dir is made (default the OS temp dir)
  --json FILE             also write the figures as JSON
  --doc FILE              the report is appended here (default docs/benchmarks.md)
  --no-doc                do not append to the doc
`;

const AGENTS_PER_PROCESS = 2500;
const SPEC_MAX_REPLICAS = 100_000;

interface Options {
  agents: number;
  replicas: number;
  heartbeatMs: number;
  durationS: number;
  processes: number;
  lostAfterMs: number;
  burstFrames: number;
  apiRequests: number;
  settleMs: number;
  quietS: number;
  joinConcurrency: number;
  skip: Set<string>;
  sourceAddresses: boolean;
  gc: boolean;
  profileDir: string | null;
  profilePhases: Set<string> | null;
  hubLogLevel: string;
  timeoutS: number;
  workDir: string;
  json: string | null;
  doc: string | null;
  command: string;
}

function parseOptions(argv: string[]): Options {
  const { values: v } = parseArgs({
    args: argv,
    options: {
      agents: { type: 'string' },
      replicas: { type: 'string' },
      'heartbeat-ms': { type: 'string' },
      'duration-s': { type: 'string' },
      processes: { type: 'string' },
      'lost-after-ms': { type: 'string' },
      'burst-frames': { type: 'string' },
      'api-requests': { type: 'string' },
      'settle-ms': { type: 'string' },
      'quiet-s': { type: 'string' },
      'join-concurrency': { type: 'string' },
      skip: { type: 'string' },
      'source-addresses': { type: 'boolean' },
      'no-gc': { type: 'boolean' },
      profile: { type: 'string' },
      'profile-phases': { type: 'string' },
      'hub-log-level': { type: 'string' },
      'timeout-s': { type: 'string' },
      'work-dir': { type: 'string' },
      json: { type: 'string' },
      doc: { type: 'string' },
      'no-doc': { type: 'boolean' },
      help: { type: 'boolean', short: 'h' },
    },
    strict: true,
  });
  if (v.help) {
    process.stdout.write(HELP);
    process.exit(0);
  }
  const int = (name: string, text: string | undefined, fallback: number | null, min: number): number => {
    if (text === undefined) {
      if (fallback === null) throw new Error(`--${name} is required`);
      return fallback;
    }
    const n = Number(text);
    if (!Number.isInteger(n) || n < min) throw new Error(`--${name} must be an integer >= ${min}, got "${text}"`);
    return n;
  };
  const agents = int('agents', v.agents, null, 1);
  const heartbeatMs = int('heartbeat-ms', v['heartbeat-ms'], 5000, 100);
  const skip = new Set((v.skip ?? '').split(',').filter(Boolean));
  for (const s of skip) {
    if (!['baseline', 'burst', 'placement', 'api', 'restart', 'failover'].includes(s)) throw new Error(`unknown phase "${s}" in --skip`);
  }
  return {
    agents,
    replicas: Math.min(SPEC_MAX_REPLICAS, int('replicas', v.replicas, 10 * agents, 0)),
    heartbeatMs,
    durationS: int('duration-s', v['duration-s'], 20, 1),
    processes: int('processes', v.processes, Math.ceil(agents / AGENTS_PER_PROCESS), 1),
    lostAfterMs: int('lost-after-ms', v['lost-after-ms'], 0, 1000),
    burstFrames: int('burst-frames', v['burst-frames'], 200_000, 1),
    apiRequests: int('api-requests', v['api-requests'], 300, 1),
    settleMs: int('settle-ms', v['settle-ms'], 2000, 0),
    quietS: int('quiet-s', v['quiet-s'], 5, 0),
    joinConcurrency: int('join-concurrency', v['join-concurrency'], 32, 1),
    skip,
    sourceAddresses: v['source-addresses'] ?? agents > 15_000,
    gc: !v['no-gc'],
    profileDir: v.profile ? path.resolve(v.profile) : null,
    profilePhases: v['profile-phases'] ? new Set(v['profile-phases'].split(',')) : null,
    hubLogLevel: v['hub-log-level'] ?? 'warn',
    timeoutS: int('timeout-s', v['timeout-s'], 900, 10),
    workDir: path.resolve(v['work-dir'] ?? os.tmpdir()),
    json: v.json ? path.resolve(v.json) : null,
    doc: v['no-doc'] ? null : path.resolve(v.doc ?? path.join(repoRoot, 'docs', 'benchmarks.md')),
    command: `npm run bench:fleet -- ${argv.join(' ')}`,
  };
}

// ---- small helpers ----------------------------------------------------------------------------

const MiB = 1024 * 1024;
const round = (x: number, digits = 2) => Math.round(x * 10 ** digits) / 10 ** digits;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const seconds = (fromMs: number) => round((performance.now() - fromMs) / 1000, 3);

function log(text: string): void {
  process.stderr.write(`[bench ${new Date().toISOString().slice(11, 19)}] ${text}\n`);
}

async function waitUntil<T>(what: string, timeoutMs: number, intervalMs: number, probe: () => Promise<T | null>): Promise<T> {
  const deadline = performance.now() + timeoutMs;
  let last = '';
  for (;;) {
    try {
      const value = await probe();
      if (value !== null) return value;
    } catch (error) {
      last = (error as Error).message;
    }
    if (performance.now() > deadline) throw new Error(`${what}: not reached within ${timeoutMs / 1000} s${last ? ` (last error: ${last})` : ''}`);
    await sleep(intervalMs);
  }
}

function latency(samples: number[]): Latency {
  const sorted = [...samples].sort((a, b) => a - b);
  const at = (q: number) => sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil(q * sorted.length) - 1))] ?? NaN;
  return { n: sorted.length, p50Ms: round(at(0.5)), p99Ms: round(at(0.99)), maxMs: round(sorted[sorted.length - 1] ?? NaN) };
}

function mergeCounts(parts: Array<Record<string, number>>): Record<string, number> {
  const out: Record<string, number> = {};
  for (const p of parts) for (const [k, n] of Object.entries(p)) out[k] = (out[k] ?? 0) + n;
  return out;
}

function diffCounts(after: Record<string, number>, before: Record<string, number>): Record<string, number> {
  const out: Record<string, number> = {};
  for (const [k, n] of Object.entries(after)) if (n - (before[k] ?? 0) > 0) out[k] = n - (before[k] ?? 0);
  return out;
}

/** Seconds until given fractions of the agents were back, filled in as a wait polls. */
class Curve {
  private readonly marks = new Map<number, number>();
  constructor(
    private readonly total: number,
    private readonly startMs: number,
    private readonly fractions = [0.5, 0.9, 0.99, 1],
  ) {}
  see(count: number): void {
    for (const f of this.fractions) {
      if (!this.marks.has(f) && count >= Math.ceil(f * this.total)) this.marks.set(f, round((performance.now() - this.startMs) / 1000, 2));
    }
  }
  result(): Record<string, number | null> {
    return Object.fromEntries(this.fractions.map((f) => [`${f * 100}%`, this.marks.get(f) ?? null]));
  }
}

class HubApi {
  constructor(
    readonly url: string,
    private readonly token: string,
  ) {}

  async call<T = any>(method: string, route: string, body?: unknown, timeoutMs = 120_000): Promise<{ status: number; body: T; ms: number }> {
    // A GET is retried when the connection itself fails (a keep-alive socket the hub closed as it
    // was reused, say); a figure is never taken from a retried request's time alone.
    for (let attempt = 0; ; attempt++) {
      const started = performance.now();
      try {
        const res = await fetch(`${this.url}${route}`, {
          method,
          headers: { authorization: `Bearer ${this.token}`, ...(body === undefined ? {} : { 'content-type': 'application/json' }) },
          body: body === undefined ? undefined : JSON.stringify(body),
          signal: AbortSignal.timeout(timeoutMs),
        });
        const text = await res.text();
        const ms = performance.now() - started;
        return { status: res.status, body: (text ? JSON.parse(text) : undefined) as T, ms };
      } catch (error) {
        const cause = (error as { cause?: { code?: string; message?: string } }).cause;
        const text = `${method} ${route}: ${(error as Error).message}${cause ? ` (${cause.code ?? cause.message})` : ''}`;
        if (method !== 'GET' || attempt >= 2 || (error as Error).name === 'TimeoutError') throw new Error(text);
        this.retries.push(text);
        await sleep(200);
      }
    }
  }

  /** Network-level failures that were retried, for the report. */
  readonly retries: string[] = [];

  async healthz(): Promise<{ connectedNodes: number }> {
    const res = await fetch(`${this.url}/healthz`, { signal: AbortSignal.timeout(10_000) });
    return (await res.json()) as { connectedNodes: number };
  }
}

/** The hub's service view; `?limit=0` leaves out the replica list and keeps the counts. */
interface ServiceView {
  status: { desired: number; running: number; onDownNodes: number; handingOver: number; replicaPage: { total: number } };
}

// ---- the run ----------------------------------------------------------------------------------

class FleetBench {
  readonly figures: FleetFigures;
  private tmp = '';
  private dataDir = '';
  private port = 0;
  private hub: NodeProc | null = null;
  private hubCount = 0;
  private hubArgs: string[] = [];
  private api!: HubApi;
  private workers: Worker[] = [];
  private storeWatch: StoreWatch | null = null;
  /** write_bytes of hub processes already gone, minus their log files. */
  private storeWriteBytesDone = 0;
  private hubSupportsLostAfter = false;
  private placed = false;
  private liveAgents = 0;
  phase = 'setup';

  constructor(readonly opts: Options) {
    this.figures = {
      date: new Date().toISOString(),
      command: opts.command,
      git: gitState(repoRoot),
      machine: machineFacts(),
      loadAvgEnd: [],
      config: {
        agents: opts.agents,
        replicas: opts.replicas,
        heartbeatMs: opts.heartbeatMs,
        durationS: opts.durationS,
        processes: opts.processes,
        lostAfterMs: opts.lostAfterMs,
        hubLogLevel: opts.hubLogLevel,
        gcViaInspector: opts.gc,
        sourceAddresses: opts.sourceAddresses,
        profiled: opts.profileDir !== null,
        skipped: [...opts.skip],
      },
      baseline: null,
      hub: {
        joined: 0,
        joinS: null,
        ready: 0,
        connectedNodes: 0,
        connectS: null,
        connectCurve: {},
        rss: null,
        idleCpu: null,
        idleCpuWithReplicas: null,
        burst: null,
        placement: null,
        api: null,
        restart: null,
        failover: { measured: false, reason: 'not run' },
        store: null,
        agentWarnings: 0,
        agentErrors: 0,
        agentMessages: {},
      },
      profiles: {},
      errors: [],
      notes: [],
    };
  }

  /** Runs one phase; a failure is recorded and the run goes on with what still makes sense. */
  private async step(name: string, fn: () => Promise<void>): Promise<boolean> {
    this.phase = name;
    log(`${name}...`);
    const started = performance.now();
    try {
      await fn();
      log(`${name}: done in ${seconds(started)} s`);
      return true;
    } catch (error) {
      const hub = this.hub?.child;
      const hubGone = hub && (hub.exitCode !== null || hub.signalCode !== null) ? ` (the hub process had exited: ${hub.exitCode ?? hub.signalCode})` : '';
      const message = `${name}: ${(error as Error).message}${hubGone}`;
      this.figures.errors.push(message.slice(0, 2000));
      log(`FAILED ${message.slice(0, 2000)}`);
      this.printHubTail();
      return false;
    }
  }

  async run(): Promise<void> {
    const { opts } = this;
    for (const file of ['hub/main.js', 'bench/fleet-worker.js', 'bench/baseline-server.js']) {
      if (!existsSync(path.join(distDir, file))) throw new Error(`dist/${file} is missing: run npm run build first`);
    }
    mkdirSync(opts.workDir, { recursive: true });
    this.tmp = mkdtempSync(path.join(opts.workDir, 'tether-bench-'));
    this.dataDir = path.join(this.tmp, 'hub');
    const help = execFileSync(process.execPath, [path.join(distDir, 'hub', 'main.js'), '--help'], { encoding: 'utf8' });
    this.hubSupportsLostAfter = help.includes('--lost-after-ms');
    if (this.opts.lostAfterMs === 0) {
      // Not given: run the hub with its own default, read from its --help.
      const match = /--lost-after-ms[\s\S]*?\(default (\d+)/.exec(help);
      this.opts.lostAfterMs = match ? Number(match[1]) : 60_000;
      this.figures.config.lostAfterMs = this.opts.lostAfterMs;
    }
    log(`temp dir ${this.tmp}; hub ${this.hubSupportsLostAfter ? 'has' : 'lacks'} --lost-after-ms`);

    const sourceAddress = (i: number) => (opts.sourceAddresses ? `127.0.1.${i + 1}` : null);
    this.workers = Array.from({ length: opts.processes }, (_, i) => Worker.start(i, sourceAddress(i)));
    await Promise.all(this.workers.map((w) => Promise.race([w.ready, w.exited.then(() => Promise.reject(new Error(`agent process ${w.index} exited at start:\n${w.output()}`)))])));

    if (!opts.skip.has('baseline')) await this.step('baseline', () => this.baseline());

    this.port = await freePort();
    this.api = new HubApi(`http://127.0.0.1:${this.port}`, '');
    this.hubArgs = [
      '--port', String(this.port),
      '--host', '127.0.0.1',
      '--data-dir', this.dataDir,
      '--heartbeat-interval-ms', String(opts.heartbeatMs),
      // The hub refuses a lostAfter below the grace: a short lostAfter gets a grace as short.
      '--heartbeat-grace-ms', String(Math.min(Math.max(15_000, 3 * opts.heartbeatMs), opts.lostAfterMs)),
      '--log-level', opts.hubLogLevel,
      ...(this.hubSupportsLostAfter ? ['--lost-after-ms', String(opts.lostAfterMs)] : []),
    ];
    if (!(await this.step('hub start', () => this.startHub()))) return;
    if (!(await this.step('join', () => this.join()))) return;
    if (!(await this.step('connect', () => this.profiled('connect', () => this.connect())))) return;
    await this.step('idle', () =>
      this.profiled('idle', async () => {
        this.figures.hub.idleCpu = await this.idleCpu();
      }),
    );
    if (!opts.skip.has('burst')) await this.step('burst', () => this.profiled('burst', () => this.hubBurst()));
    if (!opts.skip.has('placement')) this.placed = await this.step('placement', () => this.profiled('placement', () => this.placement()));
    if (!opts.skip.has('api')) await this.step('api', () => this.profiled('api', () => this.apiLatency()));
    if (this.placed) {
      await this.step('idle with replicas', async () => {
        this.figures.hub.idleCpuWithReplicas = await this.idleCpu();
      });
    }
    let restarted = true;
    if (!opts.skip.has('restart')) restarted = await this.step('restart', () => this.restart());
    if (opts.skip.has('failover')) this.figures.hub.failover = { measured: false, reason: 'skipped' };
    else if (!this.hubSupportsLostAfter) this.figures.hub.failover = { measured: false, reason: 'the hub has no --lost-after-ms flag yet' };
    else if (!this.placed) this.figures.hub.failover = { measured: false, reason: 'no replicas placed' };
    else if (!restarted) this.figures.hub.failover = { measured: false, reason: 'the fleet did not recover from the hub restart' };
    else await this.step('failover', () => this.failover());
    await this.step('final counts', () => this.finalCounts());
  }

  /** The end of the hub's log and stderr, for a phase that failed (the temp dir goes away). */
  private printHubTail(): void {
    if (!this.hub) return;
    let logTail = '';
    try {
      logTail = readFileSync(path.join(this.tmp, `hub-${this.hubCount}.log`), 'utf8').split('\n').slice(-30).join('\n');
    } catch {
      // no log
    }
    process.stderr.write(`--- hub ${this.hubCount} log (last lines) ---\n${logTail}\n--- hub ${this.hubCount} stderr ---\n${this.hub.output().slice(-3000)}\n---\n`);
  }

  /** Kills every process of the run and removes the temp dir; safe to call twice. */
  async cleanup(): Promise<void> {
    this.storeWatch?.close();
    this.storeWatch = null;
    killAll();
    await Promise.all([this.hub?.exited, ...this.workers.map((w) => w.exited)]);
    if (this.tmp) rmSync(this.tmp, { recursive: true, force: true });
    this.tmp = '';
  }

  /** Removes the temp dir synchronously (from an 'exit' handler). */
  cleanupSync(): void {
    killAll();
    if (this.tmp) rmSync(this.tmp, { recursive: true, force: true });
    this.tmp = '';
  }

  private async profiled(phase: string, fn: () => Promise<void>): Promise<void> {
    const dir = this.opts.profileDir;
    const url = this.hub?.inspectorUrl;
    if (!dir || !url || (this.opts.profilePhases && !this.opts.profilePhases.has(phase))) return fn();
    const profiler = await PhaseProfiler.start(url);
    try {
      await fn();
    } finally {
      const profile = await profiler.stop();
      mkdirSync(dir, { recursive: true });
      writeFileSync(path.join(dir, `hub-${phase}.cpuprofile`), JSON.stringify(profile));
      this.figures.profiles[phase] = topSelfTime(profile);
    }
  }

  // ---- measuring helpers ----

  private async gcRss(proc: NodeProc): Promise<{ rss: number; heapUsed: number | null }> {
    let heapUsed: number | null = null;
    if (this.opts.gc && proc.inspectorUrl) heapUsed = (await collectGarbage(proc.inspectorUrl)).heapUsed;
    // A moment for the allocator to hand freed pages back before reading RSS.
    await sleep(200);
    const rss = rssBytes(proc.pid);
    if (rss === null) throw new Error(`process ${proc.pid} is gone`);
    return { rss, heapUsed };
  }

  /**
   * Waits (at most maxS) until --quiet-s seconds pass with no store write and no agent reconnecting,
   * so an idle window measures the steady state and not the tail of a storm; returns the wait.
   */
  private async quiesce(maxS = 120): Promise<number> {
    const started = performance.now();
    while (this.opts.quietS > 0 && (performance.now() - started) / 1000 < maxS) {
      const writes = this.storeWatch?.writes ?? 0;
      const connects = (await this.agentStatus()).connects;
      await sleep(this.opts.quietS * 1000);
      if ((this.storeWatch?.writes ?? 0) === writes && (await this.agentStatus()).connects === connects) break;
    }
    return seconds(started);
  }

  private async cpuWindow(pid: number, withAgents = true): Promise<CpuFigures> {
    const quietAfterS = withAgents ? await this.quiesce() : null;
    const connectsBefore = withAgents ? (await this.agentStatus()).connects : 0;
    const window = new CpuWindow([pid, ...this.workers.map((w) => w.pid)]);
    await sleep(this.opts.durationS * 1000);
    const result = window.finish();
    const agentsPct = this.workers.reduce((sum, w) => sum + (result.pct.get(w.pid) ?? 0), 0);
    const figures: CpuFigures = {
      windowS: round(result.seconds, 1),
      pctOfCore: round(result.pct.get(pid)!, 2),
      agentProcessesPct: round(agentsPct, 1),
      othersPct: round(result.othersPct, 1),
    };
    if (withAgents) figures.agentReconnects = (await this.agentStatus()).connects - connectsBefore;
    if (quietAfterS !== null) figures.quietAfterS = quietAfterS;
    return figures;
  }

  private async all<T>(command: Parameters<Worker['call']>[0], timeoutMs: number): Promise<T[]> {
    return Promise.all(this.workers.map((w) => w.call<T>(command, timeoutMs)));
  }

  private async agentStatus(): Promise<AgentStatus> {
    const parts = await this.all<AgentStatus>({ cmd: 'status' }, 30_000);
    return {
      live: parts.reduce((n, p) => n + p.live, 0),
      ready: parts.reduce((n, p) => n + p.ready, 0),
      connects: parts.reduce((n, p) => n + p.connects, 0),
      warnings: parts.reduce((n, p) => n + p.warnings, 0),
      errors: parts.reduce((n, p) => n + p.errors, 0),
      messages: mergeCounts(parts.map((p) => p.messages)),
    };
  }

  private burstFigures(parts: BurstResult[]): BurstFigures {
    const frames = parts.reduce((n, p) => n + p.frames, 0);
    const start = Math.min(...parts.map((p) => p.startedAtMs));
    const done = Math.max(...parts.map((p) => p.doneAtMs));
    const s = Math.max(0.001, (done - start) / 1000);
    return {
      connections: parts.reduce((n, p) => n + p.connections, 0),
      frames,
      seconds: round(s, 3),
      perSecond: Math.round(frames / s),
      missingPongs: parts.reduce((n, p) => n + p.missingPongs, 0),
    };
  }

  private framesPerConnection(): number {
    return Math.max(1, Math.round(this.opts.burstFrames / this.opts.agents));
  }

  /** Splits N over the agent processes: [firstIndex, count] each. */
  private shares(): Array<[number, number]> {
    const { agents, processes } = this.opts;
    const out: Array<[number, number]> = [];
    let first = 0;
    for (let i = 0; i < processes; i++) {
      const count = Math.floor(agents / processes) + (i < agents % processes ? 1 : 0);
      out.push([first, count]);
      first += count;
    }
    return out;
  }

  // ---- phases ----

  private async baseline(): Promise<void> {
    const { opts } = this;
    const server = await startBaseline(opts.gc);
    try {
      const before = await this.gcRss(server);
      const beforeNoGc = rssBytes(server.pid)!;
      const started = performance.now();
      const shares = this.shares();
      const parts = await Promise.all(
        this.workers.map((w, i) =>
          w.call<RawConnectResult>({ cmd: 'raw-connect', url: `ws://127.0.0.1:${server.port}/`, count: shares[i]![1], heartbeatMs: opts.heartbeatMs }, 300_000),
        ),
      );
      const connectS = seconds(started);
      const opened = parts.reduce((n, p) => n + p.opened, 0);
      if (opened < opts.agents) this.figures.errors.push(`baseline: ${opts.agents - opened} connections failed (${parts.find((p) => p.firstError)?.firstError})`);
      await sleep(this.opts.settleMs);
      const afterNoGc = rssBytes(server.pid)!;
      const after = await this.gcRss(server);
      const idleCpu = await this.cpuWindow(server.pid, false);
      let burst: BurstFigures | null = null;
      if (!opts.skip.has('burst')) {
        const counted = (await baselineStats(server)).frames;
        burst = this.burstFigures(await this.all<BurstResult>({ cmd: 'raw-burst', framesPerConnection: this.framesPerConnection() }, 300_000));
        burst.serverCounted = (await baselineStats(server)).frames - counted;
      }
      this.figures.baseline = {
        connected: opened,
        connectS,
        rssBeforeMiB: round(before.rss / MiB, 1),
        rssAfterMiB: round(after.rss / MiB, 1),
        rssPerConnectionKiB: round((after.rss - before.rss) / 1024 / Math.max(1, opened)),
        rssPerConnectionNoGcKiB: round((afterNoGc - beforeNoGc) / 1024 / Math.max(1, opened)),
        idleCpu,
        burst,
      };
    } finally {
      await this.all({ cmd: 'raw-close' }, 60_000).catch(() => undefined);
      await kill(server);
    }
  }

  private async startHub(timeoutMs = 60_000): Promise<void> {
    const started = performance.now();
    this.hubCount++;
    this.hub = await startHub(
      this.api.url,
      {
        args: this.hubArgs,
        logFile: path.join(this.tmp, `hub-${this.hubCount}.log`),
        inspect: this.opts.gc || this.opts.profileDir !== null,
      },
      timeoutMs,
    );
    if (this.hubCount === 1) {
      const token = readFileSync(path.join(this.dataDir, 'admin-token'), 'utf8').trim();
      this.api = new HubApi(this.api.url, token);
      this.storeWatch = new StoreWatch(path.join(this.dataDir, 'store'));
    }
    log(`hub ${this.hubCount} (pid ${this.hub.pid}) healthy after ${seconds(started)} s`);
  }

  private rssMarks: { before?: { rss: number; heapUsed: number | null }; beforeNoGc?: number; joined?: { rss: number; heapUsed: number | null } } = {};

  private async join(): Promise<void> {
    const { opts } = this;
    this.rssMarks.before = await this.gcRss(this.hub!);
    this.rssMarks.beforeNoGc = rssBytes(this.hub!.pid)!;
    const res = await this.api.call<{ token: string }>('POST', '/v1/join-tokens', { ttlSeconds: 86_400 });
    if (res.status !== 201) throw new Error(`POST /v1/join-tokens: HTTP ${res.status}`);
    const started = performance.now();
    const shares = this.shares();
    const perProcess = Math.max(1, Math.round(opts.joinConcurrency / opts.processes));
    const parts = await Promise.all(
      this.workers.map((w, i) =>
        w.call<JoinResult>(
          { cmd: 'join', hubUrl: this.api.url, joinToken: res.body.token, firstIndex: shares[i]![0], count: shares[i]![1], concurrency: perProcess },
          600_000,
        ),
      ),
    );
    this.figures.hub.joinS = seconds(started);
    this.figures.hub.joined = parts.reduce((n, p) => n + p.joined, 0);
    this.liveAgents = this.figures.hub.joined;
    const failed = parts.reduce((n, p) => n + p.failed, 0);
    if (failed > 0) this.figures.errors.push(`join: ${failed} agents could not join (${parts.find((p) => p.firstError)?.firstError})`);
    if (this.liveAgents === 0) throw new Error('no agent joined');
    this.rssMarks.joined = await this.gcRss(this.hub!);
  }

  private async connect(): Promise<void> {
    const n = this.liveAgents;
    const started = performance.now();
    const curve = new Curve(n, started);
    await this.all({ cmd: 'start' }, 600_000);
    const timeoutMs = Math.max(120_000, n * 30);
    try {
      await waitUntil(`all ${n} agents welcomed`, timeoutMs, 100, async () => {
        const s = await this.agentStatus();
        curve.see(s.ready);
        this.figures.hub.ready = s.ready;
        if (s.ready < n) return null;
        const h = await this.api.healthz();
        this.figures.hub.connectedNodes = h.connectedNodes;
        return h.connectedNodes >= n ? true : null;
      });
      this.figures.hub.connectS = seconds(started);
    } finally {
      this.figures.hub.connectCurve = curve.result();
      this.figures.hub.connectedNodes = (await this.api.healthz().catch(() => ({ connectedNodes: -1 }))).connectedNodes;
    }
    await sleep(this.opts.settleMs);
    const afterNoGc = rssBytes(this.hub!.pid)!;
    const after = await this.gcRss(this.hub!);
    const { before, joined, beforeNoGc } = this.rssMarks;
    this.figures.hub.rss = {
      beforeMiB: round(before!.rss / MiB, 1),
      joinedMiB: round(joined!.rss / MiB, 1),
      connectedMiB: round(after.rss / MiB, 1),
      perAgentKiB: round((after.rss - before!.rss) / 1024 / n),
      perConnectionKiB: round((after.rss - joined!.rss) / 1024 / n),
      perAgentNoGcKiB: round((afterNoGc - beforeNoGc!) / 1024 / n),
      heapPerAgentKiB: after.heapUsed !== null && before!.heapUsed !== null ? round((after.heapUsed - before!.heapUsed) / 1024 / n) : null,
    };
  }

  private idleCpu(): Promise<CpuFigures> {
    return this.cpuWindow(this.hub!.pid);
  }

  private async hubBurst(): Promise<void> {
    this.figures.hub.burst = this.burstFigures(await this.all<BurstResult>({ cmd: 'burst', framesPerConnection: this.framesPerConnection() }, 300_000));
  }

  private async getService(name: string, query = '?limit=0'): Promise<{ view: ServiceView; ms: number }> {
    const res = await this.api.call<ServiceView>('GET', `/v1/services/${name}${query}`);
    if (res.status !== 200) throw new Error(`GET /v1/services/${name}: HTTP ${res.status}`);
    return { view: res.body, ms: res.ms };
  }

  private async reportedRunning(service: string): Promise<number> {
    const parts = await this.all<{ running: number }>({ cmd: 'reported', service }, 30_000);
    return parts.reduce((n, p) => n + p.running, 0);
  }

  /**
   * Waits until the hub shows a service fully running. First the agents are asked (every 100 ms)
   * until they have reported `expected` replicas running; then the hub's counts (`?limit=0`, a walk
   * over the placements, no list) are polled, each poll sent when the last one answered. The time
   * that counts is when the first GET that shows everything was sent (the hub's answer reflects
   * its state from that moment on). Polls are spaced by twice the last one's duration, at least 50 ms.
   */
  private async waitRunning(
    name: string,
    expected: number,
    startedAt: number,
    timeoutMs: number,
    hubDone: (view: ServiceView) => boolean,
  ): Promise<{ agentsS: number; firstIncreaseS: number | null; hubS: number; getMs: number[]; view: ServiceView }> {
    const deadline = performance.now() + timeoutMs;
    const initial = await this.reportedRunning(name);
    let firstIncreaseS: number | null = null;
    for (;;) {
      const running = await this.reportedRunning(name);
      if (firstIncreaseS === null && running > initial) firstIncreaseS = seconds(startedAt);
      if (running >= expected) break;
      if (performance.now() > deadline) throw new Error(`${name}: agents report ${running} of ${expected} running after ${timeoutMs / 1000} s`);
      await sleep(100);
    }
    const agentsS = seconds(startedAt);
    const getMs: number[] = [];
    for (;;) {
      const sentS = seconds(startedAt);
      const { view, ms } = await this.getService(name);
      getMs.push(ms);
      if (hubDone(view)) return { agentsS, firstIncreaseS, hubS: sentS, getMs, view };
      if (performance.now() > deadline) throw new Error(`${name}: the hub shows ${view.status.running} of ${view.status.desired} running after ${timeoutMs / 1000} s`);
      // Leave the hub two thirds of its time for the fleet: a big view blocks it while it is built.
      await sleep(Math.max(50, 2 * ms));
    }
  }

  /** GETs of the big service as an operator sends them (the first page of 1,000 replicas and the counts). */
  private bigGetMs: number[] = [];

  private async placement(): Promise<void> {
    const r = this.opts.replicas;
    const started = performance.now();
    const put = await this.api.call('PUT', '/v1/services/bench', { image: BENCH_IMAGE, command: ['/bin/sleep', '3600'], replicas: r });
    if (put.status !== 201 && put.status !== 200) throw new Error(`PUT /v1/services/bench: HTTP ${put.status} ${JSON.stringify(put.body).slice(0, 300)}`);
    const done = await this.waitRunning('bench', r, started, Math.max(120_000, r * 2), (v) => v.status.running === r);
    this.figures.hub.placement = {
      replicas: r,
      running: done.view.status.running,
      seconds: done.hubS,
      perSecond: Math.round(r / done.hubS),
      agentsReportedS: done.agentsS,
      lastGetMs: round(done.getMs[done.getMs.length - 1]!, 1),
    };
  }

  private async apiLatency(): Promise<void> {
    const k = this.opts.apiRequests;
    const spec = (replicas: number) => ({ image: BENCH_IMAGE, command: ['/bin/sleep', '3600'], replicas });
    const created = await this.api.call('PUT', '/v1/services/probe', spec(1));
    if (created.status >= 300) throw new Error(`PUT /v1/services/probe: HTTP ${created.status}`);
    const gets: number[] = [];
    for (let i = 0; i < k; i++) {
      const res = await this.api.call('GET', '/v1/services/probe');
      if (res.status !== 200) throw new Error(`GET /v1/services/probe: HTTP ${res.status}`);
      gets.push(res.ms);
    }
    // Each PUT changes the spec (replicas 2, 1, 2, ...): a store write before the answer, and a
    // scheduling pass over every service after it.
    const puts: number[] = [];
    for (let i = 0; i < k; i++) {
      const res = await this.api.call('PUT', '/v1/services/probe', spec(2 - (i % 2)));
      if (res.status !== 200) throw new Error(`PUT /v1/services/probe: HTTP ${res.status}`);
      puts.push(res.ms);
    }
    let getBigService: Latency | null = null;
    if (this.placed) {
      for (let i = 0; i < 5; i++) this.bigGetMs.push((await this.getService('bench', '')).ms);
      getBigService = latency(this.bigGetMs);
    }
    this.figures.hub.api = { get: latency(gets), put: latency(puts), getBigService };
  }

  /** write_bytes of the hub process less what it wrote to its own log file. */
  private hubStoreWriteBytes(): number {
    const io = ioCounters(this.hub!.pid);
    let logBytes = 0;
    try {
      logBytes = statSync(path.join(this.tmp, `hub-${this.hubCount}.log`)).size;
    } catch {
      // no log yet
    }
    return io ? Math.max(0, io.writeBytes - logBytes) : 0;
  }

  private async restart(): Promise<void> {
    const n = this.liveAgents;
    const statusBefore = await this.agentStatus();
    const connectsBefore = statusBefore.connects;
    this.storeWriteBytesDone += this.hubStoreWriteBytes();
    const killedAt = performance.now();
    const boundMs = Math.max(180_000, n * 20);
    const curve = new Curve(n, killedAt);
    await kill(this.hub);
    const startAt = performance.now();
    // Under a reconnect storm /healthz itself may take long to answer: that time is part of the figure.
    await this.startHub(boundMs);
    const hubStartS = seconds(startAt);
    const listeningAt = performance.now();
    let reconnected = 0;
    let waitError = '';
    const done = await this.profiled('reconnect', async () => {
      await waitUntil(`all ${n} agents back after the hub restart`, Math.max(10_000, boundMs - (performance.now() - killedAt)), 100, async () => {
        const s = await this.agentStatus();
        reconnected = s.ready;
        curve.see(s.ready);
        if (s.ready < n) return null;
        return (await this.api.healthz()).connectedNodes >= n ? true : null;
      });
    }).then(
      () => true,
      (error: Error) => {
        waitError = error.message;
        return false;
      },
    );
    const secondsFromKill = seconds(killedAt);
    const secondsFromListening = seconds(listeningAt);
    const statusAfter = await this.agentStatus();
    const connectsAfter = statusAfter.connects;
    this.figures.hub.restart = {
      curveFromKill: curve.result(),
      agentMessages: diffCounts(statusAfter.messages, statusBefore.messages),
      reconnected,
      expected: n,
      secondsFromKill: done ? secondsFromKill : NaN,
      secondsFromListening: done ? secondsFromListening : NaN,
      hubStartS,
      extraConnects: connectsAfter - connectsBefore - reconnected,
      runningAgainS: null,
    };
    if (!done) throw new Error(`${waitError}; ${reconnected} of ${n} agents back when the wait ended`);
    if (this.placed) {
      const running = await this.waitRunning('bench', this.opts.replicas, killedAt, 120_000, (v) => v.status.running === this.opts.replicas);
      this.figures.hub.restart.runningAgainS = running.hubS;
    }
  }

  private async failover(): Promise<void> {
    // What the cut agents run is asked of them, not of the hub: a view of every replica is
    // seconds of blocking work for the hub at this size, which would disturb what is measured.
    const startedAt = performance.now();
    const parts = await this.all<CutResult>({ cmd: 'cut', every: 10, service: 'bench' }, 60_000);
    const cut = new Set(parts.flatMap((p) => p.nodeIds));
    this.liveAgents -= cut.size;
    const toMove = parts.reduce((n, p) => n + p.replicas, 0);
    const lostAfterMs = this.opts.lostAfterMs;
    const r = this.opts.replicas;
    const done = await this.waitRunning(
      'bench',
      r,
      startedAt,
      lostAfterMs + 120_000,
      // All running on ready nodes. Replicas of the lost nodes that wait for the hub to record the
      // hand-over (their replacements run) are not counted by the hub, and need not be gone.
      (v) => v.status.running === r && v.status.onDownNodes === 0,
    );
    const firstMoveS = done.firstIncreaseS;
    const agentsS = done.agentsS;
    const totalS = done.hubS;
    this.figures.hub.failover = {
      agentsReportedS: agentsS,
      measured: true,
      lostAfterMs,
      cutAgents: cut.size,
      replicasToMove: toMove,
      firstMoveS,
      totalS,
      afterLostAfterS: round(totalS - lostAfterMs / 1000, 3),
    };
  }

  private async finalCounts(): Promise<void> {
    if (this.api?.retries.length) this.figures.notes.push(`retried GETs after connection failures: ${this.api.retries.length} (first: ${this.api.retries[0]})`);
    this.figures.loadAvgEnd = os.loadavg().map((x) => round(x));
    const s = await this.agentStatus();
    this.figures.hub.agentWarnings = s.warnings;
    this.figures.hub.agentErrors = s.errors;
    this.figures.hub.agentMessages = s.messages;
    if (this.hub && this.storeWatch) {
      this.figures.hub.store = {
        writes: this.storeWatch.writes,
        bytesAtRename: this.storeWatch.bytes,
        writeBytesProc: this.storeWriteBytesDone + this.hubStoreWriteBytes(),
        source: 'inotify renames of shard files (count, size after each) and /proc/<hub>/io write_bytes less the log; the hub exposes no store counter',
      };
    }
  }
}

async function main(): Promise<void> {
  let opts: Options;
  try {
    opts = parseOptions(process.argv.slice(2));
  } catch (error) {
    process.stderr.write(`bench:fleet: ${(error as Error).message}\n${HELP}`);
    process.exit(2);
  }
  const bench = new FleetBench(opts);
  let exiting = false;
  const abort = (why: string, code: number) => {
    if (exiting) return;
    exiting = true;
    log(`${why} (in phase ${bench.phase}); killing the run's processes`);
    bench.cleanupSync();
    process.exit(code);
  };
  process.on('SIGINT', () => abort('interrupted', 130));
  process.on('SIGTERM', () => abort('terminated', 143));
  process.on('exit', () => bench.cleanupSync());
  const watchdog = setTimeout(() => abort(`the run's deadline of ${opts.timeoutS} s passed`, 3), opts.timeoutS * 1000);
  watchdog.unref();

  let failure: Error | null = null;
  try {
    await bench.run();
  } catch (error) {
    failure = error as Error;
    bench.figures.errors.push(`run: ${failure.message}`);
  } finally {
    await bench.cleanup();
  }
  clearTimeout(watchdog);
  const report = formatReport(bench.figures);
  process.stdout.write(`\n${report}\n`);
  if (opts.json) writeFileSync(opts.json, `${JSON.stringify(bench.figures, null, 2)}\n`);
  if (opts.doc) {
    mkdirSync(path.dirname(opts.doc), { recursive: true });
    if (!existsSync(opts.doc)) writeFileSync(opts.doc, DOC_HEADER);
    appendFileSync(opts.doc, `\n${report}\n`);
    log(`appended to ${path.relative(process.cwd(), opts.doc)}`);
  }
  process.exitCode = failure ? 1 : 0;
}

main().catch((error: unknown) => {
  process.stderr.write(`bench:fleet: ${(error as Error).stack ?? String(error)}\n`);
  process.exit(1);
});
