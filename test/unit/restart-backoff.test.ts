import { describe, expect, it } from 'vitest';
import { QUICK_SWAP_ATTEMPTS, RestartBackoff } from '../../agent/reconciler/restart-backoff.js';
import { MAX_REPORT_ERROR_LENGTH } from '../../shared/protocol.js';

/** A clock the test moves by hand, and a backoff whose jitter always takes the whole window. */
function setup(opts: { swapRetryDelayMs?: number } = {}) {
  const clock = { t: 1_000_000, nowMs: () => clock.t };
  const backoff = new RestartBackoff({ clock, baseMs: 1_000, capMs: 8_000, random: () => 1, ...opts });
  return { clock, backoff };
}

describe('RestartBackoff', () => {
  it('holds a failed replica back until its delay has passed, doubling each time up to the cap', () => {
    const { clock, backoff } = setup();
    const delays: number[] = [];
    for (let i = 0; i < 6; i++) {
      delays.push(backoff.replicaFailed('r1', 'start failed: boom'));
      expect(backoff.replicasBackingOff(clock.t)).toEqual(new Set(['r1']));
      clock.t += delays.at(-1)! - 1;
      expect(backoff.replicasBackingOff(clock.t)).toEqual(new Set(['r1']));
      clock.t += 1;
      expect(backoff.replicasBackingOff(clock.t)).toEqual(new Set());
    }
    expect(delays).toEqual([1_000, 2_000, 4_000, 8_000, 8_000, 8_000]);
    // Due, but still failed: its report says so until a step works.
    expect(backoff.hasFailed('r1')).toBe(true);
    expect(backoff.replicaError('r1')).toBe('start failed: boom');
  });

  it('starts over after a success', () => {
    const { clock, backoff } = setup();
    backoff.replicaFailed('r1', 'x');
    backoff.replicaFailed('r1', 'x');
    backoff.replicaSucceeded('r1');
    expect(backoff.hasFailed('r1')).toBe(false);
    expect(backoff.replicasBackingOff(clock.t)).toEqual(new Set());
    expect(backoff.replicaFailed('r1', 'x')).toBe(1_000);
  });

  it('backs a container off on its own, holding back nothing of its replica', () => {
    const { clock, backoff } = setup();
    expect(backoff.containerFailed('c1', 'remove failed')).toBe(1_000);
    expect(backoff.containersBackingOff(clock.t)).toEqual(new Set(['c1']));
    expect(backoff.replicasBackingOff(clock.t)).toEqual(new Set());
    expect(backoff.containerError('c1')).toBe('remove failed');
    backoff.containerSucceeded('c1');
    expect(backoff.containersBackingOff(clock.t)).toEqual(new Set());
  });

  it('waits the long swap delay once a few swaps at one spec failed, and tries another spec at once', () => {
    const { clock, backoff } = setup({ swapRetryDelayMs: 60_000 });
    for (let i = 1; i < QUICK_SWAP_ATTEMPTS; i++) {
      const failed = backoff.swapFailed('r1', 'spec-a', 'start failed');
      expect(failed).toEqual({ error: 'start failed', retryInMs: 1_000 * 2 ** (i - 1), attempts: i });
    }
    const slow = backoff.swapFailed('r1', 'spec-a', 'start failed');
    expect(slow.retryInMs).toBe(60_000);
    expect(slow.attempts).toBe(QUICK_SWAP_ATTEMPTS);
    expect(slow.error).toMatch(/^start failed; the old version keeps serving; tried again in 60 s/);
    expect(backoff.replicaError('r1')).toBe(slow.error);
    clock.t += 59_999;
    expect(backoff.replicasBackingOff(clock.t)).toEqual(new Set(['r1']));
    // Another spec counts its swaps from none.
    expect(backoff.swapFailed('r1', 'spec-b', 'start failed').attempts).toBe(1);
  });

  it('names the earliest retry due from the time a pass planned', () => {
    const { clock, backoff } = setup();
    expect(backoff.earliestRetryMs(clock.t)).toBeNull();
    const planAtMs = clock.t;
    backoff.replicaFailed('r1', 'x'); // due at +1 s
    backoff.replicaFailed('r2', 'x');
    backoff.replicaFailed('r2', 'x'); // due at +2 s
    clock.t += 500;
    backoff.containerFailed('c1', 'x'); // due at +1.5 s
    expect(backoff.earliestRetryMs(planAtMs)).toBe(planAtMs + 1_000);
    // A retry due before the pass planned was planned by it.
    expect(backoff.earliestRetryMs(planAtMs + 1_001)).toBe(planAtMs + 1_500);
  });

  it('forgets replicas and containers the node no longer has', () => {
    const { clock, backoff } = setup();
    backoff.replicaFailed('gone', 'x');
    backoff.replicaFailed('kept', 'x');
    backoff.swapFailed('unassigned', 'spec-a', 'x');
    backoff.containerFailed('c-gone', 'x');
    backoff.containerFailed('c-kept', 'x');
    backoff.retain(new Set(['kept', 'unassigned']), new Set(['kept']), new Set(['c-kept']));
    expect(backoff.replicasBackingOff(clock.t)).toEqual(new Set(['kept', 'unassigned']));
    expect(backoff.containersBackingOff(clock.t)).toEqual(new Set(['c-kept']));
    // Its swap attempts went with its assignment: the next failure at that spec is the first.
    expect(backoff.swapFailed('unassigned', 'spec-a', 'x').attempts).toBe(1);
  });

  it('keeps an error as short as a report carries', () => {
    const { backoff } = setup();
    backoff.replicaFailed('r1', 'e'.repeat(MAX_REPORT_ERROR_LENGTH + 100));
    expect(backoff.replicaError('r1')).toHaveLength(MAX_REPORT_ERROR_LENGTH);
  });
});
