/**
 * The hub program itself: API tokens made through its API outlive a restart, and its audit log
 * lands in its data dir, private, and is read back after the restart.
 */
import { mkdtemp, readFile, rm, stat } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { hubClient, startHub, stopProgram, type HubProc } from '../helpers/processes.js';

describe('tether-hub: roles and audit', () => {
  let dir = '';
  let hub: HubProc | undefined;

  beforeAll(async () => {
    dir = await mkdtemp(path.join(os.tmpdir(), 'tether-hub-audit-'));
  });
  afterAll(async () => {
    await stopProgram(hub);
    await rm(dir, { recursive: true, force: true });
  });

  it('keeps tokens and the audit across a restart, in the data dir', async () => {
    hub = await startHub({ dataDir: dir });
    let api = await hubClient(hub.url, dir);
    const { status, body: made } = await api<{ id: string; token: string }>('POST', '/v1/api-tokens', { role: 'viewer', name: 'wall' });
    expect(status).toBe(201);
    const asViewer = (method: string, route: string) => fetch(`${hub!.url}${route}`, { method, headers: { authorization: `Bearer ${made.token}` } });
    expect((await asViewer('GET', '/v1/services')).status).toBe(200);
    expect((await asViewer('DELETE', '/v1/services/web')).status).toBe(403);

    await stopProgram(hub);
    const file = path.join(dir, 'audit', 'audit.log');
    expect((await stat(file)).mode & 0o777).toBe(0o600);
    expect((await stat(path.join(dir, 'audit'))).mode & 0o777).toBe(0o700);
    expect(await readFile(file, 'utf8')).not.toContain(made.token.split('.')[1]);

    hub = await startHub({ dataDir: dir, port: hub.port });
    api = await hubClient(hub.url, dir);
    expect((await asViewer('GET', '/v1/nodes')).status).toBe(200);
    const { body: audit } = await api<{ records: Array<{ method: string; route: string; status: number; token: { name: string } | null }> }>('GET', '/v1/audit');
    expect(audit.records.map((r) => [r.method, r.route, r.status, r.token?.name])).toEqual([
      ['POST', '/v1/api-tokens', 201, 'admin'],
      ['DELETE', '/v1/services/:name', 403, 'wall'],
    ]);
  });
});
