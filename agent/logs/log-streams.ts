/**
 * The agent's log streams: each `logs.open` from the hub becomes one read of a container's log
 * through the engine, sent back in credited chunks. At most LOG_LIMITS.maxStreamsPerNode at once;
 * all of them end when the link to the hub does (the hub forgets them then too).
 */
import type { Readable } from 'node:stream';
import type { Logger } from '../../shared/logger.js';
import { LOG_LIMITS, type AgentLogsFrame, type HubLogsFrame, type LogsOpenFrame } from '../../shared/protocol.js';
import { LogReadError, type ContainerLogSource } from './container-logs.js';
import { CreditedChunks } from './credited-chunks.js';
import { DockerLogLines } from './docker-log-lines.js';

export interface AgentLogStreamsOptions {
  /** Null: this agent reads no logs (a simulated runtime), and says so to each request. */
  source: ContainerLogSource | null;
  /** False when the link is down: the stream ends, the hub has forgotten it. */
  send(frame: AgentLogsFrame): boolean;
  logger: Pick<Logger, 'info' | 'warn'>;
  maxStreams?: number;
}

class OpenStream {
  readonly abort = new AbortController();
  engine: Readable | null = null;
  chunks: CreditedChunks | null = null;
  /** Credit granted before the engine's stream was open. */
  earlyCredit = 0;
  bytesRead = 0;
  constructor(readonly frame: LogsOpenFrame) {}
}

export class AgentLogStreams {
  private readonly streams = new Map<string, OpenStream>();

  constructor(private readonly opts: AgentLogStreamsOptions) {}

  get openCount(): number {
    return this.streams.size;
  }

  handle(frame: HubLogsFrame): void {
    switch (frame.type) {
      case 'logs.open':
        return this.open(frame);
      case 'logs.credit': {
        const s = this.streams.get(frame.stream);
        if (!s) return; // ended meanwhile: the hub hears the end or the error
        if (s.chunks) s.chunks.grant(frame.chunks);
        else s.earlyCredit += frame.chunks;
        return;
      }
      case 'logs.close': {
        const s = this.streams.get(frame.stream);
        if (s) this.finish(s, 'closed by the hub');
        return;
      }
    }
  }

  /** The link to the hub is gone (or the agent stops): every stream ends, engine side included. */
  closeAll(reason: string): void {
    for (const s of [...this.streams.values()]) this.finish(s, reason);
  }

  private open(frame: LogsOpenFrame): void {
    const maxStreams = this.opts.maxStreams ?? LOG_LIMITS.maxStreamsPerNode;
    if (!this.opts.source) return void this.opts.send({ type: 'logs.error', stream: frame.stream, message: 'this agent reads no container logs' });
    if (this.streams.has(frame.stream)) return; // a repeated open: the first stands
    if (this.streams.size >= maxStreams) {
      return void this.opts.send({ type: 'logs.error', stream: frame.stream, message: `this node serves ${maxStreams} log streams at once; try again later` });
    }
    const s = new OpenStream(frame);
    this.streams.set(frame.stream, s);
    const request = { replicaId: frame.replicaId, tail: frame.tail, follow: frame.follow, timestamps: frame.timestamps, ...(frame.since === undefined ? {} : { since: frame.since }) };
    this.opts.source.open(request, s.abort.signal).then(
      (engine) => this.read(s, engine),
      (err: unknown) => {
        if (this.streams.get(frame.stream) !== s) return;
        const message = err instanceof LogReadError ? err.message : `could not read the container's logs: ${(err as Error).message}`;
        this.fail(s, message);
      },
    );
  }

  private read(s: OpenStream, engine: Readable): void {
    if (this.streams.get(s.frame.stream) !== s) {
      engine.destroy();
      return;
    }
    s.engine = engine;
    const lines = new DockerLogLines({ timestamps: s.frame.timestamps });
    const id = s.frame.stream;
    const chunks = new CreditedChunks({
      credit: s.frame.credit + s.earlyCredit,
      source: engine,
      sendChunk: (batch) => {
        if (!this.opts.send({ type: 'logs.chunk', stream: id, lines: batch })) this.finish(s, 'the link to the hub is down');
      },
      sendEnd: () => {
        this.opts.send({ type: 'logs.end', stream: id });
        this.finish(s, 'ended');
      },
    });
    s.chunks = chunks;
    engine.on('data', (data: Buffer) => {
      s.bytesRead += data.length;
      chunks.push(lines.push(data));
    });
    engine.once('end', () => {
      chunks.push(lines.end());
      chunks.end();
    });
    engine.on('error', (err: Error) => {
      if (this.streams.get(id) === s) this.fail(s, `the container engine's log stream failed: ${err.message}`);
    });
    // Closed without an end (the engine went away): what was read goes out, then the end.
    engine.once('close', () => {
      if (this.streams.get(id) !== s || engine.readableEnded) return;
      chunks.push(lines.end());
      chunks.end();
    });
  }

  private fail(s: OpenStream, message: string): void {
    this.opts.send({ type: 'logs.error', stream: s.frame.stream, message: message.slice(0, LOG_LIMITS.maxErrorLength) });
    this.finish(s, `failed: ${message}`);
  }

  /** Ends the stream on this side: the engine's stream is destroyed, its slot freed, its figures logged. */
  private finish(s: OpenStream, reason: string): void {
    if (this.streams.get(s.frame.stream) !== s) return;
    this.streams.delete(s.frame.stream);
    s.abort.abort();
    const engineClosed = s.engine !== null && !s.engine.destroyed;
    s.engine?.destroy();
    this.opts.logger.info(
      {
        logStream: s.frame.stream,
        replicaId: s.frame.replicaId,
        reason,
        bytesRead: s.bytesRead,
        chunksSent: s.chunks?.chunksSent ?? 0,
        maxHeldBytes: s.chunks?.maxHeldBytes ?? 0,
        pauses: s.chunks?.pauses ?? 0,
        engineStreamClosed: engineClosed,
      },
      'log stream ended',
    );
  }
}
