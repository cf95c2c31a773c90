/**
 * install.sh on its own, against small fakes of what it talks to (a hub serving the bundle, a
 * Docker engine answering /_ping): its arguments, what it says is missing, and what it refuses
 * to install. The real path (a hub, Docker, the agent joining) is test/e2e/install.test.ts.
 */
import { execFile, spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { chmod, mkdir, mkdtemp, readFile, rm, stat, symlink, writeFile } from 'node:fs/promises';
import http from 'node:http';
import https from 'node:https';
import type { AddressInfo } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { caFingerprint } from '../../shared/ca-fingerprint.js';
import { createCa, issueServerCertificate, serverNames } from '../../hub/tls/hub-certificates.js';

const run = promisify(execFile);
const SCRIPT = path.resolve('install.sh');
/** What the fake hub serves as the agent: enough to answer --version. */
const FAKE_AGENT =
  '#!/usr/bin/env node\nif (process.argv.includes("--version")) console.log("9.9.9");\nelse if (process.env.TETHER_JOIN_TOKEN) console.log(JSON.stringify([...process.argv.slice(2), "env:TETHER_JOIN_TOKEN=" + process.env.TETHER_JOIN_TOKEN]));\nelse console.log(JSON.stringify(process.argv.slice(2)));\n';
const sha256 = (text: string) => createHash('sha256').update(text).digest('hex');

interface Outcome {
  code: number;
  stdout: string;
  stderr: string;
}

/** Runs install.sh with `sh`, never throwing: the exit code is part of what is checked. */
async function install(args: string[], env: NodeJS.ProcessEnv = process.env): Promise<Outcome> {
  try {
    const { stdout, stderr } = await run('/bin/sh', [SCRIPT, ...args], { env });
    return { code: 0, stdout, stderr };
  } catch (error) {
    const e = error as { code?: number; stdout?: string; stderr?: string };
    return { code: e.code ?? -1, stdout: e.stdout ?? '', stderr: e.stderr ?? '' };
  }
}

/** A tool's absence fails the test under CI (the machine is broken) and skips it elsewhere. */
async function tool(name: string): Promise<boolean> {
  try {
    await run('sh', ['-c', `command -v ${name}`]);
    return true;
  } catch {
    if (process.env.CI === 'true') throw new Error(`${name} is missing (CI=true): run scripts/test-env.sh`);
    return false;
  }
}

const listen = (server: http.Server | https.Server, where: number | string) =>
  new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    if (typeof where === 'string') server.listen(where, resolve);
    else server.listen(where, '127.0.0.1', resolve);
  });
const close = (server: http.Server | https.Server) => new Promise<void>((resolve) => server.close(() => resolve()));

describe('install.sh', () => {
  let dir = '';
  let dockerSocket = '';
  let hubUrl = '';
  let tlsHubUrl = '';
  let tlsFingerprint = '';
  /** What the fake hub answers for the checksum: the bundle's own, unless a test says otherwise. */
  let checksum = `${sha256(FAKE_AGENT)}  tether-agent.js\n`;
  let bundleStatus = 200;
  const servers: Array<http.Server | https.Server> = [];

  const hubHandler: http.RequestListener = (request, response) => {
    if (request.url === '/agent/tether-agent.js.sha256') return void response.end(checksum);
    if (request.url === '/agent/tether-agent.js') {
      if (bundleStatus !== 200) {
        response.writeHead(bundleStatus, { 'content-type': 'application/json' });
        return void response.end(JSON.stringify({ error: { code: 'agent_bundle_missing', message: 'the agent bundle is not there: run npm run build' } }));
      }
      return void response.end(FAKE_AGENT);
    }
    response.writeHead(404).end();
  };

  beforeAll(async () => {
    dir = await mkdtemp(path.join(os.tmpdir(), 'tether-install-script-'));
    // An engine as far as install.sh asks: GET /_ping.
    dockerSocket = path.join(dir, 'docker.sock');
    const engine = http.createServer((request, response) => response.writeHead(request.url === '/_ping' ? 200 : 404).end('OK'));
    await listen(engine, dockerSocket);
    const hub = http.createServer(hubHandler);
    await listen(hub, 0);
    hubUrl = `http://127.0.0.1:${(hub.address() as AddressInfo).port}`;
    // A hub over TLS with a CA of its own, as the real one makes.
    const ca = createCa();
    const cert = issueServerCertificate(ca, serverNames('127.0.0.1', []));
    tlsFingerprint = caFingerprint(ca.certPem);
    const tlsHub = https.createServer({ key: cert.keyPem, cert: `${cert.certPem.trimEnd()}\n${ca.certPem}` }, hubHandler);
    await listen(tlsHub, 0);
    tlsHubUrl = `https://127.0.0.1:${(tlsHub.address() as AddressInfo).port}`;
    servers.push(engine, hub, tlsHub);
  });
  afterAll(async () => {
    for (const server of servers) await close(server);
    await rm(dir, { recursive: true, force: true });
  });

  let rootCount = 0;
  /** A fresh staging root and the flags every install here takes. */
  const staged = (hub = hubUrl) => {
    const root = path.join(dir, `root-${++rootCount}`);
    return { root, args: ['--root', root, '--no-systemd', '--docker-socket', dockerSocket, '--hub', hub, '--join-token', 'tjt_test'] };
  };

  it('is clean by shellcheck, as POSIX sh', async () => {
    if (!(await tool('shellcheck'))) return;
    const { stdout } = await run('shellcheck', ['--shell=sh', '--severity=style', SCRIPT]).catch((e: { stdout: string }) => e);
    expect(stdout).toBe('');
  });

  it('runs nothing when the download stops short of the last line', async () => {
    const text = await readFile(SCRIPT, 'utf8');
    const { root, args } = staged();
    const cut = text.slice(0, text.lastIndexOf('main "$@"'));
    const child = spawn('sh', ['-s', '--', ...args], { stdio: ['pipe', 'pipe', 'pipe'] });
    let output = '';
    child.stdout.on('data', (chunk: Buffer) => (output += chunk.toString()));
    child.stderr.on('data', (chunk: Buffer) => (output += chunk.toString()));
    child.stdin.end(cut);
    const code = await new Promise<number | null>((resolve) => child.once('close', resolve));
    expect(code).toBe(0);
    expect(output).toBe('');
    await expect(stat(root)).rejects.toMatchObject({ code: 'ENOENT' });
  });

  it.each([
    [['--bogus'], 'unknown option --bogus'],
    [['--hub'], '--hub needs a value'],
    [['--join-token', 't'], '--hub is needed'],
    [['--hub', 'hub.example:7070', '--join-token', 't'], '--hub must start with http:// or https://, got hub.example:7070'],
    [['--hub', 'http://h:1'], '--join-token is needed: this device has not joined a hub yet'],
    [['--hub', 'http://h:1', '--join-token', 't', '--label', 'zone'], '--label must be key=value, got zone'],
    [['--hub', 'https://h:1', '--join-token', 't'], 'an https:// hub needs --ca-fingerprint'],
    [['--hub', 'https://h:1', '--join-token', 't', '--ca-fingerprint', 'ab:cd'], '--ca-fingerprint must be sha256: and 64 hex digits'],
    // The agent would refuse these at its start, in a restart loop: refused here, before anything is written.
    [['--hub', 'http://h:1', '--join-token', 't', '--ca-fingerprint', 'sha256:abc'], '--ca-fingerprint must be sha256: and 64 hex digits'],
    [['--hub', 'http://h:1', '--join-token', 't', '--ca-fingerprint', `sha256:${'zz'.repeat(32)}`], '--ca-fingerprint must be sha256: and 64 hex digits'],
    [['--hub', 'http://h:1', '--join-token', 't', '--ca-fingerprint', `sha256:${'ab'.repeat(32)}`], '--ca-fingerprint pins the CA of an https:// hub; --hub is http://h:1'],
    [['--hub', 'http://h:1', '--join-token', 't', '--prefix', 'opt'], '--prefix must be an absolute path'],
    [['--purge'], '--purge goes with --uninstall'],

    [['--hub', 'http://h:1', '--join-token', 't', '--prefix', '/opt/my agent'], 'may hold only letters, digits and / . _ + @ : -'],
  ])('refuses %j with exit 2 and says why', async (args, message) => {
    const outcome = await install(['--root', path.join(dir, 'never'), ...args]);
    expect(outcome.code).toBe(2);
    expect(outcome.stderr).toMatch(/^install\.sh: /);
    expect(outcome.stderr).toContain(message);
    expect(outcome.stderr).toContain('install.sh --help lists the options');
  });

  it('refuses a name and labels the hub would refuse at join (shared/protocol.ts), before anything is written', async () => {
    const join = ['--root', path.join(dir, 'never'), '--hub', 'http://h:1', '--join-token', 't'];
    const cases: Array<[string[], string]> = [
      [['--name', 'n'.repeat(129)], '--name may be 128 characters at most'],
      [['--label', `${'k'.repeat(257)}=v`], '--label: a key may be 256 characters at most'],
      [['--label', `k=${'v'.repeat(1025)}`], '--label: a value may be 1024 characters at most'],
      [Array.from({ length: 65 }, (_, i) => ['--label', `k${i}=v`]).flat(), 'at most 64 labels'],
    ];
    for (const [args, message] of cases) {
      const outcome = await install([...join, ...args]);
      expect(outcome.code, message).toBe(2);
      expect(outcome.stderr).toContain(message);
    }
    // At the bounds: taken.
    const { args } = staged();
    expect((await install([...args, '--name', 'n'.repeat(128), '--label', `${'k'.repeat(256)}=${'v'.repeat(1024)}`])).code).toBe(0);
  });

  it('prints its options with --help', async () => {
    const outcome = await install(['--help']);
    expect(outcome.code).toBe(0);
    for (const option of ['--hub URL', '--join-token', '--ca-fingerprint', '--prefix', '--no-systemd', '--uninstall', '--purge', '--root']) {
      expect(outcome.stdout).toContain(option);
    }
  });

  it('says when no Docker engine answers on the socket, and installs nothing', async () => {
    const { root, args } = staged();
    const outcome = await install([...args, '--docker-socket', path.join(dir, 'no-engine.sock')]);
    expect(outcome.code).toBe(1);
    expect(outcome.stderr).toContain('this device lacks what the agent needs');
    expect(outcome.stderr).toContain(`a Docker engine: none answers on ${path.join(dir, 'no-engine.sock')}`);
    await expect(stat(root)).rejects.toMatchObject({ code: 'ENOENT' });
  });

  it('says when there is no Node.js, or one older than 20', async () => {
    // A PATH with what the script needs besides node, and a node that says it is 18.
    const bin = path.join(dir, 'bin-old-node');
    await mkdir(bin);
    for (const name of ['sed', 'id', 'cat', 'head', 'dirname', 'mktemp', 'curl', 'rm', 'mkdir']) {
      const { stdout } = await run('sh', ['-c', `command -v ${name}`]);
      await symlink(stdout.trim(), path.join(bin, name));
    }
    const { args } = staged();
    const missing = await install(args, { ...process.env, PATH: bin });
    expect(missing.code).toBe(1);
    expect(missing.stderr).toContain(`Node.js 20 or newer: no node in PATH (${bin})`);

    await writeFile(path.join(bin, 'node'), '#!/bin/sh\nprintf 18.19.0\n');
    await chmod(path.join(bin, 'node'), 0o755);
    const old = await install(args, { ...process.env, PATH: bin });
    expect(old.code).toBe(1);
    expect(old.stderr).toContain(`Node.js 20 or newer: ${path.join(bin, 'node')} is 18.19.0`);
  });

  it('says it needs root, unless it stages into --root', async () => {
    // What `id -u` says for any other user.
    const bin = path.join(dir, 'bin-not-root');
    await mkdir(bin);
    await writeFile(path.join(bin, 'id'), '#!/bin/sh\necho 1000\n');
    await chmod(path.join(bin, 'id'), 0o755);
    const env = { ...process.env, PATH: `${bin}:${process.env.PATH}` };
    // A hub that never answers: were the check to let it through, the download fails before anything is written.
    const args = ['--no-systemd', '--docker-socket', dockerSocket, '--hub', 'http://127.0.0.1:1', '--join-token', 'tjt_test', '--prefix', path.join(dir, 'not-root')];
    const outcome = await install(args, env);
    expect(outcome.code).toBe(1);
    expect(outcome.stderr).toContain('root: run it as root');
    await expect(stat(path.join(dir, 'not-root'))).rejects.toMatchObject({ code: 'ENOENT' });
  });

  it('refuses a bundle that does not match its checksum, and installs nothing', async () => {
    checksum = `${sha256('another build')}  tether-agent.js\n`;
    try {
      const { root, args } = staged();
      const outcome = await install(args);
      expect(outcome.code).toBe(1);
      expect(outcome.stderr).toContain(`install.sh: the agent downloaded from ${hubUrl} does not match its checksum (expected ${sha256('another build')}, got ${sha256(FAKE_AGENT)})`);
      expect(outcome.stderr).toContain('nothing was installed');
      await expect(stat(path.join(root, 'opt/tether-agent/tether-agent.mjs'))).rejects.toMatchObject({ code: 'ENOENT' });
      await expect(stat(path.join(root, 'etc/tether/agent.env'))).rejects.toMatchObject({ code: 'ENOENT' });
    } finally {
      checksum = `${sha256(FAKE_AGENT)}  tether-agent.js\n`;
    }
  });

  it("passes on the hub's refusal to serve the bundle", async () => {
    bundleStatus = 503;
    try {
      const { args } = staged();
      const outcome = await install(args);
      expect(outcome.code).toBe(1);
      expect(outcome.stderr).toContain(`GET ${hubUrl}/agent/tether-agent.js answered HTTP 503`);
      expect(outcome.stderr).toContain('run npm run build');
    } finally {
      bundleStatus = 200;
    }
  });

  it('downloads with wget where there is no curl, bounded in time, and says what its failure means', async () => {
    // A PATH with every tool of this machine but curl, and a wget that records how it was called.
    const bin = path.join(dir, 'bin-no-curl');
    await mkdir(bin);
    const { stdout: listed } = await run('sh', ['-c', 'ls /usr/local/bin /usr/bin /bin 2>/dev/null | sort -u']);
    for (const name of listed.split('\n').filter((n) => n && !n.endsWith(':') && n !== 'curl' && n !== 'wget')) {
      const { stdout: where } = await run('sh', ['-c', `command -v ${name} || true`]);
      if (where.trim().startsWith('/')) await symlink(where.trim(), path.join(bin, name)).catch(() => undefined);
    }
    const log = path.join(bin, 'wget.log');
    await writeFile(path.join(bin, 'wget'), `#!/bin/sh\nprintf '%s\\n' "$*" >>'${log}'\nexit 8\n`);
    await chmod(path.join(bin, 'wget'), 0o755);
    const { args } = staged();
    const outcome = await install(args, { ...process.env, PATH: bin });
    expect(outcome.code).toBe(1);
    expect(outcome.stderr).toContain('failed (wget exit 8; 8 means the hub refused');
    const calls = (await readFile(log, 'utf8')).trim().split('\n');
    for (const call of calls) expect(call).toMatch(/^-q -T 60 -t 3 -O /);
  });

  it('installs from an https:// hub whose CA has the given fingerprint', async () => {
    const { root, args } = staged(tlsHubUrl);
    const outcome = await install([...args, '--ca-fingerprint', tlsFingerprint]);
    expect(outcome.stderr).toBe('');
    expect(outcome.code).toBe(0);
    expect(await readFile(path.join(root, 'opt/tether-agent/tether-agent.mjs'), 'utf8')).toBe(FAKE_AGENT);
    expect(await readFile(path.join(root, 'etc/tether/agent.env'), 'utf8')).toContain(`TETHER_CA_FINGERPRINT='${tlsFingerprint}'`);
  });

  it('refuses an https:// hub whose chain holds no CA with the given fingerprint', async () => {
    const { root, args } = staged(tlsHubUrl);
    const other = `sha256:${'ab'.repeat(32)}`;
    const outcome = await install([...args, '--ca-fingerprint', other]);
    expect(outcome.code).toBe(1);
    expect(outcome.stderr).toContain(`the hub at ${tlsHubUrl} presents no certificate of the CA ${other}`);
    await expect(stat(path.join(root, 'opt/tether-agent/tether-agent.mjs'))).rejects.toMatchObject({ code: 'ENOENT' });
  });

  it('writes the settings readable by root only, quoted as the shell reads them back', async () => {
    const { root, args } = staged();
    const outcome = await install([...args, '--name', "pi's 7", '--label', 'zone=eu 1', '--label', 'ring=$(canary)']);
    expect(outcome.code).toBe(0);
    const envFile = path.join(root, 'etc/tether/agent.env');
    expect((await stat(envFile)).mode & 0o777).toBe(0o600);
    const { stdout } = await run('sh', ['-c', `. "$1"; printf '%s|%s' "$TETHER_NAME" "$TETHER_LABELS"`, 'sh', envFile]);
    expect(stdout).toBe("pi's 7|zone=eu 1\nring=$(canary)");
    expect(outcome.stdout).toContain(`${root}/opt/tether-agent/bin/tether-agent`);
    expect(outcome.stdout).toContain('under your supervisor');
  });

  it('accepts a fingerprint as openssl prints it, with colons and upper case', async () => {
    const { args } = staged(tlsHubUrl);
    const spelled = `sha256:${tlsFingerprint.slice('sha256:'.length).toUpperCase().match(/../g)!.join(':')}`;
    const outcome = await install([...args, '--ca-fingerprint', spelled]);
    expect(outcome.stderr).toBe('');
    expect(outcome.code).toBe(0);
  });

  it('passes the join token to the agent in its environment, never its arguments, and only until the node has joined', async () => {
    const { root, args } = staged();
    expect((await install(args)).code).toBe(0);
    const launcher = path.join(root, 'opt/tether-agent/bin/tether-agent');
    // Any local user reads a process's arguments; its environment only root and its own user.
    const before = JSON.parse((await run(launcher, [])).stdout) as string[];
    expect(before).not.toContain('--join-token');
    expect(before).not.toContain('tjt_test');
    expect(before).toContain('env:TETHER_JOIN_TOKEN=tjt_test');
    await writeFile(path.join(root, 'var/lib/tether-agent/node.json'), '{}');
    const after = JSON.parse((await run(launcher, [])).stdout) as string[];
    expect(after.join(' ')).not.toContain('tjt_test');
    expect(after).toContain('--hub');
  });

  it('writes nothing another user could change, whatever the umask it is run with', async () => {
    const { root, args } = staged();
    const { stderr } = await run('/bin/sh', ['-c', 'umask 000; exec /bin/sh "$@"', 'sh', SCRIPT, ...args]);
    expect(stderr).toBe('');
    for (const made of ['opt/tether-agent', 'opt/tether-agent/bin', 'opt/tether-agent/bin/tether-agent', 'opt/tether-agent/tether-agent.mjs', 'etc/tether', 'etc', 'opt']) {
      expect({ made, writableByOthers: ((await stat(path.join(root, made))).mode & 0o022) !== 0 }).toEqual({ made, writableByOthers: false });
    }
    expect((await stat(path.join(root, 'etc/tether/agent.env'))).mode & 0o777).toBe(0o600);
  });

  it("drops the CA fingerprint an https:// hub's install kept when run again with an http:// hub (the agent would refuse to start)", async () => {
    const { root, args } = staged(tlsHubUrl);
    expect((await install([...args, '--ca-fingerprint', tlsFingerprint])).code).toBe(0);
    const again = await install(['--root', root, '--no-systemd', '--hub', hubUrl]);
    expect(again.stderr).toBe('');
    expect(again.code).toBe(0);
    const envFile = await readFile(path.join(root, 'etc/tether/agent.env'), 'utf8');
    expect(envFile).toContain(`TETHER_HUB='${hubUrl}'`);
    expect(envFile).toContain("TETHER_CA_FINGERPRINT=''");
  });

  it('puts each file in place by a rename within its directory, never a copy from the temporary dir (a power cut halfway)', async () => {
    const bin = path.join(dir, 'bin-mv-log');
    await mkdir(bin);
    const log = path.join(bin, 'mv.log');
    const { stdout: realMv } = await run('sh', ['-c', 'command -v mv']);
    await writeFile(path.join(bin, 'mv'), `#!/bin/sh\nprintf '%s\\n' "$*" >>'${log}'\nexec ${realMv.trim()} "$@"\n`);
    await chmod(path.join(bin, 'mv'), 0o755);
    const { root, args } = staged();
    // With the systemd unit too (staged under --root, systemd is left alone).
    const outcome = await install(args.filter((a) => a !== '--no-systemd'), { ...process.env, PATH: `${bin}:${process.env.PATH}` });
    expect(outcome.stderr).toBe('');
    const moves = (await readFile(log, 'utf8')).trim().split('\n').map((line) => line.split(' ').slice(-2));
    expect(moves.map(([, to]) => path.relative(root, to!)).sort()).toEqual(
      ['etc/systemd/system/tether-agent.service', 'etc/tether/agent.env', 'opt/tether-agent/bin/tether-agent', 'opt/tether-agent/tether-agent.js.sha256', 'opt/tether-agent/tether-agent.mjs'],
    );
    for (const [from, to] of moves) expect(path.dirname(from!)).toBe(path.dirname(to!));
  });

  it('upgrades an agent installed with --no-systemd without adding a unit beside its own supervisor', async () => {
    const { root, args } = staged();
    expect((await install(args)).code).toBe(0);
    // The hub's one line again, without --no-systemd.
    const again = await install(args.filter((a) => a !== '--no-systemd'));
    expect(again.stderr).toBe('');
    expect(again.code).toBe(0);
    expect(again.stdout).toContain('installed with --no-systemd before: still no systemd unit');
    await expect(stat(path.join(root, 'etc/systemd/system/tether-agent.service'))).rejects.toMatchObject({ code: 'ENOENT' });
    expect(again.stdout).toContain('restart the running agent to run the new version');
  });

  it('refuses to purge a data dir that is not an agent\'s (a mistyped --data-dir), before removing anything', async () => {
    const { root, args } = staged();
    expect((await install([...args, '--data-dir', '/srv/tether'])).code).toBe(0);
    await writeFile(path.join(root, 'srv/other-data'), 'keep me');
    const outcome = await install(['--root', root, '--uninstall', '--purge', '--data-dir', '/srv']);
    expect(outcome.code).toBe(1);
    expect(outcome.stderr).toContain(`${root}/srv holds no node.json: not an agent's data dir, so --purge leaves it`);
    expect(await readFile(path.join(root, 'srv/other-data'), 'utf8')).toBe('keep me');
    // Nothing else was removed either.
    expect((await stat(path.join(root, 'etc/tether/agent.env'))).isFile()).toBe(true);

    // The agent's own data dir (here still empty: it never ran), named right, goes.
    const purged = await install(['--root', root, '--uninstall', '--purge']);
    expect(purged.stderr).toBe('');
    expect(purged.code).toBe(0);
    await expect(stat(path.join(root, 'srv/tether'))).rejects.toMatchObject({ code: 'ENOENT' });
    expect(await readFile(path.join(root, 'srv/other-data'), 'utf8')).toBe('keep me');
  });
});
