/**
 * waitForHub tells the hub a test started from whatever else answers on its port: another test's
 * hub answered /healthz for one whose own could not listen, and the test found no admin token.
 */
import { spawn } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import http from 'node:http';
import os from 'node:os';
import path from 'node:path';
import { afterEach, beforeEach, expect, it } from 'vitest';
import { HubPortTakenError, stopProgram, waitForHub, watchChild, type Proc } from '../helpers/processes.js';
import { freePort } from '../helpers/test-ports.js';

const TOKEN = 'tat_the-token-of-the-hub-started';
let dir = '';
let port = 0;
let url = '';
const procs: Proc[] = [];
const servers: http.Server[] = [];

beforeEach(async () => {
  dir = await mkdtemp(path.join(os.tmpdir(), 'tether-wait-for-hub-'));
  await writeFile(path.join(dir, 'admin-token'), `${TOKEN}\n`);
  port = await freePort();
  url = `http://127.0.0.1:${port}`;
});
afterEach(async () => {
  for (const p of procs.splice(0)) await stopProgram(p);
  await Promise.all(servers.splice(0).map((s) => new Promise((r) => s.close(r))));
  await rm(dir, { recursive: true, force: true });
});

/** A hub's answers as seen from outside: /healthz for anyone, the rest for `token` only. */
const hubHandler = (token: string) => `(req, res) => {
  res.setHeader('content-type', 'application/json');
  if (req.url === '/healthz') return res.end('{"status":"ok"}');
  if (req.headers.authorization !== 'Bearer ' + ${JSON.stringify(token)}) { res.statusCode = 401; return res.end('{}'); }
  res.end('{"nodes":[]}');
}`;

/** Another process's hub, on the port: it knows another admin token. */
async function anotherHub(): Promise<void> {
  const server = http.createServer(eval(hubHandler('tat_another')) as http.RequestListener);
  servers.push(server);
  await new Promise<void>((resolve) => server.listen({ port, host: '127.0.0.1' }, resolve));
}

/** A child standing in for the hub program: runs `script` (JavaScript, with `port` and `url` defined). */
function child(script: string): Proc {
  const proc = watchChild(spawn(process.execPath, ['-e', `const port = ${port}; const url = ${JSON.stringify(url)};\n${script}`], { stdio: ['ignore', 'pipe', 'pipe'] }), 'fake-hub');
  procs.push(proc);
  return proc;
}

it('fails at once, as a port taken, when the hub started exited for its port held by another hub', async () => {
  await anotherHub();
  const hub = child(`console.error('tether-hub: cannot listen on 127.0.0.1:' + port + ': listen EADDRINUSE: address already in use'); process.exit(2);`);
  const started = Date.now();
  const error = await waitForHub(hub, url, dir, 20_000).catch((e: unknown) => e);
  expect(error).toBeInstanceOf(HubPortTakenError);
  expect(String(error)).toMatch(/its port is taken/);
  expect(Date.now() - started).toBeLessThan(15_000);
});

it('fails, naming its output, when the hub started exits for another reason', async () => {
  const hub = child(`console.error('tether-hub: cannot write to /x: disk full'); process.exit(1);`);
  const error = await waitForHub(hub, url, dir, 20_000).catch((e: unknown) => e);
  expect(error).toBeInstanceOf(Error);
  expect(error).not.toBeInstanceOf(HubPortTakenError);
  expect(String(error)).toMatch(/exited \(code 1\) before it answered\n.*disk full/);
});

it('fails when what answers at the url refuses the admin token of the data dir', async () => {
  await anotherHub();
  // Says it listens there, but does not: the answers come from the other hub.
  const hub = child(`process.stdout.write('Tether hub 0.0.0 is listening on ' + url + '\\n'); setInterval(() => {}, 1000);`);
  await expect(waitForHub(hub, url, dir, 20_000)).rejects.toThrow(/refused the admin token .*: it is not the hub started/);
});

it('resolves once the hub started listens, says so, and takes the admin token', async () => {
  const hub = child(`
    setTimeout(() => require('node:http').createServer((${hubHandler(TOKEN)})).listen(port, '127.0.0.1', () => {
      process.stdout.write('Tether hub 0.0.0 is listening on ' + url + '\\n');
    }), 300);`);
  await expect(waitForHub(hub, url, dir, 20_000)).resolves.toBeUndefined();
});

it('does not take an answer before the hub started says it listens', async () => {
  // Another hub answers, and even knows the token, but the one started never listened.
  const server = http.createServer(eval(hubHandler(TOKEN)) as http.RequestListener);
  servers.push(server);
  await new Promise<void>((resolve) => server.listen({ port, host: '127.0.0.1' }, resolve));
  const hub = child(`setInterval(() => {}, 1000);`);
  await expect(waitForHub(hub, url, dir, 1500)).rejects.toThrow(/not healthy after 1500 ms/);
});
