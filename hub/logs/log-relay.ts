/**
 * Containers' logs relayed from the agents to HTTP clients, never stored: each request opens a
 * stream per replica on the node that runs it (`logs.open`), and the relay routes the agents'
 * chunks to the request that asked. Streams are bounded per node and in all, so log readers can
 * neither crowd a device nor the hub.
 */
import { randomBytes } from 'node:crypto';
import { LOG_LIMITS, type AgentLogsFrame, type HubLogsFrame } from '../../shared/protocol.js';
import type { AgentLogsSink } from '../agents/gateway.js';
import { LogRequest, RequestStream, type LogOutput, type LogStreamLink } from './log-request.js';

/** What the relay needs of the agents' gateway. */
export interface LogAgents {
  send(nodeId: string, frame: HubLogsFrame): boolean;
  attachLogs(sink: AgentLogsSink): void;
}

export interface LogRelayLimits {
  maxStreams: number;
  maxStreamsPerNode: number;
  creditChunks: number;
}

export const DEFAULT_LOG_RELAY_LIMITS: LogRelayLimits = {
  maxStreams: 256,
  maxStreamsPerNode: LOG_LIMITS.maxStreamsPerNode,
  creditChunks: LOG_LIMITS.creditChunks,
};

export interface LogOpenRequest {
  /** The replicas to read, each on its node (only that node is asked). */
  targets: ReadonlyArray<{ replicaId: string; nodeId: string }>;
  tail: number;
  follow: boolean;
  timestamps: boolean;
  /** Epoch seconds. */
  since?: number;
  output: LogOutput;
  /** Lines for replicas that cannot be read, written before any stream's (replicaId null: a line about several). */
  errors?: ReadonlyArray<{ replicaId: string | null; nodeId: string | null; error: string }>;
}

export type LogOpenResult = { ok: true; request: LogRequest } | { ok: false; message: string };

export interface LogRelayStats {
  streams: number;
  requests: number;
  /** Chunks granted to agents and not received yet: at most creditChunks per stream. */
  chunksInFlight: number;
  /** Bytes written to responses and not yet taken by their clients. */
  bufferedBytes: number;
  /** Requests whose response is backed up (a slow client): their agents wait. */
  blockedRequests: number;
  chunksRelayed: number;
  creditViolations: number;
  refusedRequests: number;
}

export class LogRelay implements AgentLogsSink {
  private readonly streams = new Map<string, RequestStream>();
  private readonly perNode = new Map<string, number>();
  private readonly requests = new Set<LogRequest>();
  private readonly link: LogStreamLink;
  private chunksRelayed = 0;
  private creditViolations = 0;
  private refusedRequests = 0;

  constructor(
    private readonly agents: LogAgents,
    private readonly limits: LogRelayLimits = DEFAULT_LOG_RELAY_LIMITS,
  ) {
    agents.attachLogs(this);
    this.link = {
      credit: (nodeId, stream, chunks) => void agents.send(nodeId, { type: 'logs.credit', stream, chunks }),
      close: (nodeId, stream) => void agents.send(nodeId, { type: 'logs.close', stream }),
      released: (stream) => this.release(stream),
    };
  }

  /** Why streams to `targets` cannot be opened now (a limit; the route answers 429), or null. */
  refusal(targets: LogOpenRequest['targets']): string | null {
    if (this.streams.size + targets.length > this.limits.maxStreams) {
      return `the hub relays ${this.limits.maxStreams} log streams at once and ${this.streams.size} are open; ask for one replica (?replica=) or try again later`;
    }
    const wanted = new Map<string, number>();
    for (const t of targets) wanted.set(t.nodeId, (wanted.get(t.nodeId) ?? 0) + 1);
    for (const [nodeId, n] of wanted) {
      const open = this.perNode.get(nodeId) ?? 0;
      if (open + n > this.limits.maxStreamsPerNode) {
        return `node ${nodeId} serves ${this.limits.maxStreamsPerNode} log streams at once (${open} open, ${n} asked for); ask for one replica (?replica=) or try again later`;
      }
    }
    return null;
  }

  /** Opens a stream per target, or none when that would pass a limit (see refusal()). */
  open(req: LogOpenRequest): LogOpenResult {
    const refused = this.refusal(req.targets);
    if (refused !== null) {
      this.refusedRequests++;
      return { ok: false, message: refused };
    }
    const request = new LogRequest(req.output, this.link, req.timestamps);
    this.requests.add(request);
    for (const e of req.errors ?? []) request.errorLine(e.replicaId, e.nodeId, e.error);
    for (const t of req.targets) {
      const stream = new RequestStream(randomBytes(12).toString('base64url'), t.replicaId, t.nodeId, request, this.limits.creditChunks);
      request.add(stream);
      this.streams.set(stream.id, stream);
      this.perNode.set(t.nodeId, (this.perNode.get(t.nodeId) ?? 0) + 1);
    }
    for (const s of [...request.streams]) {
      const sent = this.agents.send(s.nodeId, {
        type: 'logs.open',
        stream: s.id,
        replicaId: s.replicaId,
        tail: req.tail,
        follow: req.follow,
        timestamps: req.timestamps,
        ...(req.since === undefined ? {} : { since: req.since }),
        credit: this.limits.creditChunks,
      });
      if (!sent) request.ended(s, `node ${s.nodeId} is not connected`);
    }
    request.finishIfDone();
    return { ok: true, request };
  }

  frame(nodeId: string, frame: AgentLogsFrame): void {
    const stream = this.streams.get(frame.stream);
    // Another node's stream id, or one already over: nothing of it reaches any client.
    if (!stream || stream.nodeId !== nodeId) return;
    switch (frame.type) {
      case 'logs.chunk':
        if (stream.inFlight <= 0) {
          this.creditViolations++;
          return stream.request.refuse(stream, 'the agent sent log lines past its credit; stream ended');
        }
        this.chunksRelayed++;
        return stream.request.chunk(stream, frame.lines);
      case 'logs.end':
        return stream.request.ended(stream, null);
      case 'logs.error':
        return stream.request.ended(stream, frame.message);
    }
  }

  connectionEnded(nodeId: string): void {
    if (!this.perNode.has(nodeId)) return;
    for (const s of [...this.streams.values()]) {
      if (s.nodeId === nodeId) s.request.ended(s, `the connection to node ${nodeId} ended`);
    }
  }

  stats(): LogRelayStats {
    let chunksInFlight = 0;
    for (const s of this.streams.values()) chunksInFlight += s.inFlight;
    let bufferedBytes = 0;
    let blockedRequests = 0;
    for (const r of this.requests) {
      bufferedBytes += r.bufferedBytes;
      if (r.isBlocked) blockedRequests++;
    }
    return {
      streams: this.streams.size,
      requests: this.requests.size,
      chunksInFlight,
      bufferedBytes,
      blockedRequests,
      chunksRelayed: this.chunksRelayed,
      creditViolations: this.creditViolations,
      refusedRequests: this.refusedRequests,
    };
  }

  /** A request the route refused with refusal()'s answer. */
  countRefused(): void {
    this.refusedRequests++;
  }

  /** A request's output is over (all its streams ended, or its client went away). */
  forget(request: LogRequest): void {
    this.requests.delete(request);
  }

  private release(stream: RequestStream): void {
    if (this.streams.get(stream.id) !== stream) return;
    this.streams.delete(stream.id);
    const n = (this.perNode.get(stream.nodeId) ?? 1) - 1;
    if (n <= 0) this.perNode.delete(stream.nodeId);
    else this.perNode.set(stream.nodeId, n);
  }
}
