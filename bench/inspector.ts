/**
 * A minimal client of Node's inspector protocol, for processes started with
 * `--inspect=127.0.0.1:0`. It lets the benchmark force a full GC in a process it did not write
 * (the hub has no gc hook) and take CPU profiles of single phases. Nothing is enabled between
 * calls: each use opens a session, does its work and closes it again.
 */
import WebSocket from 'ws';
import { PendingCalls } from './pending-calls.js';

const LISTENING_RE = /Debugger listening on (ws:\/\/\S+)/;

/** Finds the inspector's WebSocket URL in a process's stderr text. */
export function inspectorUrlIn(stderrText: string): string | null {
  return LISTENING_RE.exec(stderrText)?.[1] ?? null;
}

export interface CpuProfile {
  nodes: Array<{ id: number; callFrame: { functionName: string; url: string; lineNumber: number }; hitCount?: number }>;
  startTime: number;
  endTime: number;
  samples?: number[];
}

export class InspectorSession {
  private readonly pending = new PendingCalls();

  private constructor(private readonly ws: WebSocket) {
    ws.on('message', (data) => {
      const msg = JSON.parse(data.toString()) as { id?: number; result?: unknown; error?: { message: string } };
      if (msg.id === undefined) return;
      this.pending.settle(msg.id, msg.error ? { error: new Error(msg.error.message) } : { value: msg.result });
    });
    ws.on('close', () => this.pending.rejectAll(new Error('inspector session closed')));
  }

  static async open(url: string, timeoutMs = 10_000): Promise<InspectorSession> {
    const ws = new WebSocket(url, { perMessageDeflate: false, maxPayload: 1024 * 1024 * 1024, handshakeTimeout: timeoutMs });
    await new Promise<void>((resolve, reject) => {
      ws.once('open', () => resolve());
      ws.once('error', reject);
    });
    return new InspectorSession(ws);
  }

  call<T = any>(method: string, params: object = {}, timeoutMs = 60_000): Promise<T> {
    return this.pending.call<T>((id) => this.ws.send(JSON.stringify({ id, method, params })), timeoutMs, `inspector call ${method}`);
  }

  async evaluate<T>(expression: string): Promise<T> {
    const res = await this.call<{ result: { value: T }; exceptionDetails?: unknown }>('Runtime.evaluate', { expression, returnByValue: true });
    if (res.exceptionDetails) throw new Error(`evaluate failed: ${JSON.stringify(res.exceptionDetails).slice(0, 300)}`);
    return res.result.value;
  }

  close(): void {
    this.ws.close();
  }
}

/** Forces a full garbage collection in the process and returns its heap figures afterwards. */
export async function collectGarbage(url: string): Promise<{ heapUsed: number; external: number; arrayBuffers: number }> {
  const session = await InspectorSession.open(url);
  try {
    // Twice: the first pass may leave objects whose finalizers free more on the second.
    await session.call('HeapProfiler.collectGarbage');
    await session.call('HeapProfiler.collectGarbage');
    return await session.evaluate('(() => { const m = process.memoryUsage(); return { heapUsed: m.heapUsed, external: m.external, arrayBuffers: m.arrayBuffers }; })()');
  } finally {
    session.close();
  }
}

/** A CPU profile of whatever the process does between start() and stop(). */
export class PhaseProfiler {
  private constructor(private readonly session: InspectorSession) {}

  static async start(url: string, samplingIntervalUs = 500): Promise<PhaseProfiler> {
    const session = await InspectorSession.open(url);
    await session.call('Profiler.enable');
    await session.call('Profiler.setSamplingInterval', { interval: samplingIntervalUs });
    await session.call('Profiler.start');
    return new PhaseProfiler(session);
  }

  async stop(): Promise<CpuProfile> {
    try {
      const { profile } = await this.session.call<{ profile: CpuProfile }>('Profiler.stop');
      await this.session.call('Profiler.disable');
      return profile;
    } finally {
      this.session.close();
    }
  }
}

/** The functions with the most self time in a profile: name, file:line, share of samples. */
export function topSelfTime(profile: CpuProfile, count = 15): Array<{ fn: string; where: string; pct: number }> {
  const hits = new Map<string, number>();
  let total = 0;
  for (const node of profile.nodes) {
    const n = node.hitCount ?? 0;
    if (n === 0) continue;
    total += n;
    const f = node.callFrame;
    const file = f.url.replace(/^file:\/\//, '').replace(/^.*\/(dist|node_modules)\//, '$1/');
    const key = `${f.functionName || '(anonymous)'}\t${file ? `${file}:${f.lineNumber + 1}` : ''}`;
    hits.set(key, (hits.get(key) ?? 0) + n);
  }
  return [...hits.entries()]
    .sort((a, b) => b[1] - a[1])
    .slice(0, count)
    .map(([key, n]) => {
      const [fn, where] = key.split('\t') as [string, string];
      return { fn, where, pct: Math.round((1000 * n) / Math.max(1, total)) / 10 };
    });
}
