import { describe, expect, it } from 'vitest';
import { DockerLogLines } from '../../agent/logs/docker-log-lines.js';

/** One frame of the engine's multiplexed log stream: 1 stdout, 2 stderr. */
function frame(stream: 1 | 2, text: string | Buffer): Buffer {
  const payload = typeof text === 'string' ? Buffer.from(text) : text;
  const header = Buffer.alloc(8);
  header[0] = stream;
  header.writeUInt32BE(payload.length, 4);
  return Buffer.concat([header, payload]);
}

/** Feeds `bytes` in pieces of `size` (the engine's reads end anywhere). */
function feed(lines: DockerLogLines, bytes: Buffer, size: number) {
  const out = [];
  for (let at = 0; at < bytes.length; at += size) out.push(...lines.push(bytes.subarray(at, at + size)));
  out.push(...lines.end());
  return out;
}

describe('docker log lines', () => {
  it('splits stdout and stderr frames into lines, whatever the read boundaries', () => {
    const bytes = Buffer.concat([frame(1, 'one\n'), frame(2, 'oops\n'), frame(1, 'two\nthree\n')]);
    for (const size of [1, 3, 7, 8, 9, 1000]) {
      expect(feed(new DockerLogLines({ timestamps: false }), bytes, size)).toEqual([
        { stream: 'stdout', line: 'one' },
        { stream: 'stderr', line: 'oops' },
        { stream: 'stdout', line: 'two' },
        { stream: 'stdout', line: 'three' },
      ]);
    }
  });

  it('cuts the engine timestamp off each entry and keeps it as the time', () => {
    const bytes = Buffer.concat([frame(1, '2026-12-01T10:00:00.123456789Z hello world\n'), frame(2, '2026-12-01T10:00:01.5Z err\n')]);
    for (const size of [1, 5, 40, 1000]) {
      expect(feed(new DockerLogLines({ timestamps: true }), bytes, size)).toEqual([
        { stream: 'stdout', time: '2026-12-01T10:00:00.123456789Z', line: 'hello world' },
        { stream: 'stderr', time: '2026-12-01T10:00:01.5Z', line: 'err' },
      ]);
    }
  });

  it('joins a line the engine split into entries, with the time of its first', () => {
    const bytes = Buffer.concat([frame(1, '2026-12-01T10:00:00Z abc'), frame(1, '2026-12-01T10:00:02Z def\n')]);
    expect(feed(new DockerLogLines({ timestamps: true }), bytes, 1000)).toEqual([{ stream: 'stdout', time: '2026-12-01T10:00:00Z', line: 'abcdef' }]);
  });

  it('keeps a first word that is no timestamp as text', () => {
    const bytes = frame(1, 'not-a-time here\nsecond\n');
    expect(feed(new DockerLogLines({ timestamps: true }), bytes, 1000)).toEqual([
      { stream: 'stdout', line: 'not-a-time here' },
      { stream: 'stdout', line: 'second' },
    ]);
  });

  it('cuts a runaway line at maxLineBytes and drops the rest of it', () => {
    const lines = new DockerLogLines({ timestamps: false, maxLineBytes: 10 });
    const out = feed(lines, Buffer.concat([frame(1, 'x'.repeat(5000)), frame(1, 'y'.repeat(5000) + '\nshort\n')]), 333);
    expect(out).toEqual([
      { stream: 'stdout', line: 'x'.repeat(10) },
      { stream: 'stdout', line: 'short' },
    ]);
  });

  it('reads a TTY container raw output as stdout lines', () => {
    const out = feed(new DockerLogLines({ timestamps: false }), Buffer.from('hello from a tty\r\nbye\r\n'), 4);
    expect(out).toEqual([
      { stream: 'stdout', line: 'hello from a tty' },
      { stream: 'stdout', line: 'bye' },
    ]);
  });

  it("gives a TTY container's whole output when it is shorter than a frame header", () => {
    // Under 8 bytes in all: too short to tell raw from framed until the end, and then raw.
    expect(feed(new DockerLogLines({ timestamps: false }), Buffer.from('three\n'), 2)).toEqual([{ stream: 'stdout', line: 'three' }]);
    expect(feed(new DockerLogLines({ timestamps: false }), Buffer.from('ok'), 1)).toEqual([{ stream: 'stdout', line: 'ok' }]);
  });

  it('gives the last line without a newline at the end', () => {
    expect(feed(new DockerLogLines({ timestamps: false }), frame(2, 'no newline'), 1000)).toEqual([{ stream: 'stderr', line: 'no newline' }]);
  });
});
