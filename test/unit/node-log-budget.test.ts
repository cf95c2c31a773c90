import { describe, expect, it } from 'vitest';
import { NodeLogBudget } from '../../hub/node-log-budget.js';

describe('NodeLogBudget', () => {
  it('writes a node its lines per window, counts the rest, and says how many were dropped with the next', () => {
    let now = 0;
    const budget = new NodeLogBudget({ linesPerWindow: 3, windowMs: 1000, nowMs: () => now });
    expect([budget.take('a'), budget.take('a'), budget.take('a')]).toEqual([0, 0, 0]);
    expect([budget.take('a'), budget.take('a')]).toEqual([null, null]);
    // Another node has its own budget.
    expect(budget.take('b')).toBe(0);
    now = 999;
    expect(budget.take('a')).toBeNull();
    now = 1000;
    expect(budget.take('a')).toBe(3);
    expect(budget.take('a')).toBe(0);
  });

  it('holds no entry for the nodes whose window passed with nothing dropped, and keeps the count of those that have some', () => {
    let now = 0;
    const budget = new NodeLogBudget({ linesPerWindow: 2, windowMs: 1000, nowMs: () => now });
    for (let i = 0; i < 1000; i++) expect(budget.take(`node-${i}`)).toBe(0);
    // One node went over its budget: two lines dropped, to be told with its next line.
    expect([budget.take('node-7'), budget.take('node-7'), budget.take('node-7')]).toEqual([0, null, null]);
    expect(budget.size).toBe(1000);
    now = 1500;
    expect(budget.take('node-1')).toBe(0);
    // node-1's new window and node-7's untold count are all that is left.
    expect(budget.size).toBe(2);
    expect(budget.take('node-7')).toBe(2);
    expect(budget.take('node-500')).toBe(0);
    expect(budget.size).toBe(3);
  });

  it('drops the entries of a fleet gone quiet a window after their lines, with no further line to do it', async () => {
    const budget = new NodeLogBudget({ linesPerWindow: 2, windowMs: 40 });
    for (let i = 0; i < 1000; i++) budget.take(`node-${i}`);
    expect([budget.take('node-7'), budget.take('node-7'), budget.take('node-7')]).toEqual([0, null, null]);
    expect(budget.size).toBe(1000);
    await new Promise((r) => setTimeout(r, 150));
    // node-7's untold count stays, to be told with its next line.
    expect(budget.size).toBe(1);
    expect(budget.take('node-7')).toBe(2);
  });

  it('holds no timer once closed', async () => {
    const budget = new NodeLogBudget({ linesPerWindow: 2, windowMs: 40 });
    budget.take('node-1');
    budget.close();
    await new Promise((r) => setTimeout(r, 120));
    // The sweep never ran: the entry is still held (a closed budget is dropped whole).
    expect(budget.size).toBe(1);
  });

  it('answers as a plain window per node would, whatever the order of lines and nodes', () => {
    // The reference: one window object per node, as the budget was first written.
    const model = (linesPerWindow: number, windowMs: number) => {
      const byNode = new Map<string, { startMs: number; lines: number; suppressed: number }>();
      const take = (nodeId: string, now: number): number | null => {
        let w = byNode.get(nodeId);
        if (!w) byNode.set(nodeId, (w = { startMs: now, lines: 0, suppressed: 0 }));
        if (now - w.startMs >= windowMs) {
          w.startMs = now;
          w.lines = 0;
        }
        if (w.lines >= linesPerWindow) {
          w.suppressed++;
          return null;
        }
        w.lines++;
        const suppressed = w.suppressed;
        w.suppressed = 0;
        return suppressed;
      };
      return { take, forget: (nodeId: string) => byNode.delete(nodeId) };
    };
    let seed = 7;
    const random = () => ((seed = (seed * 1103515245 + 12345) % 2 ** 31) / 2 ** 31);
    for (const linesPerWindow of [1, 2, 3]) {
      let now = 0;
      const budget = new NodeLogBudget({ linesPerWindow, windowMs: 100, nowMs: () => now });
      const reference = model(linesPerWindow, 100);
      for (let i = 0; i < 5000; i++) {
        now += Math.floor(random() * 40);
        const nodeId = `n${Math.floor(random() * 4)}`;
        if (random() < 0.01) {
          budget.forget(nodeId);
          reference.forget(nodeId);
          continue;
        }
        expect(budget.take(nodeId), `line ${i} of ${nodeId} at ${now}`).toBe(reference.take(nodeId, now));
      }
    }
  });

  it('keeps its windows across a clock that runs for weeks, forgetting only windows that have passed', () => {
    let now = 0.25;
    const budget = new NodeLogBudget({ linesPerWindow: 1, windowMs: 1000, nowMs: () => now });
    now = 2 ** 30 - 5000;
    expect(budget.take('old')).toBe(0);
    now = 2 ** 30 - 200.5;
    expect(budget.take('recent')).toBe(0);
    // Past the small integers' range from the first reading: the window of 'recent' goes on.
    now = 2 ** 30 + 300;
    expect(budget.take('fresh')).toBe(0);
    expect(budget.take('recent')).toBeNull();
    expect(budget.take('old')).toBe(0);
    now = 2 ** 31 + 5000;
    expect(budget.take('fresh')).toBe(0);
    expect(budget.take('recent')).toBe(1);
    expect(budget.take('fresh')).toBeNull();
  });

  it('refuses a budget that writes nothing', () => {
    expect(() => new NodeLogBudget({ linesPerWindow: 0, windowMs: 1000 })).toThrow(RangeError);
    expect(() => new NodeLogBudget({ linesPerWindow: 1, windowMs: 0 })).toThrow(RangeError);
  });
});
