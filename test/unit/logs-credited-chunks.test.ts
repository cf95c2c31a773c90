import { describe, expect, it } from 'vitest';
import { CreditedChunks } from '../../agent/logs/credited-chunks.js';
import { LOG_LIMITS, type LogLine } from '../../shared/protocol.js';

/** A line whose JSON text (what a chunk counts) is `bytes` long: its quotes included. */
const line = (i: number, bytes = 100): LogLine => ({ stream: 'stdout', line: `${i}`.padEnd(bytes - 2, '.') });

function setup(credit: number) {
  const sent: LogLine[][] = [];
  const source = { paused: false, pause() { this.paused = true; }, resume() { this.paused = false; } };
  let ended = 0;
  const chunks = new CreditedChunks({ credit, source, sendChunk: (l) => sent.push(l), sendEnd: () => ended++, maxChunkBytes: 1000, lineOverheadBytes: 0 });
  return { sent, source, chunks, ended: () => ended };
}

describe('credited log chunks', () => {
  it('bounds a chunk by the text the hub will write for it, not the raw bytes: empty lines and escaped control characters', () => {
    // What the hub writes per line: its JSON text inside an envelope naming replica, node and stream.
    const hubText = (l: LogLine) => JSON.stringify({ replica: 'web.0123456789', node: '3a4fe3a9-3537-40fd-b961-312af976270b', stream: l.stream, line: l.line }).length + 1;
    for (const text of ['', '\u0001'.repeat(1000)]) {
      const sent: LogLine[][] = [];
      const chunks = new CreditedChunks({ credit: 1_000_000, source: { pause() {}, resume() {} }, sendChunk: (l) => sent.push(l), sendEnd: () => undefined });
      chunks.push(Array.from({ length: 20_000 }, () => ({ stream: 'stdout' as const, line: text })));
      chunks.end();
      expect(sent.flat()).toHaveLength(20_000);
      for (const chunk of sent) expect(chunk.reduce((n, l) => n + hubText(l), 0)).toBeLessThanOrEqual(LOG_LIMITS.maxChunkBytes);
    }
  });

  it('sends lines at once while credit lasts', () => {
    const { sent, chunks, source } = setup(2);
    chunks.push([line(1)]);
    chunks.push([line(2)]);
    expect(sent.map((c) => c.length)).toEqual([1, 1]);
    expect(chunks.creditLeft).toBe(0);
    expect(source.paused).toBe(false);
  });

  it('never sends more chunks than granted, and pauses the source with a full chunk waiting', () => {
    const { sent, chunks, source } = setup(1);
    chunks.push([line(0)]);
    expect(sent).toHaveLength(1);
    // Out of credit: lines fill a chunk of at most maxChunkBytes, then the source pauses.
    for (let i = 1; i <= 9; i++) chunks.push([line(i)]);
    expect(source.paused).toBe(false);
    chunks.push([line(10), line(11)]);
    expect(source.paused).toBe(true);
    expect(sent).toHaveLength(1);
    expect(chunks.pauses).toBe(1);
    expect(chunks.heldBytes).toBeLessThanOrEqual(2 * 1000);
    chunks.grant(1);
    expect(sent).toHaveLength(2);
    expect(sent[1]!.map((l) => l.line.split('.')[0])).toEqual(['1', '2', '3', '4', '5', '6', '7', '8', '9', '10']);
    // The rest is less than a chunk: the source reads again.
    expect(source.paused).toBe(false);
    chunks.grant(1);
    expect(sent[2]!.map((l) => l.line.split('.')[0])).toEqual(['11']);
  });

  it('holds at most about two chunks however much the source pushed before it paused', () => {
    const { chunks, source, sent } = setup(0);
    // A source that honours pause, handing over reads of 7 lines (the engine's reads hold many).
    let pushed = 0;
    for (let i = 0; i < 1000 && !source.paused; i++) chunks.push(Array.from({ length: 7 }, () => line(pushed++)));
    expect(source.paused).toBe(true);
    expect(chunks.maxHeldBytes).toBeLessThanOrEqual(2 * 1000);
    // Each grant lets one chunk out and the source reads on until a chunk is full again.
    for (let round = 0; round < 20; round++) {
      chunks.grant(1);
      for (let i = 0; i < 1000 && !source.paused; i++) chunks.push(Array.from({ length: 7 }, () => line(pushed++)));
    }
    expect(sent).toHaveLength(20);
    expect(chunks.maxHeldBytes).toBeLessThanOrEqual(2 * 1000);
    // Nothing lost nor reordered.
    const out = sent.flat().map((l) => Number(l.line.split('.')[0]));
    expect(out).toEqual(out.map((_, i) => i));
  });

  it('sends the end only after the last lines, and only within credit', () => {
    const { sent, chunks, ended } = setup(0);
    chunks.push([line(1), line(2)]);
    chunks.end();
    expect(ended()).toBe(0);
    chunks.grant(1);
    expect(sent).toHaveLength(1);
    expect(ended()).toBe(1);
  });

  it('ends at once when nothing is left', () => {
    const { chunks, ended, sent } = setup(4);
    chunks.end();
    expect(sent).toHaveLength(0);
    expect(ended()).toBe(1);
  });
});
