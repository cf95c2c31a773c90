/**
 * Lines out of the bytes the Docker engine's logs endpoint sends. For a container without a TTY,
 * frames of an 8-byte header (stream 0-2, three zero bytes, the payload's length, big endian) and
 * the payload; for one with a TTY, the raw output. With `timestamps`, each of the engine's log
 * entries starts with its RFC 3339 time and a space, cut off here and kept as the line's time.
 *
 * Our own parser, not docker-modem's demuxStream: that one writes into two streams without
 * regard for their backpressure, and a paused reader must hold no more than the read in hand.
 * Pure: bytes in, lines out; a line longer than maxLineBytes is cut there (the rest of it is
 * dropped), so one runaway line costs no more than that.
 */
import { LOG_LIMITS, type LogLine } from '../../shared/protocol.js';

type StreamName = LogLine['stream'];

/** A longer timestamp prefix is not one: the text is kept as it is. */
const MAX_TIMESTAMP_BYTES = 40;
const SPACE = 0x20;
const NEWLINE = 0x0a;

/** The line being put together on one of the two streams. */
class PartialLine {
  parts: Buffer[] = [];
  bytes = 0;
  time: string | undefined;
  /** The start of an engine entry whose timestamp has not been read whole yet. */
  timestampBytes: Buffer | null = null;

  constructor(readonly stream: StreamName) {}
}

export class DockerLogLines {
  /** Null until the first bytes tell: framed (no TTY) or raw (a TTY's stream). */
  private framed: boolean | null = null;
  private header: Buffer = Buffer.alloc(0);
  /** Payload bytes of the current frame still to come, and its stream. */
  private frameLeft = 0;
  private frameStream: StreamName = 'stdout';
  private readonly partial: Record<StreamName, PartialLine> = { stdout: new PartialLine('stdout'), stderr: new PartialLine('stderr') };
  private out: LogLine[] = [];

  constructor(private readonly opts: { timestamps: boolean; maxLineBytes?: number }) {}

  private get maxLineBytes(): number {
    return this.opts.maxLineBytes ?? LOG_LIMITS.maxLineBytes;
  }

  /** The lines that `chunk` completes, in order. */
  push(chunk: Buffer): LogLine[] {
    let at = 0;
    if (this.framed === null) {
      // Decided on the first 8 bytes, as the engine's own clients do.
      this.header = this.header.length === 0 ? chunk : Buffer.concat([this.header, chunk]);
      if (this.header.length < 8) return [];
      const h = this.header;
      this.framed = h[0]! <= 2 && h[1] === 0 && h[2] === 0 && h[3] === 0;
      chunk = h;
      this.header = Buffer.alloc(0);
      if (!this.framed) this.entryStarts('stdout');
    }
    if (!this.framed) {
      this.payload('stdout', chunk, true);
      return this.take();
    }
    while (at < chunk.length) {
      if (this.frameLeft === 0) {
        const need = 8 - this.header.length;
        const got = chunk.subarray(at, at + need);
        this.header = this.header.length === 0 ? Buffer.from(got) : Buffer.concat([this.header, got]);
        at += got.length;
        if (this.header.length < 8) break;
        this.frameStream = this.header[0] === 2 ? 'stderr' : 'stdout';
        this.frameLeft = this.header.readUInt32BE(4);
        this.header = Buffer.alloc(0);
        // Each frame is one entry of the engine's log: its timestamp comes first.
        this.entryStarts(this.frameStream);
        continue;
      }
      const take = Math.min(this.frameLeft, chunk.length - at);
      this.payload(this.frameStream, chunk.subarray(at, at + take), false);
      this.frameLeft -= take;
      at += take;
    }
    return this.take();
  }

  /** The source ended: what is left of each stream's last line, if any. */
  end(): LogLine[] {
    if (this.framed === null && this.header.length > 0) {
      // Fewer bytes in all than a frame's header: a TTY's output (a framed stream has at least one header).
      this.framed = false;
      this.entryStarts('stdout');
      this.payload('stdout', this.header, true);
      this.header = Buffer.alloc(0);
    }
    for (const p of Object.values(this.partial)) {
      if (p.timestampBytes !== null) this.flushTimestamp(p, true);
      if (p.bytes > 0) this.emit(p);
    }
    return this.take();
  }

  private take(): LogLine[] {
    const lines = this.out;
    this.out = [];
    return lines;
  }

  private entryStarts(stream: StreamName): void {
    if (this.opts.timestamps) this.partial[stream].timestampBytes = Buffer.alloc(0);
  }

  /** `raw`: a TTY's stream, where an entry's timestamp can only be told at the start of a line. */
  private payload(stream: StreamName, bytes: Buffer, raw: boolean): void {
    const p = this.partial[stream];
    let at = 0;
    while (at < bytes.length) {
      if (p.timestampBytes !== null) {
        // An entry's first word, up to a space: its time. A newline or a longer word first: no time.
        let end = at;
        const limit = at + MAX_TIMESTAMP_BYTES + 1 - p.timestampBytes.length;
        while (end < bytes.length && end < limit && bytes[end] !== SPACE && bytes[end] !== NEWLINE) end++;
        p.timestampBytes = Buffer.concat([p.timestampBytes, bytes.subarray(at, end)]);
        if (end === bytes.length && end < limit) return;
        const spaceFound = end < bytes.length && bytes[end] === SPACE;
        this.flushTimestamp(p, !spaceFound);
        at = spaceFound ? end + 1 : end;
        continue;
      }
      const nl = bytes.indexOf(NEWLINE, at);
      const end = nl === -1 ? bytes.length : nl;
      this.append(p, bytes.subarray(at, end));
      if (nl === -1) return;
      this.emit(p);
      at = nl + 1;
      if (raw) this.entryStarts(stream);
    }
  }

  /** The bytes read as an entry's start: its time, or, when they are not one, text of the line. */
  private flushTimestamp(p: PartialLine, notATimestamp: boolean): void {
    const bytes = p.timestampBytes!;
    p.timestampBytes = null;
    const text = bytes.toString('utf8');
    if (!notATimestamp && /^\d{4}-\d\d-\d\dT[0-9:.]+(Z|[+-]\d\d:\d\d)$/.test(text)) {
      // A line the engine split into entries keeps the time of its first.
      p.time ??= text;
      return;
    }
    this.append(p, notATimestamp ? bytes : Buffer.concat([bytes, Buffer.from(' ')]));
  }

  private append(p: PartialLine, bytes: Buffer): void {
    const room = this.maxLineBytes - p.bytes;
    if (room <= 0 || bytes.length === 0) return;
    // Copied: the engine's read buffer is not kept alive by a line.
    const kept = Buffer.from(bytes.subarray(0, room));
    p.parts.push(kept);
    p.bytes += kept.length;
  }

  private emit(p: PartialLine): void {
    let text = Buffer.concat(p.parts, p.bytes).toString('utf8');
    if (text.endsWith('\r')) text = text.slice(0, -1);
    const line: LogLine = p.time !== undefined && this.opts.timestamps ? { stream: p.stream, time: p.time, line: text } : { stream: p.stream, line: text };
    this.out.push(line);
    p.parts = [];
    p.bytes = 0;
    p.time = undefined;
  }
}
