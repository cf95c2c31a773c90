/** Starts the real hub and agent programs (built into dist/) as child processes for e2e tests. */
import { spawn, type ChildProcess } from 'node:child_process';
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { freePort, unprobedPort } from './test-ports.js';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');

export interface Proc {
  child: ChildProcess;
  output: () => string;
  /** The exit code, once the output is read to the end too (or 2 s after the exit, whichever is first). */
  exited: Promise<number | null>;
  /** Resolves once the process exited and its output was read to the end. */
  closed: Promise<void>;
}

export function startProgram(program: 'hub' | 'agent', args: string[]): Proc {
  const child = spawn(process.execPath, [path.join(root, 'dist', program, 'main.js'), ...args], {
    stdio: ['ignore', 'pipe', 'pipe'],
    env: { ...process.env, NODE_ENV: 'test' },
  });
  return watchChild(child, program);
}

/** Collects the output of a child spawned with piped stdout and stderr; `label` prefixes it in TETHER_TEST_LOG. */
export function watchChild(child: ChildProcess, label: string): Proc {
  let out = '';
  // Keep the tail only: a long test must not grow this without bound.
  const keep = (chunk: Buffer) => {
    out = (out + chunk.toString()).slice(-200_000);
    if (process.env.TETHER_TEST_LOG === '1') process.stdout.write(`[${label}] ${chunk.toString()}`);
  };
  child.stdout!.on('data', keep);
  child.stderr!.on('data', keep);
  const closed = new Promise<void>((resolve) => child.once('close', () => resolve()));
  // Its last lines may still be in the pipe at 'exit': wait for them too, unless a grandchild holds
  // the pipe open, when 'close' would be late by that child's whole life.
  const exitCode = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  const exited = exitCode.then(async (code) => {
    await Promise.race([closed, new Promise<void>((r) => setTimeout(r, 2000).unref())]);
    return code;
  });
  return { child, output: () => out, exited, closed };
}

export async function stopProgram(proc: Proc | undefined, signal: NodeJS.Signals = 'SIGTERM'): Promise<void> {
  if (!proc || proc.child.exitCode !== null || proc.child.signalCode !== null) return;
  proc.child.kill(signal);
  const timer = setTimeout(() => proc.child.kill('SIGKILL'), 10_000);
  await proc.exited;
  clearTimeout(timer);
}

const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

/**
 * Waits until something answers /healthz at `url`, whatever it is. It cannot tell another test's
 * hub on the same port from the one started: use startHub, or waitForHub.
 * @deprecated
 */
export async function waitForHealthy(url: string, timeoutMs = 20_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    try {
      if ((await fetch(`${url}/healthz`)).ok) return;
    } catch {
      // not yet
    }
    if (Date.now() > deadline) throw new Error(`hub at ${url} not healthy after ${timeoutMs} ms`);
    await sleep(100);
  }
}

/** The hub could not listen: something else holds its port. */
export class HubPortTakenError extends Error {}

const hasExited = (proc: Proc) => proc.child.exitCode !== null || proc.child.signalCode !== null;

async function exitError(hub: Proc, url: string): Promise<Error> {
  // The exit can come before the last of its output is read: the reason is in that last line.
  await Promise.race([hub.closed, sleep(2000)]);
  const tail = hub.output().slice(-2000);
  const how = hub.child.signalCode ?? `code ${hub.child.exitCode}`;
  if (/cannot listen on .*(EADDRINUSE|address already in use)/.test(tail)) {
    return new HubPortTakenError(`the hub for ${url} could not listen: its port is taken\n${tail}`);
  }
  return new Error(`the hub for ${url} exited (${how}) before it answered\n${tail}`);
}

/** Whether the hub answering at `url` is healthy and takes the admin token kept in `dataDir`. */
async function answersAsItself(url: string, dataDir: string): Promise<'yes' | 'not yet' | 'another hub'> {
  try {
    if (!(await fetch(`${url}/healthz`, { signal: AbortSignal.timeout(2000) })).ok) return 'not yet';
    const token = (await readFile(path.join(dataDir, 'admin-token'), 'utf8')).trim();
    const res = await fetch(`${url}/v1/nodes`, { headers: { authorization: `Bearer ${token}` }, signal: AbortSignal.timeout(2000) });
    await res.arrayBuffer();
    if (res.status === 401 || res.status === 403) return 'another hub';
    return res.ok ? 'yes' : 'not yet';
  } catch {
    return 'not yet';
  }
}

/**
 * Resolves once the hub process `hub` answers at `url` as itself: it said it listens there (its
 * start banner, printed once it does), /healthz answers, and the admin token kept in its data dir
 * is accepted. A 200 from /healthz alone can come from another test's hub on the same port.
 * Fails at once when the process exits (with a HubPortTakenError when its port was taken) and
 * when what answers at `url` refuses the token.
 */
export async function waitForHub(hub: Proc, url: string, dataDir: string, timeoutMs = 20_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  const banner = `is listening on ${url}\n`;
  for (;;) {
    if (hasExited(hub)) throw await exitError(hub, url);
    if (hub.output().includes(banner)) {
      const answer = await answersAsItself(url, dataDir);
      if (answer === 'yes') return;
      if (answer === 'another hub') {
        throw new Error(`the hub answering at ${url} refused the admin token in ${dataDir}: it is not the hub started for that data dir`);
      }
    }
    if (Date.now() > deadline) {
      throw new Error(`hub at ${url} not healthy after ${timeoutMs} ms\n${hub.output().slice(-2000)}`);
    }
    await sleep(100);
  }
}

/** A hub process started by startHub, with where it answers. */
export interface HubProc extends Proc {
  url: string;
  port: number;
  dataDir: string;
}

export interface StartHubOptions {
  dataDir: string;
  /** Flags besides --port, --data-dir and --insecure-http (these tests speak plain HTTP; hub-tls.test.ts tests TLS). */
  args?: string[];
  /** The port of a hub restarted where its agents know it; by default a free one of this worker's. */
  port?: number;
  /** How long the hub has, from its start, to answer as itself. */
  timeoutMs?: number;
  /** How long a given `port` may stay taken (by another run's process) before the start fails. */
  portWaitMs?: number;
}

/** Fresh ports tried when each found free is taken before the hub listens (another run's). */
const FRESH_PORT_ATTEMPTS = 5;

/**
 * Starts the hub on 127.0.0.1 and resolves once it answers as itself (waitForHub). On a port taken
 * meanwhile it tries another free port, or, for a given `port`, the same one again until
 * `portWaitMs` passed. A hub that fails is stopped before the error is thrown.
 */
export async function startHub(opts: StartHubOptions): Promise<HubProc> {
  const portWaitDeadline = Date.now() + (opts.portWaitMs ?? 20_000);
  for (let attempt = 1; ; attempt++) {
    const port = opts.port ?? (await freePort());
    const url = `http://127.0.0.1:${port}`;
    const proc = startProgram('hub', ['--port', String(port), '--data-dir', opts.dataDir, '--insecure-http', ...(opts.args ?? [])]);
    try {
      await waitForHub(proc, url, opts.dataDir, opts.timeoutMs);
      return { ...proc, url, port, dataDir: opts.dataDir };
    } catch (error) {
      await stopProgram(proc);
      if (!(error instanceof HubPortTakenError)) throw error;
      if (opts.port === undefined ? attempt >= FRESH_PORT_ATTEMPTS : Date.now() > portWaitDeadline) throw error;
      if (opts.port !== undefined) await sleep(250);
    }
  }
}

/** An HTTP client for the hub's API with its admin token. */
export async function hubClient(url: string, dataDir: string) {
  const token = (await readFile(path.join(dataDir, 'admin-token'), 'utf8')).trim();
  return async function api<T = any>(method: string, route: string, body?: unknown): Promise<{ status: number; body: T }> {
    const res = await fetch(`${url}${route}`, {
      method,
      headers: { authorization: `Bearer ${token}`, ...(body === undefined ? {} : { 'content-type': 'application/json' }) },
      body: body === undefined ? undefined : JSON.stringify(body),
    });
    const text = await res.text();
    return { status: res.status, body: (text ? JSON.parse(text) : undefined) as T };
  };
}

/**
 * A port of this worker's own slice, never handed out before by this process, but not probed:
 * use freePort (test-ports.ts), or startHub, which also retry when another process holds it.
 * @deprecated
 */
export function randomPort(): number {
  return unprobedPort();
}
