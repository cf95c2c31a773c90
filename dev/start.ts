/**
 * `npm start`: a hub with its embedded store in ./.tether/hub and, when a Docker engine is
 * reachable, a local agent (./.tether/agent) joined to it. Both are the real programs, run as
 * child processes, exactly as an operator would run them.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import http from 'node:http';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { hubLaunch } from './hub-launcher.js';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
const port = Number(process.env.TETHER_PORT ?? 7070);
const hubUrl = `http://127.0.0.1:${port}`;
const hubDir = path.resolve('.tether/hub');
const agentDir = path.resolve('.tether/agent');
const dockerSocket = process.env.DOCKER_SOCKET ?? '/var/run/docker.sock';
// People read npm start's output, even through a pipe (| tee): readable lines unless asked otherwise.
const logFormat = process.env.TETHER_LOG_FORMAT || 'pretty';
const children: ChildProcess[] = [];

function run(name: string, command: string, args: string[], env: NodeJS.ProcessEnv): ChildProcess {
  const child = spawn(command, args, { stdio: 'inherit', env });
  children.push(child);
  child.on('exit', (code, signal) => {
    if (stopping) return;
    process.stderr.write(`${name} exited (${signal ?? code}); stopping\n`);
    stop(code ?? 1);
  });
  return child;
}

let stopping = false;
function stop(code: number): void {
  if (stopping) return;
  stopping = true;
  for (const c of children) c.kill('SIGTERM');
  setTimeout(() => process.exit(code), 3000).unref();
  Promise.all(children.map((c) => new Promise((r) => (c.exitCode !== null ? r(null) : c.once('exit', r))))).then(() => process.exit(code));
}
process.on('SIGINT', () => stop(0));
process.on('SIGTERM', () => stop(0));

function dockerReachable(): Promise<boolean> {
  return new Promise((resolve) => {
    const req = http.get({ socketPath: dockerSocket, path: '/_ping', timeout: 2000 }, (res) => {
      res.resume();
      resolve(res.statusCode === 200);
    });
    req.on('error', () => resolve(false));
    req.on('timeout', () => req.destroy());
  });
}

async function waitForHub(deadlineMs: number): Promise<void> {
  while (Date.now() < deadlineMs) {
    try {
      if ((await fetch(`${hubUrl}/healthz`)).ok) return;
    } catch {
      // not up yet
    }
    await new Promise((r) => setTimeout(r, 200));
  }
  throw new Error(`the hub did not answer on ${hubUrl} within 30 s`);
}

async function main(): Promise<void> {
  // Plain HTTP on loopback for local development: the hub says so at start.
  const hub = hubLaunch(root, ['--port', String(port), '--host', '127.0.0.1', '--data-dir', hubDir, '--insecure-http', '--log-format', logFormat]);
  run('the hub', hub.command, hub.args, hub.env);
  await waitForHub(Date.now() + 30_000);

  if (!(await dockerReachable())) {
    process.stdout.write(`No Docker engine reachable at ${dockerSocket}: the hub runs alone. Start Docker and run npm start again for a local agent.\n`);
    return;
  }
  const args = ['--data-dir', agentDir, '--name', 'local', '--label', 'tether.local=true', '--log-format', logFormat];
  // The join token in the agent's environment, as install.sh passes it: arguments are anyone's to read.
  const env: Record<string, string> = {};
  if (!existsSync(path.join(agentDir, 'node.json'))) {
    const adminToken = (await readFile(path.join(hubDir, 'admin-token'), 'utf8')).trim();
    const res = await fetch(`${hubUrl}/v1/join-tokens`, {
      method: 'POST',
      headers: { authorization: `Bearer ${adminToken}`, 'content-type': 'application/json' },
      body: JSON.stringify({ ttlSeconds: 600 }),
    });
    if (!res.ok) throw new Error(`could not create a join token for the local agent: HTTP ${res.status}`);
    const { token } = (await res.json()) as { token: string };
    args.push('--hub', hubUrl);
    env.TETHER_JOIN_TOKEN = token;
  }
  process.stdout.write(`Starting a local agent (data dir ${agentDir}) on the Docker engine at ${dockerSocket}.\n`);
  run('the agent', process.execPath, [path.join(root, 'dist', 'agent', 'main.js'), ...args], { ...process.env, ...env });
}

main().catch((error: unknown) => {
  process.stderr.write(`npm start: ${(error as Error).message}\n`);
  stop(1);
});
