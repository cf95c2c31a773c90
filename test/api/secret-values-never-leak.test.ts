import { randomBytes } from 'node:crypto';
import { mkdtemp, readdir, readFile, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { Writable } from 'node:stream';
import type { FastifyInstance } from 'fastify';
import WebSocket from 'ws';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { buildHub } from '../../hub/app.js';
import type { Hub } from '../../hub/hub.js';
import { MasterKeyring } from '../../hub/secrets/master-keyring.js';
import { LowdbStore } from '../../hub/store/lowdb-store.js';
import { helloFrame } from '../helpers/sim-fleet.js';

const TOKEN = 'tat_leak_test_token';
/** Recognisable values: found anywhere (as text or as base64), they leaked. */
const SECRET = 'SECRET-VALUE-d41d8cd98f00';
const PASSWORD = 'REGISTRY-PASSWORD-7c9e6679';

let dir: string;
let keyring: MasterKeyring;
let app: FastifyInstance | null = null;
let hub: Hub;
let url = '';
let logged = '';
let devices = 0;
const sockets: WebSocket[] = [];

async function startHub(): Promise<void> {
  const store = new LowdbStore({ dir: path.join(dir, 'store'), sealer: keyring });
  await store.open();
  // Every log line at the most verbose level, as a hub configured to say the most would write them.
  const stream = new Writable({
    write(chunk: Buffer, _encoding, done) {
      logged += chunk.toString();
      done();
    },
  });
  ({ app, hub } = await buildHub({ store, adminToken: TOKEN, sealer: keyring, logger: { level: 'trace', stream }, config: { heartbeatIntervalMs: 200, heartbeatGraceMs: 2000 } }));
  await app.listen({ host: '127.0.0.1', port: 0 });
  const address = app.server.address();
  if (typeof address !== 'object' || !address) throw new Error('hub did not listen');
  url = `http://127.0.0.1:${address.port}`;
}

beforeEach(async () => {
  dir = await mkdtemp(path.join(os.tmpdir(), 'tether-leaks-'));
  keyring = new MasterKeyring(randomBytes(32));
  logged = '';
  await startHub();
});
afterEach(async () => {
  for (const ws of sockets.splice(0)) ws.terminate();
  await app?.close();
  app = null;
  await rm(dir, { recursive: true, force: true });
});

const call = (method: string, path: string, opts: { body?: unknown; raw?: string; contentType?: string } = {}) =>
  app!.inject({
    method: method as 'GET',
    url: path,
    headers: { authorization: `Bearer ${TOKEN}`, ...(opts.contentType ? { 'content-type': opts.contentType } : {}) },
    ...(opts.raw !== undefined ? { payload: opts.raw } : opts.body !== undefined ? { payload: opts.body as object } : {}),
  });

/** The forms a value could leak in: as written, and as base64 (of its bytes). */
const forms = (value: string) => [value, Buffer.from(value).toString('base64')];
const holds = (text: string | Buffer, value: string) => forms(value).some((f) => (typeof text === 'string' ? text.includes(f) : text.includes(Buffer.from(f))));

async function filesHolding(value: string): Promise<string[]> {
  const found: string[] = [];
  for (const entry of await readdir(dir, { withFileTypes: true, recursive: true })) {
    if (!entry.isFile()) continue;
    const file = path.join(entry.parentPath, entry.name);
    if (holds(await readFile(file), value)) found.push(file);
  }
  return found;
}

describe('secret values and registry passwords', () => {
  it('never appear in an API response, an error, or a log line', async () => {
    const responses: Array<{ what: string; body: string }> = [];
    const record = async (what: string, res: Promise<{ statusCode: number; body: string }>, status?: number) => {
      const r = await res;
      if (status !== undefined) expect(r.statusCode, `${what}: ${r.body}`).toBe(status);
      responses.push({ what, body: r.body });
    };
    await record('secret PUT', call('PUT', '/v1/secrets/db', { body: { value: SECRET } }), 201);
    await record('secret PUT again', call('PUT', '/v1/secrets/db', { body: { value: SECRET } }), 200);
    await record('secret PUT as base64', call('PUT', '/v1/secrets/db-b64', { body: { valueBase64: Buffer.from(SECRET).toString('base64') } }), 201);
    await record('secret GET', call('GET', '/v1/secrets/db'), 200);
    await record('secret list', call('GET', '/v1/secrets'), 200);
    // Bad requests that carry the value: each error names the field, never quotes it.
    await record('bad name', call('PUT', '/v1/secrets/Bad_Name', { body: { value: SECRET } }), 400);
    await record('both fields', call('PUT', '/v1/secrets/db', { body: { value: SECRET, valueBase64: Buffer.from(SECRET).toString('base64') } }), 400);
    await record('not base64', call('PUT', '/v1/secrets/db', { body: { valueBase64: SECRET } }), 400);
    await record('unknown field', call('PUT', '/v1/secrets/db', { body: { value: SECRET, extra: SECRET } }), 400);
    await record('wrong type', call('PUT', '/v1/secrets/db', { body: { value: [SECRET] } }), 400);
    await record('over the limit', call('PUT', '/v1/secrets/db', { body: { value: `${SECRET}${'x'.repeat(512 * 1024)}` } }), 400);
    await record('broken JSON', call('PUT', '/v1/secrets/db', { raw: `{"value": "${SECRET}`, contentType: 'application/json' }), 400);
    await record('broken JSON at the value', call('PUT', '/v1/secrets/db', { raw: `{"value": ${SECRET}}`, contentType: 'application/json' }), 400);
    await record('not JSON', call('PUT', '/v1/secrets/db', { raw: SECRET, contentType: 'text/plain' }));
    await record('missing secret', call('DELETE', `/v1/secrets/${SECRET.toLowerCase()}`), 404);
    // Registry passwords: the service's views, and a spec refused with the password in it.
    const spec = { image: 'busybox:1', mode: 'global', registryAuth: { username: 'u', password: PASSWORD } };
    await record('service PUT', call('PUT', '/v1/services/web', { body: spec }), 201);
    await record('service GET', call('GET', '/v1/services/web'), 200);
    await record('service list', call('GET', '/v1/services?limit=10&replicaLimit=10'), 200);
    await record('revisions', call('GET', '/v1/services/web/revisions'), 200);
    await record('bad spec', call('PUT', '/v1/services/web', { body: { ...spec, registryAuth: { username: 'u', password: PASSWORD, extra: PASSWORD } } }), 400);
    await record('bad spec password type', call('PUT', '/v1/services/web', { body: { ...spec, registryAuth: { username: 'u', password: [PASSWORD] } } }), 400);

    for (const { what, body } of responses) {
      expect(holds(body, SECRET), `${what} answered ${body.slice(0, 300)}`).toBe(false);
      expect(holds(body, PASSWORD), `${what} answered ${body.slice(0, 300)}`).toBe(false);
    }
    await app!.close();
    app = null;
    expect(logged.length).toBeGreaterThan(0);
    for (const line of logged.split('\n')) {
      expect(holds(line, SECRET), line).toBe(false);
      expect(holds(line, PASSWORD), line).toBe(false);
    }
  });

  it('are in no file under the data dir, and an agent still receives its registry password after a restart', async () => {
    expect((await call('PUT', '/v1/secrets/db', { body: { value: SECRET } })).statusCode).toBe(201);
    expect((await call('PUT', '/v1/secrets/db', { body: { value: `${SECRET}-2` } })).statusCode).toBe(200);
    const spec = { image: 'busybox:1', mode: 'global', registryAuth: { username: 'u', password: PASSWORD } };
    expect((await call('PUT', '/v1/services/web', { body: spec })).statusCode).toBe(201);
    // A second revision keeps the first in its history, credentials and all.
    expect((await call('PUT', '/v1/services/web', { body: { ...spec, image: 'busybox:2' } })).statusCode).toBe(200);

    const targetsOf = async () => {
      const { token } = await hub.nodes.createJoinToken(600);
      const name = `dev-${++devices}`;
      const joined = await hub.nodes.join(token, name, {});
      if (!joined) throw new Error('join refused');
      const frames: string[] = [];
      // Listening from the first frame: the target may come in the same read as the welcome.
      const ws = new WebSocket(`${url.replace('http', 'ws')}/v1/agent/connect`, { headers: { authorization: `Bearer ${joined.credential}` } });
      ws.on('error', () => undefined);
      ws.on('message', (data: Buffer) => frames.push(data.toString()));
      ws.once('open', () => ws.send(JSON.stringify(helloFrame(name))));
      sockets.push(ws);
      return frames;
    };
    const before = await targetsOf();
    await vi.waitFor(() => expect(before.some((f) => f.includes('"type":"target"') && f.includes(PASSWORD))).toBe(true), { timeout: 10_000, interval: 50 });

    for (const ws of sockets.splice(0)) ws.terminate();
    await app!.close();
    expect(await filesHolding(SECRET)).toEqual([]);
    expect(await filesHolding(PASSWORD)).toEqual([]);

    // Loaded again from the store (sealed), the password reaches an agent whole.
    await startHub();
    const after = await targetsOf();
    await vi.waitFor(() => expect(after.some((f) => f.includes('"type":"target"') && f.includes(PASSWORD))).toBe(true), { timeout: 10_000, interval: 50 });
    const revisions = await call('GET', '/v1/services/web/revisions');
    expect(revisions.json().revisions).toHaveLength(2);
    await app!.close();
    app = null;
    expect(await filesHolding(SECRET)).toEqual([]);
    expect(await filesHolding(PASSWORD)).toEqual([]);
  });
});
