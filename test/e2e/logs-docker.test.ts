/**
 * Container logs streamed from a real agent through a real hub, read from a real Docker engine:
 * a tail, new lines followed, a fast writer read slowly (the hub's and the agent's buffers stay
 * within the credit window, the engine's stream is paused), and a client that goes away closing
 * the agent's engine stream. Needs scripts/test-env.sh.
 */
import http from 'node:http';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, expect, it, vi } from 'vitest';
import { LOG_LIMITS } from '../../shared/protocol.js';
import { cleanupNode, describeDocker } from '../helpers/docker.js';
import { hubClient, startHub, startProgram, stopProgram, type Proc } from '../helpers/processes.js';

const IMAGE = 'tether-test/busybox:1';

type LogEntry = { replica: string; node: string | null; stream?: 'stdout' | 'stderr'; time?: string; line?: string; error?: string };

describeDocker('container logs through the hub, end to end', () => {
  let dir = '';
  let hub: Proc | undefined;
  let agent: Proc | undefined;
  let url = '';
  let token = '';
  let nodeId = '';
  let api: Awaited<ReturnType<typeof hubClient>>;
  const printer = `logs-print-${process.pid}`;
  const flood = `logs-flood-${process.pid}`;

  /** A whole answer (a tail without follow), as lines. */
  const readAll = async (service: string, query: string): Promise<{ status: number; entries: LogEntry[] }> => {
    const res = await fetch(`${url}/v1/services/${service}/logs?${query}`, { headers: { authorization: `Bearer ${token}` } });
    const text = await res.text();
    return { status: res.status, entries: res.ok ? text.split('\n').filter(Boolean).map((l) => JSON.parse(l) as LogEntry) : [JSON.parse(text)] };
  };

  /** A streamed answer read by hand: paused and resumed at will, destroyed to go away. */
  const openStream = (service: string, query: string) =>
    new Promise<{ res: http.IncomingMessage; req: http.ClientRequest }>((resolve, reject) => {
      const req = http.get(`${url}/v1/services/${service}/logs?${query}`, { headers: { authorization: `Bearer ${token}` } }, (res) => resolve({ res, req }));
      req.on('error', reject);
    });

  const metric = async (name: string): Promise<number> => {
    const res = await fetch(`${url}/metrics`, { headers: { authorization: `Bearer ${token}` } });
    const text = await res.text();
    const m = new RegExp(`^${name} (\\S+)$`, 'm').exec(text);
    if (!m) throw new Error(`no metric ${name}`);
    return Number(m[1]);
  };

  /** The agent's "log stream ended" lines (pino JSON): what each stream held and why it ended. */
  const agentStreamEnds = () =>
    (agent?.output() ?? '')
      .split('\n')
      .filter((l) => l.includes('"log stream ended"'))
      .map((l) => JSON.parse(l) as { replicaId: string; reason: string; maxHeldBytes: number; pauses: number; chunksSent: number; engineStreamClosed: boolean });

  const runningReplica = async (service: string): Promise<string> => {
    let id = '';
    await vi.waitFor(
      async () => {
        const { body } = await api('GET', `/v1/services/${service}`);
        expect(body.status.running).toBe(1);
        id = body.status.replicas[0].replicaId ?? body.status.replicas[0].id;
        expect(id).toBeTruthy();
      },
      { timeout: 60_000, interval: 250 },
    );
    return id;
  };

  beforeAll(async () => {
    dir = await mkdtemp(path.join(os.tmpdir(), 'tether-e2e-logs-'));
    const started = await startHub({ dataDir: path.join(dir, 'hub'), args: ['--heartbeat-interval-ms', '500', '--heartbeat-grace-ms', '3000'] });
    hub = started;
    url = started.url;
    token = (await readFile(path.join(dir, 'hub', 'admin-token'), 'utf8')).trim();
    api = await hubClient(url, path.join(dir, 'hub'));
    const { body } = await api<{ token: string }>('POST', '/v1/join-tokens', {});
    agent = startProgram('agent', ['--hub', url, '--join-token', body.token, '--data-dir', path.join(dir, 'agent'), '--name', `logs-${process.pid}`, '--log-level', 'debug']);
    await vi.waitFor(
      async () => {
        const nodes = (await api<{ nodes: Array<{ id: string; state: string }> }>('GET', '/v1/nodes')).body.nodes;
        expect(nodes.filter((n) => n.state === 'ready')).toHaveLength(1);
        nodeId = nodes[0]!.id;
      },
      { timeout: 30_000, interval: 200 },
    );
  });

  afterAll(async () => {
    await api?.('DELETE', `/v1/services/${printer}`);
    await api?.('DELETE', `/v1/services/${flood}`);
    await stopProgram(agent);
    await stopProgram(hub);
    if (nodeId) await cleanupNode(nodeId);
    await rm(dir, { recursive: true, force: true });
  });

  it("reads a replica's tail, stdout and stderr apart, with the engine's times when asked", async () => {
    const put = await api('PUT', `/v1/services/${printer}`, {
      image: IMAGE,
      command: ['/bin/sh', '-c', 'for i in 1 2 3 4 5; do echo "line $i"; done; echo "to stderr" >&2; i=6; while true; do sleep 0.2; echo "line $i"; i=$((i+1)); done'],
      replicas: 1,
    });
    expect(put.status).toBe(201);
    const replica = await runningReplica(printer);
    let entries: LogEntry[] = [];
    await vi.waitFor(
      async () => {
        const all = await readAll(printer, 'tail=100&timestamps=1');
        expect(all.status).toBe(200);
        entries = all.entries;
        // Past the stderr line, so that a tail of two is printed lines.
        expect(entries.length).toBeGreaterThanOrEqual(9);
      },
      { timeout: 20_000, interval: 250 },
    );
    // The engine copies stdout and stderr through pipes of their own, so an entry written to one
    // just after the other may land first: each stream's own order is what it keeps.
    expect(entries.slice(0, 6).map((e) => [e.stream, e.line])).toEqual(
      expect.arrayContaining([['stderr', 'to stderr'], ['stdout', 'line 1'], ['stdout', 'line 5']]),
    );
    expect(entries.filter((e) => e.stream === 'stdout').slice(0, 5).map((e) => e.line)).toEqual(['line 1', 'line 2', 'line 3', 'line 4', 'line 5']);
    expect(entries.filter((e) => e.stream === 'stderr').map((e) => e.line)).toEqual(['to stderr']);
    for (const e of entries) {
      expect(e).toMatchObject({ replica, node: nodeId });
      expect(Date.parse(e.time!)).toBeGreaterThan(Date.parse('2026-01-01T00:00:00Z'));
    }
    const two = await readAll(printer, 'tail=2');
    expect(two.entries).toHaveLength(2);
    expect(two.entries[1]!.time).toBeUndefined();
    expect(two.entries.map((e) => e.line)).toEqual(two.entries.map(() => expect.stringMatching(/^line \d+$/)));
    // The one replica by its id; another id is a 404.
    expect((await readAll(printer, `tail=1&replica=${replica}`)).entries).toHaveLength(1);
    const unknown = await readAll(printer, 'replica=nope');
    expect(unknown.status).toBe(404);
  });

  it('follows new lines, and the agent closes its engine stream when the client goes away', async () => {
    const { res, req } = await openStream(printer, 'follow=1&tail=1');
    expect(res.statusCode).toBe(200);
    const seen: LogEntry[] = [];
    let buffer = '';
    res.setEncoding('utf8');
    res.on('data', (text: string) => {
      buffer += text;
      const parts = buffer.split('\n');
      buffer = parts.pop()!;
      for (const p of parts) seen.push(JSON.parse(p) as LogEntry);
    });
    // The tail's line, then lines the container prints after the request: numbers past it.
    await vi.waitFor(() => expect(seen.length).toBeGreaterThanOrEqual(4), { timeout: 20_000, interval: 100 });
    const numbers = seen.map((e) => Number(e.line!.split(' ')[1]));
    expect(numbers).toEqual(numbers.map((_, i) => numbers[0]! + i));
    expect(await metric('tether_log_streams')).toBe(1);
    const endsBefore = agentStreamEnds().length;
    req.destroy();
    await vi.waitFor(
      () => {
        const ends = agentStreamEnds().slice(endsBefore);
        expect(ends).toEqual([expect.objectContaining({ reason: 'closed by the hub', engineStreamClosed: true })]);
      },
      { timeout: 10_000, interval: 100 },
    );
    expect(await metric('tether_log_streams')).toBe(0);
  });

  it('a fast writer read slowly holds the credit window on the hub and pauses the engine stream on the agent', async () => {
    // About 2 MB/s of 200-byte lines: far more than a paused reader takes.
    const put = await api('PUT', `/v1/services/${flood}`, {
      image: IMAGE,
      command: ['/bin/sh', '-c', `l=$(printf '%0200d' 0); while true; do i=0; while [ $i -lt 1000 ]; do echo "$l"; i=$((i+1)); done; sleep 0.1; done`],
      replicas: 1,
    });
    expect(put.status).toBe(201);
    await runningReplica(flood);
    const { res, req } = await openStream(flood, 'follow=1&tail=0');
    expect(res.statusCode).toBe(200);
    let received = 0;
    res.on('data', (chunk: Buffer) => {
      received += chunk.length;
    });
    await vi.waitFor(() => expect(received).toBeGreaterThan(0), { timeout: 20_000, interval: 50 });
    res.pause();
    // Once the sockets between are full, the response backs up and the hub grants no more:
    // nothing moves between two looks, though the container goes on writing.
    await vi.waitFor(
      async () => {
        expect(await metric('tether_log_blocked_requests')).toBe(1);
        const before = await metric('tether_log_chunks_total');
        await new Promise((r) => setTimeout(r, 500));
        expect(await metric('tether_log_chunks_total')).toBe(before);
      },
      { timeout: 60_000, interval: 250 },
    );
    const window = LOG_LIMITS.creditChunks;
    // A chunk's lines as NDJSON: its text plus the replica, node and stream of each line.
    const boundBytes = window * 2 * LOG_LIMITS.maxChunkBytes + 64 * 1024;
    const relayed: number[] = [];
    for (let i = 0; i < 5; i++) {
      expect(await metric('tether_log_chunks_in_flight')).toBeLessThanOrEqual(window);
      expect(await metric('tether_log_buffered_bytes')).toBeLessThanOrEqual(boundBytes);
      relayed.push(await metric('tether_log_chunks_total'));
      await new Promise((r) => setTimeout(r, 400));
    }
    // Still nothing moved while the client did not read.
    expect(new Set(relayed).size).toBe(1);
    expect(await metric('tether_log_credit_violations_total')).toBe(0);

    // Reading again, the stream moves on.
    res.resume();
    await vi.waitFor(async () => expect(await metric('tether_log_chunks_total')).toBeGreaterThan(relayed[0]! + window), { timeout: 20_000, interval: 100 });

    const endsBefore = agentStreamEnds().length;
    req.destroy();
    await vi.waitFor(
      () => {
        const ends = agentStreamEnds().slice(endsBefore);
        expect(ends).toHaveLength(1);
        const end = ends[0]!;
        expect(end).toMatchObject({ reason: 'closed by the hub', engineStreamClosed: true });
        // The engine's stream was paused for want of credit, and the agent held at most about two chunks.
        expect(end.pauses).toBeGreaterThanOrEqual(1);
        expect(end.maxHeldBytes).toBeLessThanOrEqual(2 * LOG_LIMITS.maxChunkBytes + LOG_LIMITS.maxLineBytes);
      },
      { timeout: 10_000, interval: 100 },
    );
    expect(await metric('tether_log_streams')).toBe(0);
    expect(await metric('tether_log_buffered_bytes')).toBe(0);
  });
});
