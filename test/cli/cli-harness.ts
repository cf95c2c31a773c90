/**
 * Runs the tether CLI in process (runCli, as main.ts does) with its own stdout, stderr, stdin,
 * environment and home dir, and keeps what it printed. Followed commands (`-f`) are started, read
 * as they print, and stopped as Ctrl-C stops them.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { Readable } from 'node:stream';
import { runCli } from '../../cli/program.js';

export interface CliRun {
  code: number;
  stdout: string;
  stderr: string;
}

export interface CliEnv {
  env?: Record<string, string | undefined>;
  homeDir: string;
  stdin?: string;
}

export interface RunningCli {
  readonly stdout: string;
  readonly stderr: string;
  /** Resolves once stdout holds `text` (no timer: the test's own timeout bounds it). */
  waitForOutput(text: string): Promise<void>;
  /** Ctrl-C. */
  stop(): void;
  done: Promise<CliRun>;
}

export function startTether(argv: readonly string[], where: CliEnv): RunningCli {
  let stdout = '';
  let stderr = '';
  const waiters: Array<{ text: string; resolve: () => void }> = [];
  const controller = new AbortController();
  const wake = () => {
    for (const w of [...waiters]) {
      if (stdout.includes(w.text)) {
        waiters.splice(waiters.indexOf(w), 1);
        w.resolve();
      }
    }
  };
  const done = runCli(argv, {
    stdout: { write: (s: string) => ((stdout += s), wake(), true) },
    stderr: { write: (s: string) => ((stderr += s), true) },
    stdin: Readable.from(where.stdin === undefined ? [] : [Buffer.from(where.stdin)]),
    env: where.env ?? {},
    homeDir: where.homeDir,
    signal: controller.signal,
  }).then((code) => ({ code, stdout, stderr }));
  return {
    get stdout() {
      return stdout;
    },
    get stderr() {
      return stderr;
    },
    waitForOutput(text) {
      if (stdout.includes(text)) return Promise.resolve();
      return new Promise((resolve, reject) => {
        waiters.push({ text, resolve });
        // A command that ends without printing it fails the wait at once, not at the test's timeout.
        void done.then((run) => (stdout.includes(text) ? resolve() : reject(new Error(`ended (${run.code}) without printing ${JSON.stringify(text)}: ${run.stdout}${run.stderr}`))));
      });
    },
    stop: () => controller.abort(),
    done,
  };
}

export function tether(argv: readonly string[], where: CliEnv): Promise<CliRun> {
  return startTether(argv, where).done;
}

/** A fresh home dir (for the config file), removed by the returned function. */
export async function tempHome(): Promise<{ dir: string; remove(): Promise<void> }> {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'tether-cli-home-'));
  return { dir, remove: () => rm(dir, { recursive: true, force: true }) };
}

/** Polls `check` until it holds (the hub places replicas in its loop, a moment after a write); the test's timeout bounds it. */
export async function until(check: () => Promise<boolean>): Promise<void> {
  while (!(await check())) await new Promise((resolve) => setTimeout(resolve, 20));
}
