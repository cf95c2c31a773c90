/**
 * `--allow-host-path`: a spec may mount a host path only under one the hub's operator allowed on
 * its command line; without the flag, none. A bad path is a usage error, not a start.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { hubClient, startHub, startProgram, stopProgram, type Proc } from '../helpers/processes.js';

const dirs: string[] = [];
const procs: Proc[] = [];
afterEach(async () => {
  for (const p of procs.splice(0)) await stopProgram(p);
  for (const d of dirs.splice(0)) await rm(d, { recursive: true, force: true });
});

async function hubWith(args: string[]) {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'tether-host-paths-'));
  dirs.push(dir);
  const hub = await startHub({ dataDir: dir, args });
  procs.push(hub);
  return { hub, api: await hubClient(hub.url, dir) };
}

const withBind = (hostPath: string) => ({ image: 'busybox:1', replicas: 1, binds: [{ hostPath, target: '/data' }] });

describe('hub --allow-host-path', () => {
  it('refuses every bind when the hub was started without the flag, naming the field', async () => {
    const { hub, api } = await hubWith([]);
    const res = await api<{ error: { code: string; details: Array<{ path: string; message: string }> } }>('PUT', '/v1/services/binds', withBind('/srv/data'));
    expect(res.status).toBe(400);
    expect(res.body.error.details).toContainEqual(expect.objectContaining({ path: 'binds[0].hostPath', message: expect.stringMatching(/--allow-host-path/) }));
    expect(hub.output()).toMatch(/services may not mount host paths/);
  });

  it('accepts a bind under an allowed path and refuses one outside every allowed path', async () => {
    const { hub, api } = await hubWith(['--allow-host-path', '/srv/data/', '--allow-host-path', '/mnt/usb']);
    expect((await api('PUT', '/v1/services/inside', withBind('/srv/data/cache'))).status).toBe(201);
    expect((await api('PUT', '/v1/services/exact', withBind('/mnt/usb'))).status).toBe(201);
    const outside = await api<{ error: { details: Array<{ path: string; message: string }> } }>('PUT', '/v1/services/outside', withBind('/srv/database'));
    expect(outside.status).toBe(400);
    expect(outside.body.error.details).toContainEqual(expect.objectContaining({ path: 'binds[0].hostPath', message: expect.stringContaining('/srv/data, /mnt/usb') }));
    expect((await api('GET', '/v1/services/outside')).status).toBe(404);
    // The start says which paths it allows (normalized: no trailing "/").
    expect(hub.output()).toMatch(/services may mount these host paths/);
    expect(hub.output()).toContain('"/srv/data"');
  });

  it('refuses a relative or ".." path as a usage error', async () => {
    for (const bad of ['data', '/srv/../etc']) {
      const dir = await mkdtemp(path.join(os.tmpdir(), 'tether-host-paths-'));
      dirs.push(dir);
      const proc = startProgram('hub', ['--port', '0', '--data-dir', dir, '--insecure-http', '--allow-host-path', bad]);
      procs.push(proc);
      expect(await proc.exited).toBe(2);
      await proc.closed;
      expect(proc.output()).toContain('--allow-host-path must');
    }
  });
});
