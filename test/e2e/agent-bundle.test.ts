/**
 * The agent as one file (scripts/bundle-agent.mjs): what the installer relies on (the hashbang,
 * the checksum file's format), and the dependencies the agent never uses kept out, each replaced
 * by a stub that loads and throws a clear error if it is ever called. Bundles dist/agent/main.js
 * (npm run build) into a temporary directory.
 */
import { execFile } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

const run = promisify(execFile);
const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
let dir = '';

beforeAll(async () => {
  dir = await mkdtemp(path.join(os.tmpdir(), 'tether-agent-bundle-'));
});

afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

describe('the agent bundle', () => {
  it('is one executable file with its hashbang, a checksum in sha256sum format, and none of the unused dependencies', async () => {
    const outfile = path.join(dir, 'tether-agent.js');
    await run(process.execPath, ['scripts/bundle-agent.mjs', '--outfile', outfile], { cwd: root, timeout: 120_000 });
    const bundle = await readFile(outfile);
    expect(bundle.toString('utf8').split('\n', 1)[0]).toBe('#!/usr/bin/env node');
    const sha256 = createHash('sha256').update(bundle).digest('hex');
    expect(await readFile(`${outfile}.sha256`, 'utf8')).toBe(`${sha256}  tether-agent.js\n`);

    const text = bundle.toString('utf8');
    for (const unused of ['node_modules/ssh2/', 'node_modules/@grpc/', 'node_modules/protobufjs/', 'node_modules/tar-fs/']) expect(text).not.toContain(unused);
    // dockerode and its transport are in, and the whole loads (a stub that threw at load would stop it here).
    expect(text).toContain('node_modules/dockerode/lib/docker.js');
    const help = await run(process.execPath, [outfile, '--help'], { cwd: dir, timeout: 30_000 });
    expect(help.stdout).toMatch(/^Usage: tether-agent/);
    // Away from the checkout (as on a device) it still knows its version: the hub shows it per node.
    const { version } = JSON.parse(await readFile(path.join(root, 'package.json'), 'utf8')) as { version: string };
    const said = await run(process.execPath, [outfile, '--version'], { cwd: dir, timeout: 30_000 });
    expect(said.stdout.trim()).toBe(version);
  });

  it('a stub loads, and says what was left out and why when called', async () => {
    const entry = path.join(dir, 'uses-ssh.cjs');
    await writeFile(entry, "const { Client } = require('ssh2'); console.log(typeof Client); new Client();\n");
    const outfile = path.join(dir, 'uses-ssh.js');
    await run(process.execPath, ['scripts/bundle-agent.mjs', '--entry', entry, '--outfile', outfile], { cwd: root, timeout: 60_000 });
    const failed = await run(process.execPath, [outfile], { cwd: dir, timeout: 30_000 }).then(
      () => null,
      (err: { code: number; stdout: string; stderr: string }) => err,
    );
    expect(failed?.code).not.toBe(0);
    expect(failed?.stdout).toBe('function\n');
    expect(failed?.stderr).toContain("ssh2 is left out of the Tether agent's bundle: the agent does not reach the engine over SSH");
  });
});
