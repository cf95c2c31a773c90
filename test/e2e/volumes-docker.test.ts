/**
 * Volumes on the real engine, through the real hub and agent: what a replica writes to its named
 * volume survives an update (env, then image) and an agent restart during which its container was
 * removed by hand; a tmpfs mount has the size its spec asks for; a plain delete keeps the engine's
 * volume, a delete with ?purgeVolumes=true removes it.
 */
import { execFileSync } from 'node:child_process';
import path from 'node:path';
import { afterAll, beforeAll, expect, it, vi } from 'vitest';
import { LABELS } from '../../agent/runtime/container-runtime.js';
import { engineVolumeName } from '../../agent/runtime/spec-mounts.js';
import { describeDocker } from '../helpers/docker.js';
import { startE2eFleet, type E2eFleet } from '../helpers/e2e-fleet.js';
import { startProgram, stopProgram } from '../helpers/processes.js';

const ADDRESS = '127.0.0.71';
const IMAGE_1 = 'tether-test/busybox:1';
const IMAGE_2 = 'tether-test/busybox:2';
const until = <T>(fn: () => Promise<T> | T, timeout = 30_000) => vi.waitFor(fn, { timeout, interval: 200 });

const dockerText = (args: string[]) => execFileSync('docker', args, { encoding: 'utf8', timeout: 15_000, stdio: ['ignore', 'pipe', 'pipe'] }).trim();

let fleet: E2eFleet;
let nodeId: string;

/** The ids of the service's running containers on the node. */
function runningIds(service: string): string[] {
  const out = dockerText(['ps', '-q', '--no-trunc', '--filter', `label=${LABELS.nodeId}=${nodeId}`, '--filter', `label=${LABELS.service}=${service}`]);
  return out === '' ? [] : out.split('\n');
}

/** The service's one running container, once there is exactly one and it is not `other`. */
async function theContainer(service: string, other?: string): Promise<string> {
  let id = '';
  await until(() => {
    const ids = runningIds(service);
    expect(ids).toHaveLength(1);
    expect(ids[0]).not.toBe(other);
    id = ids[0]!;
  });
  return id;
}

function volumeExists(name: string): boolean {
  return dockerText(['volume', 'ls', '-q', '--filter', `name=^${name}$`]) === name;
}

const spec = (image: string, rev: string) => ({
  image,
  replicas: 1,
  command: ['sh', '-c', 'sleep 3600'],
  env: { REV: rev },
  volumes: [{ name: 'data', target: '/data' }],
  tmpfs: [{ target: '/scratch', sizeMB: 16 }],
});

describeDocker('volumes on the real engine', () => {
  beforeAll(async () => {
    fleet = await startE2eFleet('volumes', [ADDRESS]);
    nodeId = fleet.nodeIds[0]!;
  }, 60_000);

  afterAll(async () => {
    await fleet?.close();
    // Containers are gone now: the volumes the tests left can go.
    if (!nodeId) return;
    const left = dockerText(['volume', 'ls', '-q', '--filter', `label=${LABELS.nodeId}=${nodeId}`]);
    if (left !== '') execFileSync('docker', ['volume', 'rm', ...left.split('\n')], { stdio: 'ignore' });
  }, 60_000);

  it('keeps what a replica wrote to its volume across an update, an image change and an agent restart; a tmpfs has its size', async () => {
    expect((await fleet.api('PUT', '/v1/services/db', spec(IMAGE_1, '1'))).status).toBe(201);
    let id = await theContainer('db');
    const marker = dockerText(['exec', id, 'sh', '-c', 'echo "kept-$$-$(date +%s%N)" > /data/marker && cat /data/marker']);
    expect(marker).toMatch(/^kept-/);
    expect(volumeExists(engineVolumeName(nodeId, 'db', 'data'))).toBe(true);

    // The tmpfs is the size the spec asked for: 16 MiB, in 1K blocks.
    const df = dockerText(['exec', id, 'sh', '-c', 'df -k /scratch']).split('\n').pop()!.trim().split(/\s+/);
    expect(df[0]).toBe('tmpfs');
    expect(Number(df[1])).toBe(16 * 1024);

    // An env change is a new container, on the same volume.
    expect((await fleet.api('PUT', '/v1/services/db', spec(IMAGE_1, '2'))).status).toBe(200);
    id = await theContainer('db', id);
    expect(dockerText(['exec', id, 'sh', '-c', 'cat /data/marker'])).toBe(marker);

    // So is a new image.
    expect((await fleet.api('PUT', '/v1/services/db', spec(IMAGE_2, '2'))).status).toBe(200);
    id = await theContainer('db', id);
    expect(dockerText(['inspect', '--format', '{{.Config.Image}}', id])).toBe(IMAGE_2);
    expect(dockerText(['exec', id, 'sh', '-c', 'cat /data/marker'])).toBe(marker);

    // The agent stops, the container is removed by hand meanwhile; the agent back makes it again
    // on the same volume.
    const [agent] = fleet.agents.splice(0, 1);
    await stopProgram(agent);
    execFileSync('docker', ['rm', '-f', id], { stdio: 'ignore' });
    fleet.agents.push(
      startProgram('agent', ['--data-dir', path.join(fleet.dir, 'agent-1'), '--name', `e2e-volumes-1-${process.pid}`, '--publish-address', ADDRESS]),
    );
    id = await theContainer('db', id);
    expect(dockerText(['exec', id, 'sh', '-c', 'cat /data/marker'])).toBe(marker);
  }, 180_000);

  it('keeps the engine volume on a plain delete and removes it with ?purgeVolumes=true', async () => {
    const keep = engineVolumeName(nodeId, 'keep', 'data');
    const purge = engineVolumeName(nodeId, 'purge', 'data');
    for (const name of ['keep', 'purge']) expect((await fleet.api('PUT', `/v1/services/${name}`, spec(IMAGE_1, '1'))).status).toBe(201);
    await theContainer('keep');
    await theContainer('purge');
    expect(volumeExists(keep) && volumeExists(purge)).toBe(true);

    const kept = await fleet.api('DELETE', '/v1/services/keep');
    expect(kept.body).toMatchObject({ deleted: true, volumesKept: ['data'], volumesPurged: [] });
    await until(() => expect(runningIds('keep')).toEqual([]));

    const purged = await fleet.api('DELETE', '/v1/services/purge?purgeVolumes=true');
    expect(purged.body).toMatchObject({ deleted: true, volumesKept: [], volumesPurged: ['data'] });
    await until(() => expect(volumeExists(purge)).toBe(false));
    // By then the agent has had passes enough: the kept volume is still there.
    expect(volumeExists(keep)).toBe(true);
  }, 120_000);
});
