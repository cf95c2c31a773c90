/** The tail of a crash-looping container's output: the engine's log frames read back, the last lines kept, clipped. */
import { describe, expect, it } from 'vitest';
import { DockerLogTail } from '../../agent/runtime/docker/log-frames.js';
import { tailOf } from '../../agent/runtime/output-tail.js';

function frame(stream: 1 | 2, text: string): Buffer {
  const payload = Buffer.from(text);
  const header = Buffer.alloc(8);
  header[0] = stream;
  header.writeUInt32BE(payload.length, 4);
  return Buffer.concat([header, payload]);
}

describe('tailOf', () => {
  it.each([
    ['a\nb\nc\n', 2, 'b\nc\n'],
    ['a\nb\nc', 2, 'b\nc'],
    ['boom\n', 20, 'boom\n'],
    ['one line', 1, 'one line'],
    ['a\nb\n', 5, 'a\nb\n'],
  ])('keeps the last lines of %j (%i)', (text, lines, expected) => {
    expect(tailOf(text, lines, 1024)).toBe(expected);
  });

  it('clips to the last bytes, never splitting a character', () => {
    expect(tailOf('x'.repeat(2000), 20, 1024)).toBe('x'.repeat(1024));
    const clipped = tailOf(`a${'é'.repeat(600)}`, 1, 1023);
    expect(Buffer.byteLength(clipped)).toBeLessThanOrEqual(1023);
    expect(clipped).toBe('é'.repeat(511));
  });
});

describe('DockerLogTail', () => {
  it('reads stdout and stderr frames, whatever the chunks, in order', () => {
    const bytes = Buffer.concat([frame(1, 'start\n'), frame(2, 'boom\n'), frame(1, 'exit\n')]);
    const tail = new DockerLogTail();
    for (let i = 0; i < bytes.length; i += 3) tail.push(bytes.subarray(i, i + 3));
    expect(tail.tail(20, 1024)).toBe('start\nboom\nexit\n');
    expect(tail.tail(1, 1024)).toBe('exit\n');
  });

  it('reads a TTY container raw, and says null for no output', () => {
    const raw = new DockerLogTail();
    raw.push(Buffer.from('plain text output\n'));
    expect(raw.tail(20, 1024)).toBe('plain text output\n');
    expect(new DockerLogTail().tail(20, 1024)).toBeNull();
  });

  it('keeps only the end of a long output while reading', () => {
    const tail = new DockerLogTail(1000);
    for (let i = 0; i < 1000; i++) tail.push(frame(1, `line ${i}\n`));
    expect(tail.tail(2, 1024)).toBe('line 998\nline 999\n');
  });
});
