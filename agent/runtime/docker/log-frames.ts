/**
 * A container's output as the Docker engine's logs endpoint sends it: for a container without a
 * TTY (ours), frames of an 8-byte header (stream 0-2, three zero bytes, the payload's length, big
 * endian) and the payload. Read as it arrives, keeping only the end, so a container that logged a
 * huge last line costs the agent no more than `keepBytes`.
 */
import { tailOf } from '../output-tail.js';

/** Bytes of output kept while reading, before the tail is cut: the tail wanted is far smaller. */
export const LOG_READ_KEEP_BYTES = 64 * 1024;

export class DockerLogTail {
  private pending: Buffer = Buffer.alloc(0);
  private kept: Buffer[] = [];
  private keptBytes = 0;
  /** Null until the first bytes tell: framed (no TTY) or raw (a TTY's stream). */
  private framed: boolean | null = null;

  constructor(private readonly keepBytes = LOG_READ_KEEP_BYTES) {}

  push(chunk: Buffer): void {
    this.pending = this.pending.length === 0 ? chunk : Buffer.concat([this.pending, chunk]);
    if (this.framed === null) {
      if (this.pending.length < 8) return;
      const p = this.pending;
      this.framed = p[0]! <= 2 && p[1] === 0 && p[2] === 0 && p[3] === 0;
    }
    if (!this.framed) {
      this.keep(this.pending);
      this.pending = Buffer.alloc(0);
      return;
    }
    while (this.pending.length >= 8) {
      const size = this.pending.readUInt32BE(4);
      if (this.pending.length < 8 + size) break;
      this.keep(this.pending.subarray(8, 8 + size));
      this.pending = this.pending.subarray(8 + size);
    }
  }

  /** The last `lines` lines of what was read, at most `maxBytes` bytes of text from their end; null when there was none. */
  tail(lines: number, maxBytes: number): string | null {
    if (this.framed === false || (this.framed === null && this.pending.length > 0)) this.keep(this.pending);
    const text = Buffer.concat(this.kept).toString('utf8');
    if (text.length === 0) return null;
    return tailOf(text, lines, maxBytes);
  }

  private keep(bytes: Buffer): void {
    if (bytes.length === 0) return;
    this.kept.push(Buffer.from(bytes));
    this.keptBytes += bytes.length;
    while (this.keptBytes - this.kept[0]!.length >= this.keepBytes) this.keptBytes -= this.kept.shift()!.length;
  }
}
