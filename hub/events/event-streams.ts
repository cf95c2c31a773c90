/**
 * The Server-Sent Events clients of `GET /v1/events`. A client holds no queue of its own: it is a
 * cursor into the history (fleet-events.ts), written from there whenever its socket takes more,
 * so the hub's memory per client is a few numbers plus at most one write's bytes in the socket's
 * buffer, however slow the client and however many events a storm makes. A client that falls
 * more than `maxLagEvents` behind while its socket is full, or whose cursor the history no longer
 * holds, is cut with a final `event: overflow` and resumes with Last-Event-ID. A client still
 * reading the history it asked for is not held to the lag (it starts far behind on purpose, and
 * cutting it would only start it over): only to the history keeping what it has yet to read.
 */
import type { FleetEvent, FleetEvents } from './fleet-events.js';

export interface EventStreamLimits {
  /** Streams open at once; more are refused (429). Each costs a socket and a share of every event's writes. */
  maxClients: number;
  /**
   * Events a client whose socket is full may lag behind the newest before it is cut, once it has
   * caught up. Below the history's size, so that a cut client that reconnects soon resumes
   * without a gap.
   */
  maxLagEvents: number;
  /** Bytes of events gathered into one socket write: fewer system calls in a storm, and the bound on what one write buffers. */
  maxWriteBytes: number;
  /** A comment this often keeps proxies and clients from taking a quiet stream for a dead one. */
  keepAliveMs: number;
  /** Time a cut client gets to read its last bytes before its socket is destroyed. */
  closeGraceMs: number;
  /**
   * A stream ends after this long (at the next keep-alive) and the client reconnects with
   * Last-Event-ID: its token is checked again, so a revoked or expired one stops reading.
   */
  maxStreamMs: number;
}

export const DEFAULT_EVENT_STREAM_LIMITS: EventStreamLimits = {
  maxClients: 100,
  maxLagEvents: 8_000,
  maxWriteBytes: 16 * 1024,
  keepAliveMs: 15_000,
  closeGraceMs: 30_000,
  maxStreamMs: 30 * 60_000,
};

/** What a stream writes to: an HTTP response (ServerResponse), or anything that behaves as one. */
export interface EventSink {
  write(chunk: string): boolean;
  end(): void;
  destroy(): void;
  readonly writableLength: number;
  /** The connection is already gone. */
  readonly destroyed: boolean;
  once(event: 'drain', listener: () => void): unknown;
  on(event: 'close', listener: () => void): unknown;
  on(event: 'error', listener: (err: Error) => void): unknown;
}

export interface EventStreamStats {
  clients: number;
  /** Clients cut for falling behind since the hub started. */
  overflows: number;
  /** The most bytes any client's socket buffer held after a write: the memory a slow client costs. */
  peakBufferedBytes: number;
  /** The most events any client lagged behind while still served. */
  peakLagEvents: number;
}

/** An event as SSE: made once per event, whichever clients send it. */
const framed = new WeakMap<FleetEvent, string>();
function sseText(event: FleetEvent): string {
  let text = framed.get(event);
  if (text === undefined) {
    text = `id: ${event.seq}\nevent: ${event.type}\ndata: ${JSON.stringify(event)}\n\n`;
    framed.set(event, text);
  }
  return text;
}

export class EventStreams {
  private readonly clients = new Set<EventStream>();
  private flushScheduled = false;
  private keepAliveTimer: NodeJS.Timeout | null = null;
  private readonly stopFollowing: () => void;
  private closed = false;
  private overflows = 0;
  peakBufferedBytes = 0;
  peakLagEvents = 0;

  constructor(
    readonly events: FleetEvents,
    readonly limits: EventStreamLimits = DEFAULT_EVENT_STREAM_LIMITS,
    private readonly nowMs: () => number = () => performance.now(),
  ) {
    // Per event: one check. The writes happen once per turn of the event loop, for every client
    // at once, so a burst of events costs a write per client, not one per event and client.
    this.stopFollowing = events.subscribe(() => {
      if (this.clients.size > 0 && !this.flushScheduled) {
        this.flushScheduled = true;
        setImmediate(() => this.flushAll());
      }
    });
  }

  stats(): EventStreamStats {
    return { clients: this.clients.size, overflows: this.overflows, peakBufferedBytes: this.peakBufferedBytes, peakLagEvents: this.peakLagEvents };
  }

  /** Whether another stream may open now. */
  get full(): boolean {
    return this.closed || this.clients.size >= this.limits.maxClients;
  }

  /**
   * Starts a stream on `sink` (its headers already sent) after `afterSeq`: the history after it,
   * then live events. Null: only new events. A seq the history does not know (older than it
   * holds, or from before a hub restart) starts with `event: reset` and everything held.
   */
  open(sink: EventSink, afterSeq: number | null): EventStream | null {
    // Gone while its request was checked: its 'close' has been and gone.
    if (sink.destroyed) return null;
    const { events } = this;
    let cursor = events.latestSeq + 1;
    let preface = '';
    if (afterSeq !== null) {
      if (events.knows(afterSeq)) cursor = afterSeq + 1;
      else {
        cursor = events.oldestSeq;
        preface = `event: reset\ndata: ${JSON.stringify({ oldestSeq: cursor })}\n\n`;
      }
    }
    const stream = new EventStream(this, sink, cursor, this.nowMs() + this.limits.maxStreamMs);
    this.clients.add(stream);
    sink.on('close', () => this.closedStream(stream));
    // The socket's own errors (a reset peer) end in 'close'; nothing else to do.
    sink.on('error', () => undefined);
    if (!this.keepAliveTimer) {
      this.keepAliveTimer = setInterval(() => this.keepAlive(), this.limits.keepAliveMs);
      this.keepAliveTimer.unref();
    }
    stream.start(preface);
    return stream;
  }

  /** Ends every stream (the hub is closing) and stops following events. */
  close(): void {
    this.closed = true;
    this.stopFollowing();
    for (const stream of this.clients) stream.shutdown();
    this.stopKeepAlive();
  }

  /** @internal A stream cut for falling behind. */
  overflowed(): void {
    this.overflows++;
  }

  private closedStream(stream: EventStream): void {
    stream.closed();
    this.clients.delete(stream);
    if (this.clients.size === 0) this.stopKeepAlive();
  }

  private stopKeepAlive(): void {
    if (this.keepAliveTimer) clearInterval(this.keepAliveTimer);
    this.keepAliveTimer = null;
  }

  private flushAll(): void {
    this.flushScheduled = false;
    for (const stream of this.clients) stream.flush();
  }

  private keepAlive(): void {
    const nowMs = this.nowMs();
    for (const stream of this.clients) {
      if (nowMs >= stream.endsAtMs) stream.shutdown();
      else stream.comment('keep-alive');
    }
  }
}

/** One client: where it is in the history, and whether its socket takes more. */
export class EventStream {
  /** The seq of the next event to write. */
  private cursor: number;
  /** The socket's buffer is full: wait for 'drain'. */
  private blocked = false;
  /** It has had every event once: from then on it is held to maxLagEvents. */
  private caughtUp: boolean;
  /** Cut (overflow) or shut down: nothing more is written. */
  private ending = false;
  private graceTimer: NodeJS.Timeout | null = null;

  constructor(
    private readonly owner: EventStreams,
    private readonly sink: EventSink,
    cursor: number,
    /** When it ends (maxStreamMs), so that the client's token is checked again. */
    readonly endsAtMs: number,
  ) {
    this.cursor = cursor;
    this.caughtUp = cursor > owner.events.latestSeq;
  }

  /** @internal */
  start(preface: string): void {
    if (preface) this.write(preface);
    this.flush();
  }

  /** Writes what the history holds past the cursor while the socket takes it. */
  flush(): void {
    if (this.ending) return;
    const { events, limits } = this.owner;
    const lag = events.latestSeq - this.cursor + 1;
    if (lag <= 0) return;
    // The history dropped events it had not written yet: it cannot go on without a gap.
    if (this.cursor < events.oldestSeq) return this.overflow();
    if (this.blocked) {
      if (this.caughtUp && lag > limits.maxLagEvents) this.overflow();
      return;
    }
    if (lag > this.owner.peakLagEvents) this.owner.peakLagEvents = lag;
    while (!this.blocked && this.cursor <= events.latestSeq) {
      let chunk = '';
      while (chunk.length < limits.maxWriteBytes && this.cursor <= events.latestSeq) chunk += sseText(events.at(this.cursor++)!);
      this.write(chunk);
    }
    if (this.cursor > events.latestSeq) this.caughtUp = true;
  }

  /** A comment line (keep-alive), only to a socket that takes it: a full one is not idle. */
  comment(text: string): void {
    if (!this.ending && !this.blocked) this.write(`: ${text}\n\n`);
  }

  /** @internal The hub is closing, or the stream is old enough to end. */
  shutdown(): void {
    if (this.ending) return;
    this.ending = true;
    if (this.blocked) this.sink.destroy();
    else this.sink.end();
  }

  /** @internal The socket closed. */
  closed(): void {
    this.ending = true;
    if (this.graceTimer) clearTimeout(this.graceTimer);
    this.graceTimer = null;
  }

  private write(text: string): void {
    if (!this.sink.write(text)) {
      this.blocked = true;
      this.sink.once('drain', () => {
        this.blocked = false;
        this.flush();
      });
    }
    const buffered = this.sink.writableLength;
    if (buffered > this.owner.peakBufferedBytes) this.owner.peakBufferedBytes = buffered;
  }

  /**
   * Too far behind: one last event says so and where to resume from (the last event written),
   * then the stream ends; a client that does not read even that is dropped after the grace.
   */
  private overflow(): void {
    this.ending = true;
    this.owner.overflowed();
    const lastSeq = this.cursor - 1;
    this.sink.write(`event: overflow\ndata: ${JSON.stringify({ lastSeq, latestSeq: this.owner.events.latestSeq })}\n\n`);
    this.sink.end();
    this.graceTimer = setTimeout(() => this.sink.destroy(), this.owner.limits.closeGraceMs);
    this.graceTimer.unref();
  }
}
