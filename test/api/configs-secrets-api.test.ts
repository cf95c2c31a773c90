import { createHash, randomBytes } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import type { FastifyInstance } from 'fastify';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { buildHub } from '../../hub/app.js';
import { MasterKeyring } from '../../hub/secrets/master-keyring.js';
import { LowdbStore } from '../../hub/store/lowdb-store.js';

const TOKEN = 'tat_values_api_test_token';

let dir: string;
let app: FastifyInstance | null = null;
let keyring: MasterKeyring;
const control = { failWith: null as string | null };

async function startHub(): Promise<FastifyInstance> {
  const store = new LowdbStore({
    dir,
    sealer: keyring,
    beforeWrite: () => {
      if (control.failWith) throw Object.assign(new Error(`${control.failWith}: simulated`), { code: control.failWith });
    },
  });
  await store.open();
  ({ app } = await buildHub({ store, adminToken: TOKEN, sealer: keyring }));
  return app;
}

const call = (method: string, url: string, body?: unknown, token: string | null = TOKEN) =>
  app!.inject({ method: method as 'GET', url, headers: token === null ? {} : { authorization: `Bearer ${token}` }, ...(body !== undefined ? { payload: body as object } : {}) });

const digest12 = (bytes: Buffer | string) => createHash('sha256').update(bytes).digest('hex').slice(0, 12);

beforeEach(async () => {
  dir = await mkdtemp(path.join(os.tmpdir(), 'tether-api-values-'));
  keyring = new MasterKeyring(randomBytes(32));
  control.failWith = null;
  await startHub();
});
afterEach(async () => {
  control.failWith = null;
  await app?.close();
  app = null;
  await rm(dir, { recursive: true, force: true });
});

describe.each(['configs', 'secrets'] as const)('/v1/%s', (kind) => {
  const one = kind === 'configs' ? 'config' : 'secret';

  it.each([
    ['GET', `/v1/${kind}`],
    ['GET', `/v1/${kind}/site`],
    ['PUT', `/v1/${kind}/site`],
    ['DELETE', `/v1/${kind}/site`],
  ])('refuses %s %s without the admin token', async (method, url) => {
    const res = await call(method, url, { value: 'x' }, null);
    expect(res.statusCode).toBe(401);
  });

  it('creates version 1 (201), versions each change (200), and keeps the version for the same value', async () => {
    const created = await call('PUT', `/v1/${kind}/site`, { value: 'hello' });
    expect(created.statusCode).toBe(201);
    expect(created.json()).toMatchObject({ name: 'site', version: 1, size: 5, digest: digest12('hello'), usedBy: [], outcome: 'created' });
    const again = await call('PUT', `/v1/${kind}/site`, { value: 'hello' });
    expect(again.statusCode).toBe(200);
    expect(again.json()).toMatchObject({ version: 1, outcome: 'unchanged' });
    // The same bytes as base64 are the same value.
    const sameBytes = await call('PUT', `/v1/${kind}/site`, { valueBase64: Buffer.from('hello').toString('base64') });
    expect(sameBytes.json()).toMatchObject({ version: 1, outcome: 'unchanged' });
    const changed = await call('PUT', `/v1/${kind}/site`, { value: 'hello, world' });
    expect(changed.statusCode).toBe(200);
    expect(changed.json()).toMatchObject({ version: 2, size: 12, digest: digest12('hello, world'), outcome: 'updated' });
    expect(changed.json().createdAt).toBe(created.json().createdAt);
    expect(Date.parse(changed.json().updatedAt)).toBeGreaterThanOrEqual(Date.parse(created.json().updatedAt));
  });

  it('shows name, version, size, digest, timestamps and usedBy on GET', async () => {
    await call('PUT', `/v1/${kind}/site`, { value: 'hello' });
    const res = await call('GET', `/v1/${kind}/site`);
    expect(res.statusCode).toBe(200);
    const body = res.json();
    expect(body).toMatchObject({ name: 'site', version: 1, size: 5, digest: digest12('hello'), usedBy: [] });
    expect(typeof body.createdAt).toBe('string');
    expect(typeof body.updatedAt).toBe('string');
    if (kind === 'configs') expect(body.value).toBe('hello');
    else {
      expect(body).not.toHaveProperty('value');
      expect(body).not.toHaveProperty('valueBase64');
    }
  });

  it('lists every one by name, never with a value', async () => {
    await call('PUT', `/v1/${kind}/b-one`, { value: 'bbb' });
    await call('PUT', `/v1/${kind}/a-one`, { valueBase64: Buffer.from([0, 1, 2]).toString('base64') });
    const res = await call('GET', `/v1/${kind}`);
    expect(res.statusCode).toBe(200);
    const list = res.json()[kind] as Array<Record<string, unknown>>;
    expect(list.map((v) => v.name)).toEqual(['a-one', 'b-one']);
    expect(list[0]).toMatchObject({ version: 1, size: 3, usedBy: [] });
    for (const v of list) {
      expect(v).not.toHaveProperty('value');
      expect(v).not.toHaveProperty('valueBase64');
    }
  });

  it('deletes one (then 404), and a delete of a missing one is 404', async () => {
    await call('PUT', `/v1/${kind}/site`, { value: 'hello' });
    const del = await call('DELETE', `/v1/${kind}/site`);
    expect(del.statusCode).toBe(200);
    expect(del.json()).toEqual({ name: 'site', deleted: true });
    const get = await call('GET', `/v1/${kind}/site`);
    expect(get.statusCode).toBe(404);
    expect(get.json().error).toMatchObject({ code: `${one}_not_found`, message: `no ${one} named "site"` });
    expect((await call('DELETE', `/v1/${kind}/site`)).statusCode).toBe(404);
    // Created again, it starts over.
    expect((await call('PUT', `/v1/${kind}/site`, { value: 'x' })).json()).toMatchObject({ version: 1, outcome: 'created' });
  });

  it.each([
    ['a name with upper case', 'Site', { value: 'x' }, 'name', /must be/],
    ['a name starting with a dot', '.site', { value: 'x' }, 'name', /must be/],
    ['a name of 64 characters', 'a'.repeat(64), { value: 'x' }, 'name', /must be/],
    ['both value and valueBase64', 'site', { value: 'x', valueBase64: 'eA==' }, 'valueBase64', /not both/],
    ['neither', 'site', {}, 'value', /value or valueBase64 is required/],
    ['valueBase64 that is not base64', 'site', { valueBase64: 'not base64!' }, 'valueBase64', /not base64/],
    ['valueBase64 without its padding', 'site', { valueBase64: 'eA' }, 'valueBase64', /not base64/],
    ['a value over 512 KiB', 'site', { value: 'x'.repeat(512 * 1024 + 1) }, 'value', /524288/],
    ['a value over 512 KiB in bytes, not characters', 'site', { value: '\u00e9'.repeat(300 * 1024) }, 'value', /at most 524288 bytes \(512 KiB\), got 614400/],
    ['a base64 value over 512 KiB', 'site', { valueBase64: Buffer.alloc(512 * 1024 + 3).toString('base64') }, 'valueBase64', /at most 524288 bytes/],
    ['a value that is not a string', 'site', { value: 42 }, 'value', /string/],
    ['an unknown field', 'site', { value: 'x', mode: '0400' }, 'mode', /unknown field/],
  ])('refuses %s with a 400 naming the field, and stores nothing', async (_what, name, body, field, message) => {
    const res = await call('PUT', `/v1/${kind}/${name}`, body);
    expect(res.statusCode).toBe(400);
    const error = res.json().error;
    expect(error.code).toMatch(new RegExp(`^invalid_${one}`));
    const detail = (error.details as Array<{ path: string; message: string }>).find((d) => d.path === field);
    expect(detail, JSON.stringify(error)).toBeDefined();
    expect(detail!.message).toMatch(message);
    expect((await call('GET', `/v1/${kind}`)).json()[kind]).toEqual([]);
  });

  it('takes a value of exactly 512 KiB', async () => {
    const res = await call('PUT', `/v1/${kind}/big`, { valueBase64: randomBytes(512 * 1024).toString('base64') });
    expect(res.statusCode).toBe(201);
    expect(res.json().size).toBe(512 * 1024);
  });

  it('answers 503 when the store cannot write, and keeps nothing of the change', async () => {
    await call('PUT', `/v1/${kind}/site`, { value: 'one' });
    control.failWith = 'EIO';
    const res = await call('PUT', `/v1/${kind}/site`, { value: 'two' });
    expect(res.statusCode).toBe(503);
    const del = await call('DELETE', `/v1/${kind}/site`);
    expect(del.statusCode).toBe(503);
    control.failWith = null;
    expect((await call('GET', `/v1/${kind}/site`)).json()).toMatchObject({ version: 1, size: 3 });
  });

  it('keeps its records across a restart of the hub', async () => {
    await call('PUT', `/v1/${kind}/site`, { value: 'one' });
    await call('PUT', `/v1/${kind}/site`, { value: 'two' });
    await app!.close();
    await startHub();
    expect((await call('GET', `/v1/${kind}/site`)).json()).toMatchObject({ name: 'site', version: 2, size: 3, digest: digest12('two') });
  });
});

describe('config values', () => {
  it('come back as text when they are UTF-8 without NUL, and as base64 otherwise', async () => {
    await call('PUT', '/v1/configs/text', { valueBase64: Buffer.from('h\u00e9llo\n').toString('base64') });
    expect((await call('GET', '/v1/configs/text')).json()).toMatchObject({ value: 'h\u00e9llo\n' });
    expect((await call('GET', '/v1/configs/text')).json()).not.toHaveProperty('valueBase64');
    for (const bytes of [Buffer.from([0xff, 0xfe, 0x00]), Buffer.from('a\u0000b')]) {
      await call('PUT', '/v1/configs/bin', { valueBase64: bytes.toString('base64') });
      const body = (await call('GET', '/v1/configs/bin')).json();
      expect(body.valueBase64).toBe(bytes.toString('base64'));
      expect(body).not.toHaveProperty('value');
    }
  });

  it('may be empty', async () => {
    expect((await call('PUT', '/v1/configs/empty', { value: '' })).statusCode).toBe(201);
    expect((await call('GET', '/v1/configs/empty')).json()).toMatchObject({ size: 0, value: '' });
  });
});
