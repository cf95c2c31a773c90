/**
 * The agent's half of a log stream's flow control. Lines go out in chunks of at most
 * LOG_LIMITS.maxChunkBytes, one chunk per credit the hub granted. Out of credit with a full
 * chunk waiting, the engine's stream is paused: the engine keeps the output on the device's disk
 * (where it is anyway), and the agent holds about two chunks and the read in hand, however slow
 * the HTTP client at the far end. Pure apart from the calls it is given; no timers.
 */
import { LOG_LIMITS, type LogLine } from '../../shared/protocol.js';

/** What a paused reader needs of the engine's stream. */
export interface PausableSource {
  pause(): void;
  resume(): void;
}

export interface CreditedChunksOptions {
  /** Chunks the hub granted at open. */
  credit: number;
  source: PausableSource;
  sendChunk(lines: LogLine[]): void;
  /** Once the source ended and every line went out. */
  sendEnd(): void;
  maxChunkBytes?: number;
  maxChunkLines?: number;
  /** What the hub adds to each line it writes (see LOG_LIMITS.lineOverheadBytes). */
  lineOverheadBytes?: number;
}

export class CreditedChunks {
  private credit: number;
  /** Full chunks waiting for credit, oldest first. */
  private readonly ready: LogLine[][] = [];
  private current: LogLine[] = [];
  private currentBytes = 0;
  private ended = false;
  private endSent = false;
  private paused = false;
  /** Line bytes held now, and the most ever held: the bound the tests check. */
  heldBytes = 0;
  maxHeldBytes = 0;
  chunksSent = 0;
  /** Times the engine's stream was paused for want of credit. */
  pauses = 0;
  private readonly maxChunkBytes: number;
  private readonly maxChunkLines: number;
  private readonly lineOverheadBytes: number;

  constructor(private readonly opts: CreditedChunksOptions) {
    this.credit = opts.credit;
    this.maxChunkBytes = opts.maxChunkBytes ?? LOG_LIMITS.maxChunkBytes;
    this.maxChunkLines = opts.maxChunkLines ?? LOG_LIMITS.maxChunkLines;
    this.lineOverheadBytes = opts.lineOverheadBytes ?? LOG_LIMITS.lineOverheadBytes;
  }

  /**
   * What a line costs of a chunk: the text the hub writes for it (its JSON, escapes included, and
   * the envelope), so that a chunk of empty lines or control characters is no larger at the hub
   * than one of plain text.
   */
  private costOf(line: LogLine): number {
    return Buffer.byteLength(JSON.stringify(line.line)) + (line.time?.length ?? 0) + this.lineOverheadBytes;
  }

  get isPaused(): boolean {
    return this.paused;
  }

  get creditLeft(): number {
    return this.credit;
  }

  /** Lines read from the engine; sent at once while credit lasts (a followed container's lines go out as they come). */
  push(lines: readonly LogLine[]): void {
    for (const line of lines) {
      const bytes = this.costOf(line);
      if (this.current.length > 0 && (this.currentBytes + bytes > this.maxChunkBytes || this.current.length >= this.maxChunkLines)) this.seal();
      this.current.push(line);
      this.currentBytes += bytes;
      this.heldBytes += bytes;
    }
    if (this.heldBytes > this.maxHeldBytes) this.maxHeldBytes = this.heldBytes;
    this.flush();
  }

  /** The hub took `chunks` more. */
  grant(chunks: number): void {
    this.credit += chunks;
    this.flush();
  }

  /** The engine's stream ended: the last lines go out as credit allows, then the end. */
  end(): void {
    this.ended = true;
    this.flush();
  }

  private seal(): void {
    this.ready.push(this.current);
    this.current = [];
    this.currentBytes = 0;
  }

  private flush(): void {
    while (this.credit > 0) {
      if (this.ready.length === 0) {
        if (this.current.length === 0) break;
        this.seal();
      }
      const chunk = this.ready.shift()!;
      this.credit--;
      this.chunksSent++;
      for (const line of chunk) this.heldBytes -= this.costOf(line);
      this.opts.sendChunk(chunk);
    }
    if (this.ended) {
      if (!this.endSent && this.ready.length === 0 && this.current.length === 0) {
        this.endSent = true;
        this.opts.sendEnd();
      }
      return;
    }
    // Paused only with a full chunk waiting: a partial one keeps filling, so a slow reader gets
    // full chunks rather than many small ones.
    const backlog = this.ready.length > 0 || this.currentBytes >= this.maxChunkBytes;
    if (backlog && !this.paused) {
      this.paused = true;
      this.pauses++;
      this.opts.source.pause();
    } else if (!backlog && this.paused) {
      this.paused = false;
      this.opts.source.resume();
    }
  }
}
