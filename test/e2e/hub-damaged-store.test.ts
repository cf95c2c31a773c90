/**
 * The real hub on a store file damaged between a SIGKILL and the next start: the start stops with
 * one line naming the file, what is wrong and what to do (exit 1, no stack trace), and never runs
 * with the file's records missing; `--recover` restores the file from its previous good copy.
 */
import { mkdtemp, readFile, readdir, rm, stat, unlink, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { hubClient, startHub, startProgram, stopProgram, type Proc } from '../helpers/processes.js';

let hub: Proc | undefined;
let dataDir = '';

afterEach(async () => {
  await stopProgram(hub);
  hub = undefined;
  if (dataDir) await rm(dataDir, { recursive: true, force: true });
});

async function start(port: number, extra: string[] = []): Promise<Proc> {
  hub = startProgram('hub', ['--port', String(port), '--data-dir', dataDir, '--insecure-http', ...extra]);
  return hub;
}

/** The hub's exit code, or 'still running' if it has not exited within a generous while. */
function exitOf(proc: Proc, timeoutMs = 15_000): Promise<number | null | 'still running'> {
  let timer: NodeJS.Timeout | undefined;
  const late = new Promise<'still running'>((resolve) => (timer = setTimeout(() => resolve('still running'), timeoutMs)));
  return Promise.race([proc.exited, late]).finally(() => clearTimeout(timer));
}

/** The shard of the services collection that holds `name`. */
async function shardOf(name: string): Promise<string> {
  const dir = path.join(dataDir, 'store', 'services');
  for (const f of await readdir(dir)) {
    if (!/^services-\d+\.json$/.test(f)) continue;
    if ((await readFile(path.join(dir, f), 'utf8')).includes(`"${name}"`)) return path.join(dir, f);
  }
  throw new Error(`no shard holds ${name}`);
}

/** Waits until `check` holds, within a generous timeout. */
async function until(what: string, check: () => Promise<boolean>, timeoutMs = 10_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

/** A hub holding service `web` (written twice, so its shard has a previous copy), killed; returns the shard and the hub's port. */
async function hubKilledWithService(): Promise<{ shard: string; port: number }> {
  dataDir = await mkdtemp(path.join(os.tmpdir(), 'tether-damaged-store-'));
  const started = await startHub({ dataDir });
  hub = started;
  const { url, port } = started;
  const api = await hubClient(url, dataDir);
  expect((await api('PUT', '/v1/services/web', { image: 'nginx:1' })).status).toBe(201);
  expect((await api('PUT', '/v1/services/web', { image: 'nginx:2' })).status).toBe(200);
  const shard = await shardOf('web');
  await until(`${shard}.prev`, () => stat(`${shard}.prev`).then(() => true, () => false));
  await stopProgram(hub, 'SIGKILL');
  return { shard, port };
}

/** Each way a shard was found damaged, as bytes made from the good file. */
const DAMAGE: Array<[string, (good: string) => Buffer, RegExp]> = [
  ['null', () => Buffer.from('null'), /holds null/],
  ['[]', () => Buffer.from('[]'), /holds an array/],
  ['an empty file', () => Buffer.alloc(0), /empty/],
  ['a truncated file', (text) => Buffer.from(text.slice(0, Math.floor(text.length / 2))), /truncated/],
  ['zeros', (text) => Buffer.alloc(text.length), /NUL bytes/],
  ['invalid UTF-8', (text) => Buffer.concat([Buffer.from(text.slice(0, text.indexOf('nginx:2') + 6)), Buffer.from([0xff]), Buffer.from(text.slice(text.indexOf('nginx:2') + 7))]), /not valid UTF-8/],
  ['a changed byte', (text) => Buffer.from(text.replace('nginx:2', 'nginx:3')), /checksum mismatch|does not carry its key/],
];

describe('hub with a damaged store file', () => {
  it.each(DAMAGE)('stops on %s in a shard with one line, and --recover restores the service', async (_what, damage, reason) => {
    const { shard, port } = await hubKilledWithService();
    await writeFile(shard, damage(await readFile(shard, 'utf8')));

    const refused = await start(port);
    expect(await exitOf(refused)).toBe(1);
    const lines = refused.output().trim().split('\n');
    expect(lines).toHaveLength(1);
    expect(lines[0]).toContain(`store file ${shard} is damaged (`);
    expect(lines[0]).toMatch(reason);
    expect(lines[0]).toMatch(/its previous copy .*\.prev is good \(written \d+ s ago\): start with --recover to restore it/);

    const recovered = await startHub({ dataDir, port, args: ['--recover'] });
    hub = recovered;
    const { url } = recovered;
    expect(recovered.output()).toContain(`restored store file ${shard} from its previous copy ${shard}.prev`);
    const api = await hubClient(url, dataDir);
    const web = await api('GET', '/v1/services/web');
    expect(web.status).toBe(200);
    expect(web.body.spec.image).toMatch(/^nginx:[12]$/);
    // Kept for inspection, not deleted.
    await expect(stat(`${shard}.damaged`)).resolves.toBeDefined();
  });

  it('stops on a damaged shard with no previous copy, with or without --recover, and leaves it as it is', async () => {
    const { shard, port } = await hubKilledWithService();
    await unlink(`${shard}.prev`);
    await writeFile(shard, 'null');

    for (const extra of [[], ['--recover']]) {
      const refused = await start(port, extra);
      expect(await exitOf(refused)).toBe(1);
      const lines = refused.output().trim().split('\n');
      expect(lines).toHaveLength(1);
      expect(lines[0]).toContain(`store file ${shard} is damaged (holds null, not records) and has no good previous copy (none was kept)`);
      expect(lines[0]).toMatch(/restore it from a backup, or move it aside/);
    }
    expect(await readFile(shard, 'utf8')).toBe('null');
  });
});
