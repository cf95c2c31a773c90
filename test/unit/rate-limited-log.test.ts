import { describe, expect, it } from 'vitest';
import { RateLimitedLog } from '../../hub/rate-limited-log.js';

function setup(intervalMs = 1000) {
  const clock = { now: 0 };
  const lines: Array<[object, string]> = [];
  const log = new RateLimitedLog((obj, msg) => lines.push([obj, msg]), { intervalMs, nowMs: () => clock.now });
  return { clock, lines, log };
}

describe('rate-limited log', () => {
  it('writes the first line, then at most one a interval, each with the count of lines suppressed before it', () => {
    const { clock, lines, log } = setup();
    for (let i = 0; i < 1000; i++) {
      log.log({ i }, 'refused');
      clock.now += 2.5; // 400 lines a second for 2.5 s
    }
    expect(lines.map(([obj]) => obj)).toEqual([
      { i: 0, suppressed: 0 },
      { i: 400, suppressed: 399 },
      { i: 800, suppressed: 399 },
    ]);
    expect(lines.every(([, msg]) => msg === 'refused')).toBe(true);
    expect(log.suppressed).toBe(199);
  });

  it('writes every line when they come less often than the interval', () => {
    const { clock, lines, log } = setup(100);
    for (let i = 0; i < 5; i++) {
      log.log({}, 'x');
      clock.now += 100;
    }
    expect(lines.map(([obj]) => obj)).toEqual(Array(5).fill({ suppressed: 0 }));
  });

  it('refuses an interval that is not a positive number', () => {
    expect(() => new RateLimitedLog(() => undefined, { intervalMs: 0 })).toThrow(/intervalMs/);
    expect(() => new RateLimitedLog(() => undefined, { intervalMs: Number.NaN })).toThrow(/intervalMs/);
  });
});
