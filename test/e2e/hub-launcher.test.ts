/**
 * `tether-hub` is bin/tether-hub: a launcher that sets glibc's trim threshold and execs node on
 * the hub. Run here as npm runs it, through a symlink (node_modules/.bin/tether-hub).
 */
import { spawn } from 'node:child_process';
import { mkdtemp, readFile, rm, symlink } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterEach, beforeEach, expect, it } from 'vitest';
import { hubLaunch } from '../../dev/hub-launcher.js';
import { stopProgram, waitForHub, watchChild, type Proc } from '../helpers/processes.js';
import { freePort } from '../helpers/test-ports.js';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
let dir = '';
const hubs: Proc[] = [];

beforeEach(async () => {
  dir = await mkdtemp(path.join(os.tmpdir(), 'tether-hub-launcher-'));
});
afterEach(async () => {
  for (const hub of hubs.splice(0)) await stopProgram(hub);
  await rm(dir, { recursive: true, force: true });
});

async function launch(env: NodeJS.ProcessEnv): Promise<{ hub: Proc; environ: Map<string, string>; cmdline: string[] }> {
  const link = path.join(dir, 'tether-hub');
  await symlink(path.join(root, 'bin', 'tether-hub'), link);
  const port = await freePort();
  const dataDir = path.join(dir, 'hub');
  // As the scripts launch it, but through the link in place of bin/tether-hub.
  const launch = hubLaunch(root, ['--port', String(port), '--data-dir', dataDir, '--insecure-http'], { ...env, NODE_ENV: 'test' });
  const child = spawn(link, launch.args, { stdio: ['ignore', 'pipe', 'pipe'], env: launch.env });
  const hub = watchChild(child, 'hub');
  hubs.push(hub);
  await waitForHub(hub, `http://127.0.0.1:${port}`, dataDir);
  const environ = new Map<string, string>();
  for (const entry of (await readFile(`/proc/${child.pid}/environ`, 'utf8')).split('\0').filter(Boolean)) {
    const at = entry.indexOf('=');
    environ.set(entry.slice(0, at), entry.slice(at + 1));
  }
  const cmdline = (await readFile(`/proc/${child.pid}/cmdline`, 'utf8')).split('\0').filter(Boolean);
  return { hub, environ, cmdline };
}

it('runs the hub in its own process (node, not a shell waiting on it) with the trim threshold set', async () => {
  const env = { ...process.env };
  delete env.MALLOC_TRIM_THRESHOLD_;
  const { environ, cmdline } = await launch(env);
  expect(environ.get('MALLOC_TRIM_THRESHOLD_')).toBe('131072');
  expect(path.basename(cmdline[0]!)).toMatch(/^node/);
  expect(path.resolve(cmdline[1]!)).toBe(path.join(root, 'dist', 'hub', 'main.js'));
  expect(cmdline.slice(2)).toContain('--insecure-http');
});

it("keeps an operator's own trim threshold", async () => {
  const { environ } = await launch({ ...process.env, MALLOC_TRIM_THRESHOLD_: '65536' });
  expect(environ.get('MALLOC_TRIM_THRESHOLD_')).toBe('65536');
});
