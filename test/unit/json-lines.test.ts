/** JsonLineReader keeps at most one line's worth of a stream: an engine that never sends a newline cannot grow it without end. */
import { describe, expect, it } from 'vitest';
import { JsonLineReader } from '../../agent/runtime/docker/json-lines.js';

describe('JsonLineReader', () => {
  it('drops a line longer than its bound as a bad line, and reads the lines after it', () => {
    const reader = new JsonLineReader(16);
    const values: unknown[] = [];
    const bad: string[] = [];
    const push = (chunk: string) => reader.push(chunk, (v) => values.push(v), (l) => bad.push(l));
    push('{"a":1}\n');
    push('x'.repeat(10));
    expect(reader.pending).toHaveLength(10);
    push('x'.repeat(10));
    expect(bad).toEqual(['x'.repeat(20)]);
    expect(reader.pending).toBe('');
    push('yy\n{"b":2}\n');
    expect(values).toEqual([{ a: 1 }, { b: 2 }]);
    expect(bad).toEqual(['x'.repeat(20), 'yy']);
  });
});
