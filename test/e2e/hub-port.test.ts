/**
 * The real hub program started the way the e2e tests start theirs, with its port held by another
 * process: vitest runs files in parallel, and a hub whose port another file's hub held used to
 * be taken for healthy (that one answered /healthz) and its data dir found without admin token.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import http from 'node:http';
import os from 'node:os';
import path from 'node:path';
import { afterEach, beforeEach, expect, it } from 'vitest';
import { HubPortTakenError, hubClient, startHub, stopProgram, type Proc } from '../helpers/processes.js';
import { freePort } from '../helpers/test-ports.js';

let dir = '';
const hubs: Proc[] = [];
const servers: http.Server[] = [];

beforeEach(async () => {
  dir = await mkdtemp(path.join(os.tmpdir(), 'tether-hub-port-'));
});
afterEach(async () => {
  for (const hub of hubs.splice(0)) await stopProgram(hub);
  await Promise.all(servers.splice(0).map((s) => new Promise((r) => s.close(r))));
  await rm(dir, { recursive: true, force: true });
});

/** Another test's hub, as far as /healthz can tell, on `port`; it takes no admin token of ours. */
async function anotherHub(port: number): Promise<http.Server> {
  const server = http.createServer((req, res) => {
    res.statusCode = req.url === '/healthz' ? 200 : 401;
    res.setHeader('content-type', 'application/json');
    res.end(req.url === '/healthz' ? '{"status":"ok"}' : '{}');
  });
  servers.push(server);
  await new Promise<void>((resolve) => server.listen({ port, host: '127.0.0.1' }, resolve));
  return server;
}

it('a hub whose port another hub holds is not taken for healthy; a fresh start finds a port of its own', async () => {
  const port = await freePort();
  await anotherHub(port);
  const dataDir = path.join(dir, 'hub');
  const error = await startHub({ dataDir, port, portWaitMs: 1000 }).catch((e: unknown) => e);
  expect(error).toBeInstanceOf(HubPortTakenError);
  expect(String(error)).toMatch(/EADDRINUSE/);

  const hub = await startHub({ dataDir });
  hubs.push(hub);
  expect(hub.port).not.toBe(port);
  const api = await hubClient(hub.url, dataDir);
  expect((await api('GET', '/v1/nodes')).status).toBe(200);
});

it('a hub restarted on its port waits for whatever took it meanwhile to let it go', async () => {
  const dataDir = path.join(dir, 'hub');
  const first = await startHub({ dataDir });
  hubs.push(first);
  await stopProgram(first, 'SIGKILL');
  const squatter = await anotherHub(first.port);

  const restarting = startHub({ dataDir, port: first.port });
  await new Promise((r) => setTimeout(r, 1500));
  await new Promise((r) => squatter.close(r));
  const again = await restarting;
  hubs.push(again);
  expect(again.url).toBe(first.url);
  const api = await hubClient(again.url, dataDir);
  expect((await api('GET', '/v1/nodes')).status).toBe(200);
});
