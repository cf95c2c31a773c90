import { PassThrough, Readable } from 'node:stream';
import { beforeEach, describe, expect, it } from 'vitest';
import { LogReadError, type ContainerLogSource, type LogRequest } from '../../agent/logs/container-logs.js';
import { startTether, tether, until } from './cli-harness.js';
import { ADMIN, cliHubPerTest } from './cli-hub.js';

const IMAGE = '127.0.0.1:5000/busybox:1';
// Each at least 8 bytes: the agent tells a TTY's raw output from the engine's frames by the first 8.
const LINES = ['first line', 'second line', 'third line'];

/** Containers that printed LINES (a TTY's raw output), and then whatever a test writes to `followed`. */
class FakeLogs implements ContainerLogSource {
  readonly requests: LogRequest[] = [];
  readonly followed = new Map<string, PassThrough>();
  unreadable = new Set<string>();

  async open(request: LogRequest, signal: AbortSignal): Promise<Readable> {
    this.requests.push(request);
    if (this.unreadable.has(request.replicaId)) throw new LogReadError('the container is gone');
    const stamp = (line: string) => `${request.timestamps ? '2026-12-01T10:00:00.000000000Z ' : ''}${line}\n`;
    const tail = LINES.slice(LINES.length - Math.min(request.tail, LINES.length)).map(stamp).join('');
    if (!request.follow) return Readable.from([Buffer.from(tail)]);
    const stream = new PassThrough();
    stream.write(tail);
    this.followed.set(request.replicaId, stream);
    signal.addEventListener('abort', () => stream.destroy(), { once: true });
    return stream;
  }
}

const t = cliHubPerTest();
let logs: FakeLogs;
let replicas: string[];
beforeEach(async () => {
  logs = new FakeLogs();
  await t.hub.agent('edge-1', logs);
  await t.hub.call('PUT', '/v1/services/web', { image: IMAGE, replicas: 2 });
  type View = { status: { replicas: Array<{ replicaId: string; nodeId: string | null }> } };
  await until(async () => ((await t.hub.call('GET', '/v1/services/web')).body as View).status.replicas.filter((r) => r.nodeId !== null).length === 2);
  replicas = ((await t.hub.call('GET', '/v1/services/web')).body as View).status.replicas.map((r) => r.replicaId).sort();
});

const where = () => ({ homeDir: t.home.dir, env: { TETHER_HUB: t.hub.url, TETHER_TOKEN: ADMIN } });
const sorted = (text: string) => text.trimEnd().split('\n').sort();

describe('tether logs', () => {
  it("prints each replica's lines as `replica | line`, and ends with the tails", async () => {
    const { code, stdout, stderr } = await tether(['logs', 'web'], where());
    expect(stderr).toBe('');
    expect(code).toBe(0);
    expect(sorted(stdout)).toEqual(replicas.flatMap((r) => LINES.map((l) => `${r} | ${l}`)).sort());
  });

  it('--tail and --timestamps reach the agents; a replica id reads that replica alone', async () => {
    const one = replicas[0]!;
    const { code, stdout } = await tether(['logs', one, '--tail', '1', '--timestamps'], where());
    expect(code).toBe(0);
    expect(stdout).toMatch(new RegExp(`^${one.replace('.', '\\.')} \\| 2026-12-01T10:00:00\\.\\S*Z third line\\n$`));
    expect(logs.requests.at(-1)).toMatchObject({ replicaId: one, tail: 1, timestamps: true, follow: false });
  });

  it('--json prints the NDJSON the hub sends', async () => {
    const { stdout, stderr, code } = await tether(['logs', 'web', '--json', '--tail', '1'], where());
    expect({ stderr, code }).toEqual({ stderr: '', code: 0 });
    const lines = stdout.trimEnd().split('\n').map((l) => JSON.parse(l) as { replica: string; line: string; stream: string });
    expect(lines.map((l) => l.replica).sort()).toEqual(replicas);
    for (const l of lines) expect(l).toMatchObject({ line: 'third line', stream: 'stdout' });
  });

  it('-f goes on with new lines until interrupted, then exits 0', async () => {
    const followed = startTether(['logs', '-f', 'web', '--tail', '0'], where());
    await until(async () => logs.followed.size === 2);
    logs.followed.get(replicas[1]!)!.write('a new line\n');
    await followed.waitForOutput(`${replicas[1]} | a new line\n`);
    followed.stop();
    const { code, stderr } = await followed.done;
    expect({ code, stderr }).toEqual({ code: 0, stderr: '' });
    expect(logs.requests.every((r) => r.follow && r.tail === 0)).toBe(true);
  });

  it('a replica that cannot be read is a line on stderr and exit 1; the others print', async () => {
    logs.unreadable.add(replicas[0]!);
    const { code, stdout, stderr } = await tether(['logs', 'web', '--tail', '1'], where());
    expect(code).toBe(1);
    expect(stdout).toBe(`${replicas[1]} | third line\n`);
    expect(stderr).toMatch(new RegExp(`^${replicas[0]!.replace('.', '\\.')} \\| error: .*the container is gone.*\\ntether: the logs of 1 replica\\(s\\) could not be read: ${replicas[0]!.replace('.', '\\.')}\\n$`));
  });

  it('an unknown service or replica is the hub\'s one line and exit 1', async () => {
    expect(await tether(['logs', 'nope'], where())).toEqual({ code: 1, stdout: '', stderr: 'tether: no service named "nope" [404 service_not_found]\n' });
    const replica = await tether(['logs', 'web.0000000000'], where());
    expect(replica).toMatchObject({ code: 1, stderr: expect.stringMatching(/^tether: service "web" has no replica "web\.0000000000" \[404 replica_not_found\]\n$/) });
  });
});
