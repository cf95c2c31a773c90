import { describe, expect, it } from 'vitest';
import { formatDuration, parseDuration } from '../../hub/spec/duration.js';

describe('parseDuration', () => {
  it.each([
    ['0s', 0],
    ['500ms', 500],
    ['5s', 5000],
    ['1m', 60_000],
    ['90s', 90_000],
    ['1h', 3_600_000],
    ['24h', 86_400_000],
  ])('reads %s as %d ms', (text, ms) => {
    expect(parseDuration(text)).toEqual({ ok: true, ms });
  });

  it.each(['', '5', 's', '1m30s', '1.5s', '-1s', '+1s', ' 5s', '5s ', '5 s', '5S', '5sec', '1d', '0x10s', '1e3ms'])('refuses %j with a message naming the form', (text) => {
    const parsed = parseDuration(text);
    expect(parsed.ok).toBe(false);
    if (!parsed.ok) expect(parsed.error).toContain('an integer and one unit');
  });

  it('refuses a duration too long to count in milliseconds exactly', () => {
    const parsed = parseDuration('999999999999999h');
    expect(parsed).toEqual({ ok: false, error: '"999999999999999h" is too long a duration' });
  });
});

describe('formatDuration', () => {
  it.each([
    [0, '0ms'],
    [1500, '1500ms'],
    [2000, '2s'],
    [90_000, '90s'],
    [120_000, '2m'],
    [7_200_000, '2h'],
  ])('writes %d ms as %s', (ms, text) => {
    expect(formatDuration(ms)).toBe(text);
    expect(parseDuration(text)).toEqual({ ok: true, ms });
  });
});
