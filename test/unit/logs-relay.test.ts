import { describe, expect, it } from 'vitest';
import type { AgentLogsSink } from '../../hub/agents/gateway.js';
import { LogRelay } from '../../hub/logs/log-relay.js';
import type { HubLogsFrame, LogLine, LogsOpenFrame } from '../../shared/protocol.js';

function setup(limits = { maxStreams: 256, maxStreamsPerNode: 8, creditChunks: 4 }) {
  const sent: Array<{ nodeId: string; frame: HubLogsFrame }> = [];
  const connected = new Set(['n1', 'n2']);
  let sink: AgentLogsSink | null = null;
  const agents = {
    send: (nodeId: string, frame: HubLogsFrame) => {
      if (!connected.has(nodeId)) return false;
      sent.push({ nodeId, frame });
      return true;
    },
    attachLogs: (s: AgentLogsSink) => {
      sink = s;
    },
  };
  const relay = new LogRelay(agents, limits);
  const output = {
    text: '',
    ended: false,
    accepting: true,
    bufferedBytes: 0,
    write(t: string) {
      this.text += t;
      return this.accepting;
    },
    end() {
      this.ended = true;
    },
    lines() {
      return this.text.split('\n').filter(Boolean).map((l) => JSON.parse(l) as Record<string, unknown>);
    },
  };
  const opens = () => sent.filter((s) => s.frame.type === 'logs.open') as Array<{ nodeId: string; frame: LogsOpenFrame }>;
  const credits = (stream: string) => sent.filter((s) => s.frame.type === 'logs.credit' && s.frame.stream === stream).reduce((n, s) => n + (s.frame as { chunks: number }).chunks, 0);
  return { relay, output, sent, opens, credits, sink: () => sink!, connected };
}

const lines = (...texts: string[]): LogLine[] => texts.map((line) => ({ stream: 'stdout', line }));

describe('log relay', () => {
  it('asks each node for its own replicas only, with the credit window', () => {
    const t = setup();
    const opened = t.relay.open({
      targets: [{ replicaId: 'r1', nodeId: 'n1' }, { replicaId: 'r2', nodeId: 'n2' }],
      tail: 10, follow: true, timestamps: false, output: t.output,
    });
    expect(opened.ok).toBe(true);
    expect(t.opens().map((o) => [o.nodeId, o.frame.replicaId, o.frame.credit, o.frame.tail, o.frame.follow])).toEqual([
      ['n1', 'r1', 4, 10, true],
      ['n2', 'r2', 4, 10, true],
    ]);
  });

  it('writes NDJSON lines by replica and grants each chunk back once the response took it', () => {
    const t = setup();
    t.relay.open({ targets: [{ replicaId: 'r1', nodeId: 'n1' }], tail: 0, follow: true, timestamps: true, output: t.output });
    const id = t.opens()[0]!.frame.stream;
    t.sink().frame('n1', { type: 'logs.chunk', stream: id, lines: [{ stream: 'stderr', time: '2026-12-01T00:00:00Z', line: 'a' }, { stream: 'stdout', line: 'b' }] });
    expect(t.output.lines()).toEqual([
      { replica: 'r1', node: 'n1', stream: 'stderr', time: '2026-12-01T00:00:00Z', line: 'a' },
      { replica: 'r1', node: 'n1', stream: 'stdout', line: 'b' },
    ]);
    expect(t.credits(id)).toBe(1);
    expect(t.relay.stats().chunksInFlight).toBe(4);
  });

  it('grants nothing while the response is backed up, and what is owed at its drain', () => {
    const t = setup();
    const opened = t.relay.open({ targets: [{ replicaId: 'r1', nodeId: 'n1' }], tail: 0, follow: true, timestamps: false, output: t.output });
    const id = t.opens()[0]!.frame.stream;
    t.output.accepting = false;
    for (let i = 0; i < 4; i++) t.sink().frame('n1', { type: 'logs.chunk', stream: id, lines: lines(`${i}`) });
    expect(t.credits(id)).toBe(0);
    expect(t.relay.stats()).toMatchObject({ chunksInFlight: 0, blockedRequests: 1 });
    // A fifth chunk is past the credit: the agent broke the flow control.
    t.sink().frame('n1', { type: 'logs.chunk', stream: id, lines: lines('too many') });
    expect(t.relay.stats().creditViolations).toBe(1);
    expect(t.output.lines().at(-1)).toEqual({ replica: 'r1', node: 'n1', error: expect.stringMatching(/past its credit/) });
    expect(t.sent.at(-1)!.frame).toEqual({ type: 'logs.close', stream: id });
    expect(t.output.ended).toBe(true);
    expect(opened.ok && opened.request.isBlocked).toBe(true);
  });

  it('re-grants at the drain', () => {
    const t = setup();
    const opened = t.relay.open({ targets: [{ replicaId: 'r1', nodeId: 'n1' }], tail: 0, follow: true, timestamps: false, output: t.output });
    const id = t.opens()[0]!.frame.stream;
    t.output.accepting = false;
    t.sink().frame('n1', { type: 'logs.chunk', stream: id, lines: lines('x') });
    t.sink().frame('n1', { type: 'logs.chunk', stream: id, lines: lines('y') });
    expect(t.credits(id)).toBe(0);
    t.output.accepting = true;
    if (opened.ok) opened.request.drained();
    expect(t.credits(id)).toBe(2);
    expect(t.relay.stats().chunksInFlight).toBe(4);
  });

  it('takes no chunk of a stream from another node', () => {
    const t = setup();
    t.relay.open({ targets: [{ replicaId: 'r1', nodeId: 'n1' }], tail: 0, follow: true, timestamps: false, output: t.output });
    const id = t.opens()[0]!.frame.stream;
    t.sink().frame('n2', { type: 'logs.chunk', stream: id, lines: lines('forged') });
    t.sink().frame('n2', { type: 'logs.end', stream: id });
    expect(t.output.text).toBe('');
    expect(t.relay.stats().streams).toBe(1);
  });

  it('refuses streams past the per-node and total limits', () => {
    const t = setup({ maxStreams: 10, maxStreamsPerNode: 2, creditChunks: 4 });
    const two = [{ replicaId: 'a', nodeId: 'n1' }, { replicaId: 'b', nodeId: 'n1' }];
    expect(t.relay.open({ targets: two, tail: 0, follow: true, timestamps: false, output: t.output }).ok).toBe(true);
    const third = t.relay.open({ targets: [{ replicaId: 'c', nodeId: 'n1' }], tail: 0, follow: true, timestamps: false, output: t.output });
    expect(third).toEqual({ ok: false, message: expect.stringMatching(/node n1 serves 2 log streams at once/) });
    expect(t.relay.refusal(Array.from({ length: 9 }, (_, i) => ({ replicaId: `x${i}`, nodeId: `m${i}` })))).toMatch(/relays 10 log streams at once/);
  });

  it('ends the answer when every replica ended, with a line for each that failed', () => {
    const t = setup();
    t.relay.open({
      targets: [{ replicaId: 'r1', nodeId: 'n1' }, { replicaId: 'r2', nodeId: 'n2' }, { replicaId: 'r3', nodeId: 'gone' }],
      tail: 5, follow: false, timestamps: false, output: t.output,
      errors: [{ replicaId: 'r4', nodeId: 'old', error: 'agent too old for logs (protocol < 8)' }],
    });
    const [a, b] = t.opens();
    t.sink().frame('n1', { type: 'logs.chunk', stream: a!.frame.stream, lines: lines('tail') });
    t.sink().frame('n1', { type: 'logs.end', stream: a!.frame.stream });
    expect(t.output.ended).toBe(false);
    t.sink().frame('n2', { type: 'logs.error', stream: b!.frame.stream, message: 'no container of replica r2 on this node' });
    expect(t.output.ended).toBe(true);
    expect(t.output.lines()).toEqual([
      { replica: 'r4', node: 'old', error: 'agent too old for logs (protocol < 8)' },
      { replica: 'r3', node: 'gone', error: 'node gone is not connected' },
      { replica: 'r1', node: 'n1', stream: 'stdout', line: 'tail' },
      { replica: 'r2', node: 'n2', error: 'no container of replica r2 on this node' },
    ]);
    expect(t.relay.stats().streams).toBe(0);
  });

  it("ends a node's streams with a line when its connection ends", () => {
    const t = setup();
    t.relay.open({ targets: [{ replicaId: 'r1', nodeId: 'n1' }], tail: 0, follow: true, timestamps: false, output: t.output });
    t.sink().connectionEnded('n1');
    expect(t.output.lines()).toEqual([{ replica: 'r1', node: 'n1', error: 'the connection to node n1 ended' }]);
    expect(t.output.ended).toBe(true);
  });

  it("holds an ended stream's slot while its client has not taken its lines, so that slow clients cannot add up", () => {
    const t = setup({ maxStreams: 256, maxStreamsPerNode: 1, creditChunks: 4 });
    const opened = t.relay.open({ targets: [{ replicaId: 'r1', nodeId: 'n1' }], tail: 100, follow: false, timestamps: false, output: t.output });
    if (!opened.ok) throw new Error('refused');
    const id = t.opens()[0]!.frame.stream;
    // The whole tail fits in the credit: the agent sends it and ends, the client reads nothing.
    t.output.accepting = false;
    t.sink().frame('n1', { type: 'logs.chunk', stream: id, lines: lines('a') });
    t.sink().frame('n1', { type: 'logs.end', stream: id });
    expect(t.output.ended).toBe(true);
    // Its lines still wait in the response: another request would add as much again.
    expect(t.relay.refusal([{ replicaId: 'r1', nodeId: 'n1' }])).toMatch(/node n1 serves 1 log streams at once/);
    opened.request.drained();
    expect(t.relay.refusal([{ replicaId: 'r1', nodeId: 'n1' }])).toBeNull();
    expect(t.relay.stats().streams).toBe(0);
  });

  it("frees a held slot when the client of an ended answer goes away without reading", () => {
    const t = setup({ maxStreams: 256, maxStreamsPerNode: 1, creditChunks: 4 });
    const opened = t.relay.open({ targets: [{ replicaId: 'r1', nodeId: 'n1' }], tail: 100, follow: false, timestamps: false, output: t.output });
    if (!opened.ok) throw new Error('refused');
    const id = t.opens()[0]!.frame.stream;
    t.output.accepting = false;
    t.sink().frame('n1', { type: 'logs.chunk', stream: id, lines: lines('a') });
    t.sink().frame('n1', { type: 'logs.end', stream: id });
    opened.request.close();
    t.relay.forget(opened.request);
    expect(t.relay.stats()).toMatchObject({ streams: 0, requests: 0 });
    expect(t.relay.refusal([{ replicaId: 'r1', nodeId: 'n1' }])).toBeNull();
    // The agent's side was over already: nothing to close there.
    expect(t.sent.filter((s) => s.frame.type === 'logs.close')).toEqual([]);
  });

  it('closes every agent stream when the client goes away, and frees the slots', () => {
    const t = setup({ maxStreams: 256, maxStreamsPerNode: 1, creditChunks: 4 });
    const opened = t.relay.open({ targets: [{ replicaId: 'r1', nodeId: 'n1' }, { replicaId: 'r2', nodeId: 'n2' }], tail: 0, follow: true, timestamps: false, output: t.output });
    if (!opened.ok) throw new Error('refused');
    opened.request.close();
    t.relay.forget(opened.request);
    expect(t.sent.filter((s) => s.frame.type === 'logs.close').map((s) => s.nodeId)).toEqual(['n1', 'n2']);
    expect(t.relay.stats()).toMatchObject({ streams: 0, requests: 0 });
    expect(t.relay.refusal([{ replicaId: 'r1', nodeId: 'n1' }])).toBeNull();
  });
});
