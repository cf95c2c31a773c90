import { describe, expect, it } from 'vitest';
import { stallAfterMsFor, sweepIntervalMsFor } from '../../hub/stall-detector.js';

describe('stall threshold', () => {
  it.each([40, 100, 199, 200, 800, 2_000, 15_000, 120_000])('for a grace of %i ms: at least twice the sweep interval, at most a second', (graceMs) => {
    const stallAfterMs = stallAfterMsFor(graceMs);
    // A sweep timer a little late is never a stall, whatever the grace.
    expect(stallAfterMs).toBeGreaterThanOrEqual(2 * sweepIntervalMsFor(graceMs));
    expect(stallAfterMs).toBeLessThanOrEqual(1000);
    // From 200 ms up, a pause shorter than half the grace is no stall.
    if (graceMs >= 200) expect(stallAfterMs).toBe(Math.min(1000, graceMs / 2));
  });
});
