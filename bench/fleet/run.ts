/**
 * One run of the fleet benchmark: its processes (the hub, the agent processes), its temp dir, the
 * figures it fills in, and the measuring helpers the phases (bench/fleet/*.ts) share. Every
 * process is started through bench/processes.ts and killed by pid when the run ends.
 */
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import type { AgentStatus, BurstResult } from '../fleet-messages.js';
import type { BurstFigures, CpuFigures, FleetFigures } from '../fleet-figures.js';
import { collectGarbage, PhaseProfiler, topSelfTime } from '../inspector.js';
import { distDir, freePort, killAll, repoRoot, startHub, Worker, type NodeProc } from '../processes.js';
import { CpuWindow, gitState, ioCounters, machineFacts, rssBytes } from '../proc-stats.js';
import { StoreWatch } from '../store-watch.js';
import { HubApi, type ServiceView, type StoreCounters } from './hub-api.js';
import type { Options } from './options.js';
import { log, mergeCounts, round, seconds, sleep } from './util.js';

export class FleetRun {
  readonly figures: FleetFigures;
  tmp = '';
  dataDir = '';
  private port = 0;
  hub: NodeProc | null = null;
  hubCount = 0;
  private hubArgs: string[] = [];
  api!: HubApi;
  workers: Worker[] = [];
  storeWatch: StoreWatch | null = null;
  /** write_bytes of hub processes already gone, minus their log files. */
  storeWriteBytesDone = 0;
  /** The store counters of hub processes already gone (a killed hub's, read just before the kill). */
  storeCountersDone: StoreCounters = { writes: 0, bytes: 0 };
  hubSupportsLostAfter = false;
  placed = false;
  liveAgents = 0;
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
        hubEnv: opts.hubEnv,
        sharedEnv: Object.fromEntries(Object.entries(process.env).filter((e): e is [string, string] => /^(MALLOC_|GLIBC_TUNABLES$|NODE_OPTIONS$)/.test(e[0]) && e[1] !== undefined)),
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
        coldStart: { measured: false, reason: 'not run' },
        store: null,
        storeByPhase: [],
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
  async step(name: string, fn: () => Promise<void>): Promise<boolean> {
    this.phase = name;
    log(`${name}...`);
    const started = performance.now();
    const storeBefore = await this.storeCountersTotal();
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
    } finally {
      await this.recordStorePhase(name, storeBefore);
    }
  }

  /**
   * Store writes and bytes over the run so far by the hubs' own counters (/metrics), the hubs
   * already gone included; zero before the first hub, null when the hub does not answer.
   */
  async storeCountersTotal(): Promise<StoreCounters | null> {
    if (this.hubCount === 0) return { writes: 0, bytes: 0 };
    const child = this.hub?.child;
    if (!child || child.exitCode !== null || child.signalCode !== null) return null;
    const now = await this.api.storeCounters().catch(() => null);
    return now && { writes: this.storeCountersDone.writes + now.writes, bytes: this.storeCountersDone.bytes + now.bytes };
  }

  /** What the store took during one phase, so that a reader sees where the bytes go. */
  private async recordStorePhase(phase: string, before: StoreCounters | null): Promise<void> {
    if (this.hubCount === 0) return;
    const after = await this.storeCountersTotal();
    this.figures.hub.storeByPhase.push({
      phase,
      writes: before && after ? after.writes - before.writes : null,
      bytes: before && after ? after.bytes - before.bytes : null,
    });
  }

  /** The temp dir, the hub's defaults read from its --help, and the agent processes. */
  async setup(): Promise<void> {
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
  }

  /** The hub's command line, on a free port; called once the baseline is gone. */
  async configureHub(): Promise<void> {
    const { opts } = this;
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

  async profiled(phase: string, fn: () => Promise<void>): Promise<void> {
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

  async gcRss(proc: NodeProc): Promise<{ rss: number; heapUsed: number | null }> {
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
  async quiesce(maxS = 120): Promise<number> {
    const started = performance.now();
    while (this.opts.quietS > 0 && (performance.now() - started) / 1000 < maxS) {
      const writes = this.storeWatch?.writes ?? 0;
      const connects = (await this.agentStatus()).connects;
      await sleep(this.opts.quietS * 1000);
      if ((this.storeWatch?.writes ?? 0) === writes && (await this.agentStatus()).connects === connects) break;
    }
    return seconds(started);
  }

  async cpuWindow(pid: number, withAgents = true): Promise<CpuFigures> {
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

  async all<T>(command: Parameters<Worker['call']>[0], timeoutMs: number): Promise<T[]> {
    return Promise.all(this.workers.map((w) => w.call<T>(command, timeoutMs)));
  }

  async agentStatus(): Promise<AgentStatus> {
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

  burstFigures(parts: BurstResult[]): BurstFigures {
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

  framesPerConnection(): number {
    return Math.max(1, Math.round(this.opts.burstFrames / this.opts.agents));
  }

  /** Splits N over the agent processes: [firstIndex, count] each. */
  shares(): Array<[number, number]> {
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

  async startHub(timeoutMs = 60_000): Promise<void> {
    const started = performance.now();
    this.hubCount++;
    this.hub = await startHub(
      this.api.url,
      {
        args: this.hubArgs,
        logFile: path.join(this.tmp, `hub-${this.hubCount}.log`),
        inspect: this.opts.gc || this.opts.profileDir !== null,
        env: this.opts.hubEnv,
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

  /** The hub's RSS before the joins and after them, for the connect phase's per-agent figures. */
  rssMarks: { before?: { rss: number; heapUsed: number | null }; beforeNoGc?: number; joined?: { rss: number; heapUsed: number | null } } = {};

  async getService(name: string, query = '?limit=0'): Promise<{ view: ServiceView; ms: number }> {
    const res = await this.api.call<ServiceView>('GET', `/v1/services/${name}${query}`);
    if (res.status !== 200) throw new Error(`GET /v1/services/${name}: HTTP ${res.status}`);
    return { view: res.body, ms: res.ms };
  }

  async reportedRunning(service: string): Promise<number> {
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
  async waitRunning(
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

  /**
   * Before the hub is killed (`why`: for what, in a note): its write_bytes and its store counters,
   * which go with it, are added to the totals so far.
   */
  async keepStoreCountersBeforeKill(why: string): Promise<void> {
    this.storeWriteBytesDone += this.hubStoreWriteBytes();
    // Read last thing before the kill.
    const lastCounters = await this.api.storeCounters().catch(() => null);
    if (lastCounters) {
      this.storeCountersDone = { writes: this.storeCountersDone.writes + lastCounters.writes, bytes: this.storeCountersDone.bytes + lastCounters.bytes };
    } else {
      this.figures.notes.push(`the store counters of the hub killed ${why} could not be read: store totals leave them out`);
    }
  }

  /** write_bytes of the hub process less what it wrote to its own log file. */
  hubStoreWriteBytes(): number {
    const io = ioCounters(this.hub!.pid);
    let logBytes = 0;
    try {
      logBytes = statSync(path.join(this.tmp, `hub-${this.hubCount}.log`)).size;
    } catch {
      // no log yet
    }
    return io ? Math.max(0, io.writeBytes - logBytes) : 0;
  }
}
