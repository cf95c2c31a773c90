import { execFile } from 'node:child_process';
import { mkdtemp, readFile, readlink, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

const run = promisify(execFile);
const script = path.resolve('install.sh');

describe('install.sh', () => {
  let root = '';
  beforeAll(async () => {
    root = await mkdtemp(path.join(os.tmpdir(), 'tether-install-'));
  });
  afterAll(async () => {
    await rm(root, { recursive: true, force: true });
  });

  it('installs into a staging root: the command link and a systemd unit with the join flags', async () => {
    const { stdout } = await run('bash', [script, '--hub', 'http://hub.example:7070', '--join-token', 'tjt_abc', '--name', 'pi 7', '--label', 'zone=eu-1'], {
      env: { ...process.env, ROOT: root },
    });
    expect(stdout).toContain('tether-agent is installed');
    expect(await readlink(path.join(root, 'usr/local/bin/tether-agent'))).toBe(path.resolve('dist/agent/main.js'));
    const unit = await readFile(path.join(root, 'etc/systemd/system/tether-agent.service'), 'utf8');
    expect(unit).toMatch(/^ExecStart=.*dist\/agent\/main\.js "--hub" "http:\/\/hub\.example:7070" "--join-token" "tjt_abc" "--data-dir" "\/var\/lib\/tether-agent" "--name" "pi 7" "--label" "zone=eu-1"$/m);
    expect(unit).toContain('Restart=always');
    // The agent runs with a small young generation (see install.sh).
    expect(unit).toMatch(/^ExecStart=\S+ --max-semi-space-size=1 \S+dist\/agent\/main\.js /m);
    // systemd is installed on the project's machines (not as PID 1): its own check of the unit.
    const analyze = await run('systemd-analyze', ['verify', path.join(root, 'etc/systemd/system/tether-agent.service')]).catch((e: { code?: string | number; stderr?: string }) => e);
    if ((analyze as { code?: string }).code !== 'ENOENT') expect((analyze as { stderr?: string }).stderr ?? '').toBe('');
  });

  it('refuses to run without --hub and --join-token, and on an unknown option', async () => {
    await expect(run('bash', [script, '--hub', 'http://h:1'], { env: { ...process.env, ROOT: root } })).rejects.toMatchObject({
      code: 2,
      stderr: expect.stringContaining('--hub and --join-token are required'),
    });
    await expect(run('bash', [script, '--bogus'], { env: { ...process.env, ROOT: root } })).rejects.toMatchObject({
      stderr: expect.stringContaining('unknown option --bogus'),
    });
  });
});
