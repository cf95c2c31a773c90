/**
 * The real hub on a small tmpfs: a full disk refuses writes with 507 and keeps nothing of them,
 * /healthz says so, and all works again once space is freed; a hub started on a full disk says
 * so in one line. Needs root (mount); skipped otherwise.
 */
import { execFileSync } from 'node:child_process';
import { mkdir, mkdtemp, readdir, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it, vi } from 'vitest';
import { hubClient, startHub, startProgram, stopProgram, type Proc } from '../helpers/processes.js';

const isRoot = process.getuid?.() === 0;
/** Outside CI a developer without root skips it; in CI it runs, and fails without the privilege. */
const runs = isRoot || process.env.CI === 'true';
let mountDir = '';
let hub: Proc | undefined;

/** Fills the filesystem: the write fails with ENOSPC once nothing is left, and what it wrote stays. */
async function fill(file: string): Promise<void> {
  await writeFile(file, Buffer.alloc(8 * 1024 * 1024)).catch((error: NodeJS.ErrnoException) => {
    if (error.code !== 'ENOSPC') throw error;
  });
}

beforeAll(async () => {
  if (!runs) return;
  mountDir = await mkdtemp(path.join(os.tmpdir(), 'tether-full-disk-'));
  execFileSync('mount', ['-t', 'tmpfs', '-o', 'size=2m', 'tmpfs', mountDir]);
});
afterEach(async () => {
  await stopProgram(hub);
  hub = undefined;
  if (mountDir) for (const entry of ['hub', 'filler']) await rm(path.join(mountDir, entry), { recursive: true, force: true });
});
afterAll(async () => {
  if (!mountDir) return;
  execFileSync('umount', [mountDir]);
  await rm(mountDir, { recursive: true, force: true });
});

describe.skipIf(!runs)('hub on a full disk', () => {
  it('refuses a write with 507, keeps nothing of it, and takes it once space is freed', async () => {
    const dataDir = path.join(mountDir, 'hub');
    const started = await startHub({ dataDir });
    hub = started;
    const { url, port } = started;
    const api = await hubClient(url, dataDir);
    expect((await api('PUT', '/v1/services/web', { image: 'nginx:1' })).status).toBe(201);
    // The hub's next pass writes the replica's pending placement: a line of the shard's change log,
    // or the shard written whole, keeping the one it replaces as `.prev`, which a later write on
    // the full disk could replace to find room. Whether the pass ran before the fill depended on
    // how soon after the hub's start the PUT came: wait for its write, and drop any copy, so that
    // the hub has nothing to free.
    const services = path.join(dataDir, 'store', 'services');
    const copies = async () => (await readdir(services)).filter((f) => f.endsWith('.prev'));
    const passWritten = async () => (await readdir(services)).filter((f) => f.endsWith('.prev') || f.endsWith('.log'));
    await vi.waitFor(async () => expect(await passWritten()).not.toHaveLength(0), { timeout: 10_000, interval: 50 });
    for (const copy of await copies()) await rm(path.join(services, copy));

    await fill(path.join(mountDir, 'filler'));
    const refused = await api('PUT', '/v1/services/web', { image: 'nginx:2' });
    expect(refused.status).toBe(507);
    expect(refused.body.error.code).toBe('insufficient_storage');
    expect((await api('PUT', '/v1/services/web', { image: 'nginx:2' })).status).toBe(507);
    expect((await api('DELETE', '/v1/services/web')).status).toBe(507);
    expect((await api('GET', '/v1/services/web')).body).toMatchObject({ revision: 1, spec: { image: 'nginx:1' } });
    const health = await fetch(`${url}/healthz`);
    expect(health.status).toBe(503);
    expect(await health.json()).toMatchObject({ status: 'failing', store: { ok: false } });

    // What a restart loads is what the hub showed.
    await stopProgram(hub, 'SIGKILL');
    await rm(path.join(mountDir, 'filler'));
    hub = await startHub({ dataDir, port });
    expect((await api('GET', '/v1/services/web')).body).toMatchObject({ revision: 1, spec: { image: 'nginx:1' } });
    const accepted = await api('PUT', '/v1/services/web', { image: 'nginx:2' });
    expect(accepted.status).toBe(200);
    expect(accepted.body).toMatchObject({ outcome: 'updated', revision: 2 });
  });

  it('recovers without a restart once space is freed', async () => {
    const dataDir = path.join(mountDir, 'hub');
    const started = await startHub({ dataDir });
    hub = started;
    const { url } = started;
    const api = await hubClient(url, dataDir);
    await fill(path.join(mountDir, 'filler'));
    expect((await api('PUT', '/v1/services/web', { image: 'nginx:1' })).status).toBe(507);
    await rm(path.join(mountDir, 'filler'));
    expect((await api('PUT', '/v1/services/web', { image: 'nginx:1' })).status).toBe(201);
    expect((await fetch(`${url}/healthz`)).status).toBe(200);
  });

  it('started on a full disk, says so in one line and exits non-zero', async () => {
    const dataDir = path.join(mountDir, 'hub');
    await mkdir(dataDir);
    await fill(path.join(mountDir, 'filler'));
    // Port 0: it stops before it listens; were it to start anyway, on a port no other test holds.
    hub = startProgram('hub', ['--port', '0', '--data-dir', dataDir, '--insecure-http']);
    expect(await hub.exited).toBe(1);
    const output = hub.output().trim();
    expect(output).toMatch(/^tether-hub: cannot write to .*hub: no space left on the device \(disk full\) \(ENOSPC\)$/);
    expect(output.split('\n')).toHaveLength(1);
  });
});
