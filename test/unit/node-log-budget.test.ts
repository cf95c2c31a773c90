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

  it('refuses a budget that writes nothing', () => {
    expect(() => new NodeLogBudget({ linesPerWindow: 0, windowMs: 1000 })).toThrow(RangeError);
    expect(() => new NodeLogBudget({ linesPerWindow: 1, windowMs: 0 })).toThrow(RangeError);
  });
});
