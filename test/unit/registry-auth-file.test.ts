import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadRegistryAuthFile } from '../../agent/registry-auth-file.js';

let dir: string;
let counter = 0;

async function fileWith(text: string): Promise<string> {
  const file = path.join(dir, `auth-${counter++}.json`);
  await writeFile(file, text);
  return file;
}

async function refusal(text: string): Promise<string> {
  const file = await fileWith(text);
  const error = await loadRegistryAuthFile(file).then(
    (value) => {
      throw new Error(`expected ${text} to be refused, got ${JSON.stringify(value)}`);
    },
    (err: unknown) => err as Error,
  );
  expect(error).toBeInstanceOf(Error);
  expect(error.message).toContain(file); // every refusal names the file
  return error.message;
}

beforeAll(async () => {
  dir = await mkdtemp(path.join(os.tmpdir(), 'tether-registry-auth-'));
});

afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

describe('loadRegistryAuthFile', () => {
  it('reads credentials keyed by registry host[:port]', async () => {
    const file = await fileWith(
      JSON.stringify({
        '127.0.0.1:5001': { username: 'tether', password: 's3cret' },
        'registry.example.com': { username: 'robot', password: 'p' },
        '[::1]:5000': { username: 'v6', password: 'p6' },
        localhost: { username: 'l', password: 'lp' },
      }),
    );
    const auth = await loadRegistryAuthFile(file);
    expect({ ...auth }).toEqual({
      '127.0.0.1:5001': { username: 'tether', password: 's3cret' },
      'registry.example.com': { username: 'robot', password: 'p' },
      '[::1]:5000': { username: 'v6', password: 'p6' },
      localhost: { username: 'l', password: 'lp' },
    });
  });

  it('accepts an empty object', async () => {
    expect({ ...(await loadRegistryAuthFile(await fileWith('{}'))) }).toEqual({});
  });

  it('never resolves inherited names to something that is not an entry', async () => {
    const auth = await loadRegistryAuthFile(await fileWith('{}'));
    expect(auth['constructor']).toBeUndefined();
    expect(auth['__proto__']).toBeUndefined();
  });

  it('refuses a missing file', async () => {
    const missing = path.join(dir, 'does-not-exist.json');
    await expect(loadRegistryAuthFile(missing)).rejects.toThrow(`cannot read the registry auth file ${missing}: no such file`);
  });

  it('refuses a directory', async () => {
    await expect(loadRegistryAuthFile(dir)).rejects.toThrow(`cannot read the registry auth file ${dir}`);
  });

  it.each([
    ['truncated JSON', '{ "127.0.0.1:5001": { "username": "u"'],
    ['an empty file', ''],
    ['a trailing comma', '{ "r.example": { "username": "u", "password": "p" }, }'],
  ])('refuses bad JSON: %s', async (_name, text) => {
    expect(await refusal(text)).toMatch(/is not valid JSON: \S/);
  });

  it('says where the JSON breaks without quoting the file (it holds passwords)', async () => {
    const unquoted = await refusal('{\n  "r.example": { "username": "u", "password": topsecret }\n}');
    expect(unquoted).toMatch(/is not valid JSON: /);
    expect(unquoted).not.toContain('secret');
    const trailingComma = await refusal('{\n  "r.example": { "username": "u", "password": "topsecret" },\n}');
    expect(trailingComma).toMatch(/\(line 3, column 1\)$/);
    expect(trailingComma).not.toContain('secret');
  });

  it.each([
    ['an array', '[{ "username": "u", "password": "p" }]'],
    ['a string', '"u:p"'],
    ['null', 'null'],
  ])('refuses a top level that is not an object: %s', async (_name, text) => {
    expect(await refusal(text)).toMatch(/must be a JSON object keyed by registry host\[:port\]/);
  });

  it.each([
    ['a missing password', { 'r.example': { username: 'u' } }, /"r\.example": password: is required/],
    ['an empty username', { 'r.example': { username: '', password: 'p' } }, /"r\.example": username: .*fewer than 1/],
    ['a password that is not a string', { 'r.example': { username: 'u', password: 7 } }, /"r\.example": password: .*string/],
    ['an unknown field', { 'r.example': { username: 'u', password: 'p', serveraddress: 'x' } }, /"r\.example": serveraddress: unknown field/],
    ['an entry that is not an object', { '127.0.0.1:5001': 'u:p' }, /"127\.0\.0\.1:5001": .*object/],
    ['a URL as the key', { 'https://r.example': { username: 'u', password: 'p' } }, /"https:\/\/r\.example" is not a registry host\[:port\]/],
    ['a key with a path', { 'r.example/team': { username: 'u', password: 'p' } }, /"r\.example\/team" is not a registry host\[:port\]/],
    ['an empty key', { '': { username: 'u', password: 'p' } }, /"" is not a registry host\[:port\]/],
  ])('refuses the wrong shape: %s', async (_name, value, message) => {
    expect(await refusal(JSON.stringify(value))).toMatch(message);
  });

  it('names every bad entry, and never a password', async () => {
    const message = await refusal(
      JSON.stringify({
        'good.example': { username: 'u', password: 'topsecret1' },
        'a.example': { username: 'u' },
        'b.example': { password: 'topsecret2' },
      }),
    );
    expect(message).toMatch(/"a\.example": password: is required; "b\.example": username: is required/);
    expect(message).not.toContain('topsecret');
    expect(message).not.toContain('good.example');
  });
});
