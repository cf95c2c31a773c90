/**
 * The benchmark's child processes: every one is started here, remembered by pid, and killed by
 * pid when the run ends, fails, times out or is interrupted; nothing is killed by name.
 */
import { fork, spawn, type ChildProcess } from 'node:child_process';
import { closeSync, openSync } from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { hubLaunch } from '../dev/hub-launcher.js';
import { inspectorUrlIn } from './inspector.js';
import type { WorkerCommand, WorkerReply } from './fleet-messages.js';
import { PendingCalls } from './pending-calls.js';

/** The repository root, from dist/bench/ (compiled) or bench/ (run from source by a test). */
export const repoRoot = (() => {
  const here = path.dirname(fileURLToPath(import.meta.url));
  return path.basename(path.dirname(here)) === 'dist' ? path.resolve(here, '../..') : path.resolve(here, '..');
})();
export const distDir = path.join(repoRoot, 'dist');

const live = new Set<ChildProcess>();

/** Kills every child still running (SIGKILL, by pid). Safe to call from an 'exit' handler. */
/** A loopback port free right now (the OS picks it). */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = net.createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const port = (server.address() as net.AddressInfo).port;
      server.close(() => resolve(port));
    });
  });
}

export function killAll(): void {
  for (const child of live) {
    if (child.exitCode === null && child.signalCode === null && child.pid !== undefined) {
      try {
        process.kill(child.pid, 'SIGKILL');
      } catch {
        // already gone
      }
    }
  }
  live.clear();
}

function track(child: ChildProcess): Promise<void> {
  live.add(child);
  return new Promise((resolve) =>
    child.once('exit', () => {
      live.delete(child);
      resolve();
    }),
  );
}

export interface NodeProc {
  child: ChildProcess;
  pid: number;
  /** The last 64 KB of stderr (and stdout when it is piped). */
  output: () => string;
  exited: Promise<void>;
  /** Set with --inspect: the inspector's WebSocket URL. */
  inspectorUrl: string | null;
}

function collect(child: ChildProcess): () => string {
  let tail = '';
  const keep = (chunk: Buffer) => {
    tail = (tail + chunk.toString()).slice(-65_536);
  };
  child.stdout?.on('data', keep);
  child.stderr?.on('data', keep);
  return () => tail;
}

async function waitForInspector(proc: { output: () => string; child: ChildProcess }, timeoutMs = 15_000): Promise<string> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const url = inspectorUrlIn(proc.output());
    if (url) return url;
    if (proc.child.exitCode !== null || proc.child.signalCode !== null) throw new Error(`process exited before its inspector started:\n${proc.output()}`);
    if (Date.now() > deadline) throw new Error('no inspector URL on stderr');
    await new Promise((r) => setTimeout(r, 20));
  }
}

export interface HubStartOptions {
  args: string[];
  /** stdout (the hub's log) goes to this file rather than through a pipe. */
  logFile: string;
  inspect: boolean;
  extraExecArgv?: string[];
  /** Added to the hub's environment. */
  env?: Record<string, string>;
}

/**
 * Starts `tether-hub --insecure-http ...` (bin/tether-hub, as operators run it; the benches speak
 * plain HTTP) and waits until /healthz answers. The launcher execs node, so the pid is the hub's.
 */
export async function startHub(url: string, opts: HubStartOptions, timeoutMs = 60_000): Promise<NodeProc> {
  const fd = openSync(opts.logFile, 'a');
  const execArgv = [...(opts.inspect ? ['--inspect=127.0.0.1:0'] : []), ...(opts.extraExecArgv ?? [])];
  // Node flags through NODE_OPTIONS: the launcher passes its arguments to the hub, not to node.
  const nodeOptions = [process.env.NODE_OPTIONS, opts.env?.NODE_OPTIONS, ...execArgv].filter(Boolean).join(' ');
  const launch = hubLaunch(repoRoot, ['--insecure-http', ...opts.args], {
    ...process.env,
    NODE_ENV: 'production',
    ...opts.env,
    ...(nodeOptions ? { NODE_OPTIONS: nodeOptions } : {}),
  });
  const child = spawn(launch.command, launch.args, { stdio: ['ignore', fd, 'pipe'], env: launch.env });
  closeSync(fd);
  const exited = track(child);
  const output = collect(child);
  const proc: NodeProc = { child, pid: child.pid!, output, exited, inspectorUrl: null };
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (child.exitCode !== null || child.signalCode !== null) throw new Error(`hub exited at start (${child.exitCode ?? child.signalCode}):\n${output()}`);
    try {
      if ((await fetch(`${url}/healthz`, { signal: AbortSignal.timeout(2000) })).ok) break;
    } catch {
      // not listening yet
    }
    if (Date.now() > deadline) throw new Error(`hub not healthy after ${timeoutMs} ms:\n${output()}`);
    await new Promise((r) => setTimeout(r, 50));
  }
  if (opts.inspect) proc.inspectorUrl = await waitForInspector(proc);
  return proc;
}

/** Starts one of the project's compiled programs (`dist/<script>`), output to a log file. */
export function startProgram(script: string, args: string[], logFile: string, execArgv: string[] = []): NodeProc {
  const fd = openSync(logFile, 'a');
  const child = spawn(process.execPath, [...execArgv, path.join(distDir, script), ...args], { stdio: ['ignore', fd, fd] });
  closeSync(fd);
  const exited = track(child);
  return { child, pid: child.pid!, output: () => '', exited, inspectorUrl: null };
}

/** Sends SIGTERM and waits up to timeoutMs for the exit, then SIGKILL. */
export async function terminate(proc: { child: ChildProcess; exited: Promise<void> } | null | undefined, timeoutMs = 20_000): Promise<void> {
  if (!proc || proc.child.exitCode !== null || proc.child.signalCode !== null) return;
  proc.child.kill('SIGTERM');
  const timer = setTimeout(() => proc.child.kill('SIGKILL'), timeoutMs);
  await proc.exited;
  clearTimeout(timer);
}

/** Starts the bare ws server (bench/baseline-server.ts) and waits until it listens. */
export async function startBaseline(inspect: boolean): Promise<NodeProc & { port: number }> {
  const child = fork(path.join(distDir, 'bench', 'baseline-server.js'), ['--port', '0'], {
    execArgv: inspect ? ['--inspect=127.0.0.1:0'] : [],
    stdio: ['ignore', 'pipe', 'pipe', 'ipc'],
  });
  const exited = track(child);
  const output = collect(child);
  const port = await new Promise<number>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`baseline server did not listen:\n${output()}`)), 15_000);
    child.on('message', (m: { type?: string; port?: number }) => {
      if (m.type === 'listening' && m.port) {
        clearTimeout(timer);
        resolve(m.port);
      }
    });
    child.once('exit', () => reject(new Error(`baseline server exited:\n${output()}`)));
  });
  const proc = { child, pid: child.pid!, output, exited, inspectorUrl: null as string | null, port };
  if (inspect) proc.inspectorUrl = await waitForInspector(proc);
  return proc;
}

export function baselineStats(proc: NodeProc): Promise<{ connections: number; frames: number; badFrames: number }> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error('baseline server did not answer')), 10_000);
    const onMessage = (m: { type?: string; connections: number; frames: number; badFrames: number }) => {
      if (m.type !== 'stats') return;
      clearTimeout(timer);
      proc.child.off('message', onMessage);
      resolve(m);
    };
    proc.child.on('message', onMessage);
    proc.child.send({ cmd: 'stats' });
  });
}

/** One agent process of the fleet (bench/fleet-worker.ts), driven over IPC. */
export class Worker {
  private readonly pending = new PendingCalls();
  readonly ready: Promise<void>;
  readonly exited: Promise<void>;
  readonly output: () => string;

  private constructor(
    readonly index: number,
    readonly child: ChildProcess,
  ) {
    this.exited = track(child);
    this.output = collect(child);
    let markReady!: () => void;
    this.ready = new Promise((r) => (markReady = r));
    child.on('message', (m: WorkerReply) => {
      if (m.id === 0) return markReady();
      this.pending.settle(m.id, m.ok ? { value: m.result } : { error: new Error(`agent process ${index}: ${m.error}`) });
    });
    child.once('exit', (code, signal) => {
      this.pending.rejectAll(new Error(`agent process ${index} exited (${code ?? signal}):\n${this.output().slice(-2000)}`));
    });
  }

  get pid(): number {
    return this.child.pid!;
  }

  static start(index: number, sourceAddress: string | null): Worker {
    const child = fork(path.join(distDir, 'bench', 'fleet-worker.js'), sourceAddress ? ['--source-address', sourceAddress] : [], {
      execArgv: [],
      stdio: ['ignore', 'pipe', 'pipe', 'ipc'],
    });
    return new Worker(index, child);
  }

  call<T>(command: WorkerCommand, timeoutMs: number): Promise<T> {
    return this.pending.call<T>((id) => this.child.send({ ...command, id }), timeoutMs, `agent process ${this.index}: ${command.cmd}`);
  }
}

/** SIGKILL by pid, then wait for the exit. */
export async function kill(proc: { child: ChildProcess; exited: Promise<void> } | null | undefined): Promise<void> {
  if (!proc || proc.child.exitCode !== null || proc.child.signalCode !== null) return;
  proc.child.kill('SIGKILL');
  await proc.exited;
}
