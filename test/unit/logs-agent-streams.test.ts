import { PassThrough, type Readable } from 'node:stream';
import { describe, expect, it, vi } from 'vitest';
import { LogReadError, type ContainerLogSource, type LogRequest } from '../../agent/logs/container-logs.js';
import { AgentLogStreams } from '../../agent/logs/log-streams.js';
import type { AgentLogsFrame, LogsOpenFrame } from '../../shared/protocol.js';

function frame(text: string): Buffer {
  const payload = Buffer.from(text);
  const header = Buffer.alloc(8);
  header[0] = 1;
  header.writeUInt32BE(payload.length, 4);
  return Buffer.concat([header, payload]);
}

const open = (stream: string, over: Partial<LogsOpenFrame> = {}): LogsOpenFrame => ({
  type: 'logs.open', stream, replicaId: 'web-1', tail: 10, follow: true, timestamps: false, credit: 1, ...over,
});

function setup(opts: { fail?: string } = {}) {
  const engines: PassThrough[] = [];
  const requests: LogRequest[] = [];
  const source: ContainerLogSource = {
    async open(request) {
      requests.push(request);
      if (opts.fail) throw new LogReadError(opts.fail);
      const engine = new PassThrough();
      engines.push(engine);
      return engine as Readable;
    },
  };
  const sent: AgentLogsFrame[] = [];
  const logged: Array<Record<string, unknown>> = [];
  const streams = new AgentLogStreams({
    source,
    send: (f) => {
      sent.push(f);
      return true;
    },
    logger: { info: (obj: object) => logged.push(obj as Record<string, unknown>), warn: () => undefined },
    maxStreams: 2,
  });
  return { streams, engines, requests, sent, logged };
}

describe('agent log streams', () => {
  it('reads the replica container and sends its lines within credit, then the end', async () => {
    const t = setup();
    t.streams.handle(open('s1', { follow: false }));
    await vi.waitFor(() => expect(t.engines).toHaveLength(1));
    expect(t.requests[0]).toEqual({ replicaId: 'web-1', tail: 10, follow: false, timestamps: false });
    t.engines[0]!.write(frame('one\n'));
    await vi.waitFor(() => expect(t.sent).toEqual([{ type: 'logs.chunk', stream: 's1', lines: [{ stream: 'stdout', line: 'one' }] }]));
    t.engines[0]!.end(frame('two\n'));
    // Out of credit: the end waits for it behind the last line.
    await new Promise((r) => setImmediate(r));
    expect(t.sent).toHaveLength(1);
    t.streams.handle({ type: 'logs.credit', stream: 's1', chunks: 1 });
    expect(t.sent.slice(1)).toEqual([{ type: 'logs.chunk', stream: 's1', lines: [{ stream: 'stdout', line: 'two' }] }, { type: 'logs.end', stream: 's1' }]);
    expect(t.streams.openCount).toBe(0);
  });

  it("closing from the hub destroys the engine's stream", async () => {
    const t = setup();
    t.streams.handle(open('s1'));
    await vi.waitFor(() => expect(t.engines).toHaveLength(1));
    t.streams.handle({ type: 'logs.close', stream: 's1' });
    expect(t.engines[0]!.destroyed).toBe(true);
    expect(t.streams.openCount).toBe(0);
    expect(t.logged.at(-1)).toMatchObject({ logStream: 's1', reason: 'closed by the hub', engineStreamClosed: true });
  });

  it('a lost link ends every stream, engine side included', async () => {
    const t = setup();
    t.streams.handle(open('s1'));
    t.streams.handle(open('s2'));
    await vi.waitFor(() => expect(t.engines).toHaveLength(2));
    t.streams.closeAll('the link to the hub was lost');
    expect(t.engines.every((e) => e.destroyed)).toBe(true);
  });

  it('refuses more streams than its limit, and says why a container cannot be read', async () => {
    const t = setup();
    t.streams.handle(open('s1'));
    t.streams.handle(open('s2'));
    t.streams.handle(open('s3'));
    expect(t.sent).toEqual([{ type: 'logs.error', stream: 's3', message: expect.stringMatching(/2 log streams at once/) }]);
    const f = setup({ fail: 'no container of replica web-1 on this node (not started yet, or removed)' });
    f.streams.handle(open('s1'));
    await vi.waitFor(() => expect(f.sent).toEqual([{ type: 'logs.error', stream: 's1', message: 'no container of replica web-1 on this node (not started yet, or removed)' }]));
    expect(f.streams.openCount).toBe(0);
  });

  it('an engine stream closed early sends what it read, then the end', async () => {
    const t = setup();
    t.streams.handle(open('s1', { credit: 4 }));
    await vi.waitFor(() => expect(t.engines).toHaveLength(1));
    t.engines[0]!.write(frame('partial'));
    await new Promise((r) => setImmediate(r));
    t.engines[0]!.destroy();
    await vi.waitFor(() => expect(t.sent.at(-1)).toEqual({ type: 'logs.end', stream: 's1' }));
  });
});
