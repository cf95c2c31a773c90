import { describe, it, expect } from 'vitest';
import { Backoff } from '../../shared/backoff.js';

function delays(b: Backoff, n: number): number[] {
  return Array.from({ length: n }, () => b.nextDelayMs());
}

describe('Backoff', () => {
  it('with random()=1, gives the full window: base, doubling, capped at capMs', () => {
    const b = new Backoff({ baseMs: 500, capMs: 10_000, random: () => 1 });
    expect(delays(b, 8)).toEqual([500, 1000, 2000, 4000, 8000, 10_000, 10_000, 10_000]);
  });

  it('stays at the cap (a finite number) long after the exponent would overflow', () => {
    const b = new Backoff({ baseMs: 500, capMs: 30_000, random: () => 1 });
    const all = delays(b, 2000);
    expect(all.slice(-10)).toEqual(Array(10).fill(30_000));
    expect(all.every(Number.isFinite)).toBe(true);
  });

  it('with random()=0, always gives 0', () => {
    const b = new Backoff({ baseMs: 500, capMs: 10_000, random: () => 0 });
    expect(delays(b, 50)).toEqual(Array(50).fill(0));
  });

  it('scales the window by random() (full jitter) and gives whole milliseconds', () => {
    const b = new Backoff({ baseMs: 500, capMs: 10_000, random: () => 0.5 });
    expect(delays(b, 6)).toEqual([250, 500, 1000, 2000, 4000, 5000]);
    const odd = new Backoff({ baseMs: 333, capMs: 10_000, random: () => 0.3 });
    for (const d of delays(odd, 10)) expect(Number.isInteger(d)).toBe(true);
  });

  it('counts attempts, and reset() starts over from the base delay', () => {
    const b = new Backoff({ baseMs: 500, capMs: 10_000, random: () => 1 });
    expect(b.attempts).toBe(0);
    expect(delays(b, 4)).toEqual([500, 1000, 2000, 4000]);
    expect(b.attempts).toBe(4);
    b.reset();
    expect(b.attempts).toBe(0);
    expect(delays(b, 3)).toEqual([500, 1000, 2000]);
    expect(b.attempts).toBe(3);
  });

  it('never exceeds the cap nor goes below 0 over 100 attempts with Math.random', () => {
    const b = new Backoff({ baseMs: 500, capMs: 5000 });
    const all = delays(b, 100);
    for (const d of all) {
      expect(Number.isInteger(d)).toBe(true);
      expect(d).toBeGreaterThanOrEqual(0);
      expect(d).toBeLessThanOrEqual(5000);
    }
    // Jitter: 100 draws from [0, 5000) are not all the same.
    expect(new Set(all).size).toBeGreaterThan(1);
  });

  it('uses a cap below the base as the ceiling from the first attempt', () => {
    const b = new Backoff({ baseMs: 1000, capMs: 300, random: () => 1 });
    expect(delays(b, 3)).toEqual([300, 300, 300]);
  });
});
