/**
 * Splits a stream of newline-delimited JSON (events, pull progress) into values. Chunks may end
 * mid-line or carry several lines; a line that does not parse is reported, not thrown, so one bad
 * line cannot kill the stream handler. A line longer than maxLineChars is dropped as bad: an engine
 * (or a proxy) that never sends a newline must not grow the buffer without end.
 */
export const JSON_LINE_MAX_CHARS = 1024 * 1024;

export class JsonLineReader {
  private buffered = '';

  constructor(private readonly maxLineChars = JSON_LINE_MAX_CHARS) {}

  push(chunk: string, onValue: (value: unknown) => void, onBadLine: (line: string) => void): void {
    this.buffered += chunk;
    let newline: number;
    while ((newline = this.buffered.indexOf('\n')) >= 0) {
      const line = this.buffered.slice(0, newline).trim();
      this.buffered = this.buffered.slice(newline + 1);
      if (line === '') continue;
      let value: unknown;
      try {
        value = JSON.parse(line);
      } catch {
        onBadLine(line);
        continue;
      }
      onValue(value);
    }
    if (this.buffered.length > this.maxLineChars) {
      onBadLine(this.buffered);
      this.buffered = '';
    }
  }

  /** Whatever arrived after the last newline (a stream should not end with one pending). */
  get pending(): string {
    return this.buffered;
  }
}
