/**
 * The hub's and the agent's logs: JSON when their output is not a terminal (here: a pipe), and
 * readable lines when asked for with --log-format pretty or TETHER_LOG_FORMAT.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterEach, beforeEach, expect, it } from 'vitest';
import { startHub, startProgram, stopProgram, type Proc } from '../helpers/processes.js';

let dir = '';
const procs: Proc[] = [];

beforeEach(async () => {
  dir = await mkdtemp(path.join(os.tmpdir(), 'tether-log-format-'));
});
afterEach(async () => {
  delete process.env.TETHER_LOG_FORMAT;
  for (const proc of procs.splice(0)) await stopProgram(proc);
  await rm(dir, { recursive: true, force: true });
});

const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

/** Waits for a line of a process's output that matches, while it runs. */
async function lineOf(proc: Proc, pattern: RegExp): Promise<string> {
  for (;;) {
    const line = proc.output().split('\n').find((l) => pattern.test(l));
    if (line !== undefined) return line;
    if (proc.child.exitCode !== null) throw new Error(`exited (${proc.child.exitCode}) without a line like ${pattern}:\n${proc.output().slice(-2000)}`);
    await sleep(50);
  }
}

/** The hub's lines that are log records: all but its start banner, which is for people in any format. */
const bannerStart = /^(Tether hub|  |Join|curl|$)/;

it('a hub whose output is a pipe logs JSON lines', async () => {
  const hub = await startHub({ dataDir: path.join(dir, 'hub') });
  procs.push(hub);
  // --insecure-http (the tests' hub) says so in one warning at start.
  const line = await lineOf(hub, /insecure-http/);
  expect(JSON.parse(line)).toMatchObject({ level: 40, msg: expect.stringMatching(/^--insecure-http/) });
  const records = hub.output().split('\n').filter((l) => l.startsWith('{'));
  expect(records.length).toBeGreaterThan(0);
  for (const record of records) expect(() => JSON.parse(record), record).not.toThrow();
});

it('a hub with --log-format pretty logs readable lines, and no JSON', async () => {
  const hub = await startHub({ dataDir: path.join(dir, 'hub'), args: ['--log-format', 'pretty'] });
  procs.push(hub);
  const line = await lineOf(hub, /insecure-http/);
  expect(line).toMatch(/^\[\d\d:\d\d:\d\d\.\d{3}\] WARN \(tether-hub\): --insecure-http: serving plain HTTP/);
  // No colour codes: the output is not a terminal.
  expect(hub.output()).not.toMatch(/\u001b\[/);
  expect(hub.output().split('\n').filter((l) => l.startsWith('{'))).toEqual([]);
  const others = hub.output().split('\n').filter((l) => !bannerStart.test(l) && !l.startsWith('['));
  expect(others).toEqual([]);
});

it('TETHER_LOG_FORMAT=pretty does the same; the flag wins over it', async () => {
  process.env.TETHER_LOG_FORMAT = 'pretty';
  const pretty = await startHub({ dataDir: path.join(dir, 'hub-1') });
  procs.push(pretty);
  expect(await lineOf(pretty, /insecure-http/)).toMatch(/^\[.*\] WARN \(tether-hub\): --insecure-http/);
  const json = await startHub({ dataDir: path.join(dir, 'hub-2'), args: ['--log-format', 'json'] });
  procs.push(json);
  expect(JSON.parse(await lineOf(json, /insecure-http/))).toMatchObject({ level: 40 });
});

it('an agent logs JSON to a pipe, and readable lines with --log-format pretty', async () => {
  // A hub that is not there: the agent says, in a warning, that it retries the join.
  const args = (name: string) => ['--data-dir', path.join(dir, name), '--hub', 'http://127.0.0.1:9', '--join-token', 'tjt_x', '--docker-socket', path.join(dir, 'no-docker.sock')];
  const json = startProgram('agent', args('agent-1'));
  procs.push(json);
  expect(JSON.parse(await lineOf(json, /cannot reach the hub to join/))).toMatchObject({ level: 40, name: 'tether-agent' });
  const pretty = startProgram('agent', [...args('agent-2'), '--log-format', 'pretty']);
  procs.push(pretty);
  expect(await lineOf(pretty, /cannot reach the hub to join/)).toMatch(/^\[\d\d:\d\d:\d\d\.\d{3}\] WARN \(tether-agent\): cannot reach the hub to join; retrying \{/);
});

it('refuses an unknown format with a usage error, on both programs', async () => {
  for (const program of ['hub', 'agent'] as const) {
    const proc = startProgram(program, ['--data-dir', path.join(dir, program), '--log-format', 'yaml']);
    procs.push(proc);
    expect(await proc.exited).toBe(2);
    await proc.closed;
    expect(proc.output()).toMatch(new RegExp(`tether-${program}: unknown --log-format "yaml" \\(one of json, pretty\\)`));
  }
});
