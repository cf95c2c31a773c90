/**
 * The `tether` bin as a user runs it: `node dist/cli/main.js` in its own process (build first:
 * `npm test` does), against a hub in this process. Exit codes, stdin, and Ctrl-C on a followed
 * stream.
 */
import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { ADMIN, cliHubPerTest } from './cli-hub.js';

const BIN = path.resolve('dist/cli/main.js');
const IMAGE = '127.0.0.1:5000/busybox:1';

interface Spawned {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
}

const t = cliHubPerTest();

/** Runs the bin; `whenPrinted` is called with the child once stdout holds its text (for Ctrl-C). */
function tether(argv: string[], opts: { stdin?: string; whenPrinted?: [string, (child: ReturnType<typeof spawn>) => void] } = {}): Promise<Spawned> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [BIN, ...argv], {
      env: { PATH: process.env.PATH, HOME: t.home.dir, TETHER_HUB: t.hub.url, TETHER_TOKEN: ADMIN },
      stdio: ['pipe', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    let fired = false;
    child.stdout.on('data', (chunk: Buffer) => {
      stdout += chunk.toString();
      if (opts.whenPrinted && !fired && stdout.includes(opts.whenPrinted[0])) {
        fired = true;
        opts.whenPrinted[1](child);
      }
    });
    child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
    child.on('error', reject);
    child.on('close', (code, signal) => resolve({ code, signal, stdout, stderr }));
    child.stdin.on('error', () => undefined);
    child.stdin.end(opts.stdin ?? '');
  });
}

describe.skipIf(!existsSync(BIN))('the tether bin (dist/cli/main.js)', () => {
  it('exits 0 for --version, 2 for an unknown command, 1 for a refusal', async () => {
    expect(await tether(['--version'])).toMatchObject({ code: 0, stdout: expect.stringMatching(/^\d+\.\d+\.\d+\n$/) });
    expect(await tether(['bogus'])).toMatchObject({ code: 2, stdout: '', stderr: expect.stringMatching(/^tether: unknown command 'bogus'[^\n]*\n$/) });
    expect(await tether(['services', 'inspect', 'nope'])).toMatchObject({ code: 1, stderr: 'tether: no service named "nope" (tether services ls lists them)\n' });
  });

  it('applies a file from stdin and lists it', async () => {
    const applied = await tether(['apply', '-f', '-'], { stdin: `name: web\nimage: ${IMAGE}\n` });
    expect(applied).toMatchObject({ code: 0, stdout: 'service web created (revision 1)\n', stderr: '' });
    const listed = await tether(['services', 'ls']);
    expect(listed.code).toBe(0);
    expect(listed.stdout).toMatch(/^NAME\s+STATE.*\nweb\s+\S+\s+replicated/);
  });

  it('Ctrl-C ends events -f with the code of an interrupt (130), after what it printed', async () => {
    await t.hub.call('PUT', '/v1/services/web', { image: IMAGE });
    const { events } = (await t.hub.call('GET', '/v1/events')).body as { events: Array<{ seq: number }> };
    const run = await tether(['events', '-f', '--since', String(events[0]!.seq - 1)], { whenPrinted: ['service=web', (child) => child.kill('SIGINT')] });
    expect(run).toMatchObject({ code: 130, stderr: '' });
    expect(run.stdout).toMatch(/service\.created {2}service=web/);
  });
});
