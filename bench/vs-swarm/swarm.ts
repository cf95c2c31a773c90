/**
 * Docker Swarm, the peer measured against, through the docker CLI (what an operator types). The
 * engine joins a one-node swarm for the run and leaves it at the end, whatever happens.
 */
import { execFile } from 'node:child_process';
import { swarmState } from './engine.js';

/** One CLI call at most this long. */
const CLI_TIMEOUT_MS = 60_000;

export function docker(args: string[]): Promise<string> {
  return new Promise((resolve, reject) => {
    execFile('docker', args, { timeout: CLI_TIMEOUT_MS, maxBuffer: 1 << 20 }, (err, stdout, stderr) => {
      if (err) reject(new Error(`docker ${args.join(' ')}: ${stderr.trim() || err.message}`));
      else resolve(stdout.trim());
    });
  });
}

/**
 * Puts the engine in swarm mode. An engine already in a swarm is someone else's: the run stops
 * rather than touch it (and never leaves it).
 */
export async function initSwarm(): Promise<void> {
  const state = await swarmState();
  if (state !== 'inactive') {
    throw new Error(`the engine is already in swarm mode (${state}); not touching someone else's swarm: run this on an engine outside any swarm`);
  }
  await docker(['swarm', 'init', '--advertise-addr', '127.0.0.1']);
}

export async function leaveSwarm(): Promise<void> {
  await docker(['swarm', 'leave', '--force']);
}

export interface SwarmServiceOptions {
  name: string;
  replicas: number;
  image: string;
  command: string[];
  labels: Record<string, string>;
  /** Same settings as Tether's `update` on the other side. */
  parallelism: number;
  monitor: string;
}

/**
 * `docker service create`, detached (the CLI returns once the service is accepted; convergence is
 * judged on the engine). `--init` as Tether's agent does for every container, so that a stop
 * takes no kill timeout; the image as it is locally (no registry lookup, as on Tether's side).
 * Rollbacks use the update's parallelism and monitor, as Tether's do.
 */
export async function createService(o: SwarmServiceOptions): Promise<void> {
  const labels = Object.entries(o.labels).flatMap(([k, v]) => ['--container-label', `${k}=${v}`]);
  await docker([
    'service', 'create', '--detach', '--no-resolve-image', '--init', '--name', o.name, '--replicas', String(o.replicas), ...labels,
    '--update-parallelism', String(o.parallelism), '--update-delay', '0s', '--update-monitor', o.monitor,
    '--update-order', 'stop-first', '--update-failure-action', 'rollback', '--update-max-failure-ratio', '0',
    '--rollback-parallelism', String(o.parallelism), '--rollback-delay', '0s', '--rollback-monitor', o.monitor,
    '--rollback-order', 'stop-first',
    o.image, ...o.command,
  ]);
}

export async function scaleService(name: string, replicas: number): Promise<void> {
  await docker(['service', 'scale', '--detach', `${name}=${replicas}`]);
}

/**
 * The image and the command's arguments, whichever changed (the image has no entrypoint: the
 * arguments are the whole command, as Tether's `command`).
 */
export async function updateService(name: string, image: string, args: string[]): Promise<void> {
  await docker(['service', 'update', '--detach', '--no-resolve-image', '--image', image, '--args', args.join(' '), name]);
}

export async function removeService(name: string): Promise<void> {
  await docker(['service', 'rm', name]);
}
