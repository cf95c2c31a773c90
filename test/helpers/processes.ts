/** Starts the real hub and agent programs (built into dist/) as child processes for e2e tests. */
import { spawn, type ChildProcess } from 'node:child_process';
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');

export interface Proc {
  child: ChildProcess;
  output: () => string;
  exited: Promise<number | null>;
}

export function startProgram(program: 'hub' | 'agent', args: string[]): Proc {
  const child = spawn(process.execPath, [path.join(root, 'dist', program, 'main.js'), ...args], {
    stdio: ['ignore', 'pipe', 'pipe'],
    env: { ...process.env, NODE_ENV: 'test' },
  });
  let out = '';
  // Keep the tail only: a long test must not grow this without bound.
  const keep = (chunk: Buffer) => {
    out = (out + chunk.toString()).slice(-200_000);
    if (process.env.TETHER_TEST_LOG === '1') process.stdout.write(`[${program}] ${chunk.toString()}`);
  };
  child.stdout!.on('data', keep);
  child.stderr!.on('data', keep);
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  return { child, output: () => out, exited };
}

export async function stopProgram(proc: Proc | undefined, signal: NodeJS.Signals = 'SIGTERM'): Promise<void> {
  if (!proc || proc.child.exitCode !== null || proc.child.signalCode !== null) return;
  proc.child.kill(signal);
  const timer = setTimeout(() => proc.child.kill('SIGKILL'), 10_000);
  await proc.exited;
  clearTimeout(timer);
}

export async function waitForHealthy(url: string, timeoutMs = 20_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    try {
      if ((await fetch(`${url}/healthz`)).ok) return;
    } catch {
      // not yet
    }
    if (Date.now() > deadline) throw new Error(`hub at ${url} not healthy after ${timeoutMs} ms`);
    await new Promise((r) => setTimeout(r, 100));
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
 * A port for a test's hub or proxy, below Linux's ephemeral range (32768 and up): picks from
 * 20000-39999 could land on a port an outgoing connection of another test holds, and the hub
 * then cannot listen (the likely cause of a CI run that waited 20 s for a hub's /healthz).
 */
export function randomPort(): number {
  return 10_000 + Math.floor(Math.random() * 22_000);
}
