/**
 * One HTTP request's log streams, one per replica, and the NDJSON they are written to. The
 * hub's half of the flow control: a chunk taken by the response is granted back to its agent
 * at once, unless the response is backed up (a slow client); then every stream of the request
 * waits for the response's drain. So a slow or gone client holds at most LOG_LIMITS.creditChunks
 * chunks per stream in the hub, and nothing piles up on the agent.
 */
import type { LogLine } from '../../shared/protocol.js';

/** Where the lines go: the HTTP response, in the route. */
export interface LogOutput {
  /** False: the client is behind; `drained()` is called once it caught up. */
  write(text: string): boolean;
  end(): void;
  /** Bytes written and not yet taken by the client (what a slow client costs the hub now). */
  readonly bufferedBytes: number;
}

/** What a request needs of the relay: frames to its agents, and its streams forgotten once over. */
export interface LogStreamLink {
  credit(nodeId: string, stream: string, chunks: number): void;
  close(nodeId: string, stream: string): void;
  released(stream: RequestStream): void;
}

export class RequestStream {
  /** Chunks granted and not yet received: the agent may send this many. */
  inFlight: number;
  /** Chunks written while the response was backed up: granted again at its drain. */
  owed = 0;
  done = false;
  constructor(
    readonly id: string,
    readonly replicaId: string,
    readonly nodeId: string,
    readonly request: LogRequest,
    credit: number,
  ) {
    this.inFlight = credit;
  }
}

export class LogRequest {
  readonly streams: RequestStream[] = [];
  /** The last write was refused: grants wait for the drain. */
  private blocked = false;
  private over = false;
  /**
   * Streams that ended while the response was backed up: their last lines wait in it, so they
   * keep their slots (the stream limits are what bounds the bytes slow clients hold in the hub)
   * until the drain, or until the client goes away.
   */
  private held: RequestStream[] = [];

  constructor(
    private readonly output: LogOutput,
    private readonly link: LogStreamLink,
    private readonly timestamps: boolean,
  ) {}

  get isBlocked(): boolean {
    return this.blocked;
  }

  get bufferedBytes(): number {
    return this.output.bufferedBytes;
  }

  add(stream: RequestStream): void {
    this.streams.push(stream);
  }

  /** A replica that cannot be read: one line that says why. */
  errorLine(replicaId: string | null, nodeId: string | null, error: string): void {
    this.write(`${JSON.stringify({ replica: replicaId, node: nodeId, error })}\n`);
  }

  chunk(stream: RequestStream, lines: readonly LogLine[]): void {
    if (stream.done || this.over) return;
    stream.inFlight--;
    let text = '';
    for (const l of lines) {
      const entry = this.timestamps && l.time !== undefined
        ? { replica: stream.replicaId, node: stream.nodeId, stream: l.stream, time: l.time, line: l.line }
        : { replica: stream.replicaId, node: stream.nodeId, stream: l.stream, line: l.line };
      text += `${JSON.stringify(entry)}\n`;
    }
    stream.owed++;
    this.write(text);
    if (!this.blocked) this.grant(stream);
  }

  /** The stream is over on the agent's side (`message`: why it failed), or the node's connection ended. */
  ended(stream: RequestStream, error: string | null): void {
    if (stream.done) return;
    if (error !== null && !this.over) this.errorLine(stream.replicaId, stream.nodeId, error);
    this.release(stream);
    this.finishIfDone();
  }

  /** The agent broke its side of the flow control: the stream ends, with a line that says so. */
  refuse(stream: RequestStream, error: string): void {
    if (stream.done) return;
    this.link.close(stream.nodeId, stream.id);
    this.ended(stream, error);
  }

  /** The response caught up: every stream gets what it was owed. */
  drained(): void {
    this.blocked = false;
    this.releaseHeld();
    for (const s of this.streams) if (!s.done) this.grant(s);
  }

  /** The client went away: every agent stops reading. */
  close(): void {
    const wasOver = this.over;
    this.over = true;
    // Nothing waits in a response whose client is gone.
    this.blocked = false;
    if (!wasOver) {
      for (const s of this.streams) {
        if (s.done) continue;
        this.link.close(s.nodeId, s.id);
        this.release(s);
      }
    }
    this.releaseHeld();
  }

  /** Every stream ended before any was opened (all errors), or since: the answer ends. */
  finishIfDone(): void {
    if (this.over || this.streams.some((s) => !s.done)) return;
    this.over = true;
    this.output.end();
  }

  private write(text: string): void {
    if (!this.output.write(text)) this.blocked = true;
  }

  private grant(stream: RequestStream): void {
    if (stream.owed === 0 || stream.done) return;
    this.link.credit(stream.nodeId, stream.id, stream.owed);
    stream.inFlight += stream.owed;
    stream.owed = 0;
  }

  private release(stream: RequestStream): void {
    stream.done = true;
    if (this.blocked) this.held.push(stream);
    else this.link.released(stream);
  }

  private releaseHeld(): void {
    const held = this.held;
    this.held = [];
    for (const s of held) this.link.released(s);
  }
}
