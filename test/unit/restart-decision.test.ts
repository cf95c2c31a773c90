/**
 * The restart decision of a replica under a restart policy: a table of stops, times and policies
 * -> restart at T, or stay down (and why); the backoff doubles from its initial delay up to its
 * cap, and a long enough run starts it over.
 */
import { describe, expect, it } from 'vitest';
import type { RestartPolicy } from '../../shared/container-spec.js';
import { backoffDelayMs, decideRestart, isCrashLooping, streakAt, type RestartDecision, type RestartStreak, type Stop } from '../../agent/reconciler/restart-decision.js';

const policy = (over: Partial<RestartPolicy> = {}): RestartPolicy => ({
  policy: 'always',
  maxAttempts: null,
  backoffInitialMs: 1000,
  backoffMaxMs: 8000,
  resetAfterMs: 60_000,
  ...over,
});
const exit = (exitCode: number | null): Stop => ({ kind: 'exited', exitCode });
const unhealthy: Stop = { kind: 'unhealthy' };
const streak = (restarts: number, startedAtMs: number | null = 100_000): RestartStreak => ({ restarts, startedAtMs });

describe('decideRestart', () => {
  const at = 100_500; // half a second after the last start
  it.each<[string, RestartPolicy, RestartStreak, Stop, RestartDecision]>([
    ['always, first crash: after the initial delay', policy(), streak(0), exit(1), { kind: 'restart', atMs: at + 1000, restarts: 1 }],
    ['always, an exit 0 too', policy(), streak(0), exit(0), { kind: 'restart', atMs: at + 1000, restarts: 1 }],
    ['always, second in a row: doubled', policy(), streak(1), exit(1), { kind: 'restart', atMs: at + 2000, restarts: 2 }],
    ['always, third in a row', policy(), streak(2), exit(137), { kind: 'restart', atMs: at + 4000, restarts: 3 }],
    ['always, capped at max', policy(), streak(3), exit(1), { kind: 'restart', atMs: at + 8000, restarts: 4 }],
    ['always, long past the cap', policy(), streak(500), exit(1), { kind: 'restart', atMs: at + 8000, restarts: 501 }],
    ['on-failure, non-zero: restarts', policy({ policy: 'on-failure' }), streak(0), exit(2), { kind: 'restart', atMs: at + 1000, restarts: 1 }],
    ['on-failure, exit 0: done', policy({ policy: 'on-failure' }), streak(2), exit(0), { kind: 'stay-down', reason: 'completed', restarts: 2 }],
    ['on-failure, unknown exit code: restarts', policy({ policy: 'on-failure' }), streak(0), exit(null), { kind: 'restart', atMs: at + 1000, restarts: 1 }],
    ['on-failure, unhealthy: restarts', policy({ policy: 'on-failure' }), streak(1), unhealthy, { kind: 'restart', atMs: at + 2000, restarts: 2 }],
    ['never: stays down', policy({ policy: 'never' }), streak(0), exit(1), { kind: 'stay-down', reason: 'never', restarts: 0 }],
    ['never, unhealthy: stays as it is', policy({ policy: 'never' }), streak(0), unhealthy, { kind: 'stay-down', reason: 'never', restarts: 0 }],
    ['maxAttempts reached: stays down', policy({ maxAttempts: 3 }), streak(3), exit(1), { kind: 'stay-down', reason: 'max-attempts', restarts: 3 }],
    ['maxAttempts not yet reached', policy({ maxAttempts: 3 }), streak(2), exit(1), { kind: 'restart', atMs: at + 4000, restarts: 3 }],
    ['a run of resetAfter starts the streak over', policy({ maxAttempts: 3 }), streak(3, at - 60_000), exit(1), { kind: 'restart', atMs: at + 1000, restarts: 1 }],
    ['a run just short of resetAfter does not', policy(), streak(3, at - 59_999), exit(1), { kind: 'restart', atMs: at + 8000, restarts: 4 }],
    ['a start the agent did not see: the streak stands', policy(), streak(2, null), exit(1), { kind: 'restart', atMs: at + 4000, restarts: 3 }],
  ])('%s', (_name, p, s, stop, expected) => {
    expect(decideRestart(p, s, stop, at)).toEqual(expected);
  });

  it('gives delays that grow by doubling and stay at the cap', () => {
    const p = policy({ backoffInitialMs: 500, backoffMaxMs: 5000 });
    expect([0, 1, 2, 3, 4, 5, 60].map((n) => backoffDelayMs(p, n))).toEqual([500, 1000, 2000, 4000, 5000, 5000, 5000]);
  });

  it('calls three restarts in a row a crash loop, and a running stretch of resetAfter ends it', () => {
    expect([0, 1, 2, 3, 10].map(isCrashLooping)).toEqual([false, false, false, true, true]);
    const p = policy();
    expect(streakAt(p, streak(5, 0), 59_999).restarts).toBe(5);
    expect(streakAt(p, streak(5, 0), 60_000).restarts).toBe(0);
    expect(streakAt(p, streak(5, null), 10 ** 9).restarts).toBe(5);
  });

  it('follows a crash loop through a whole table of stops: the delays grow, then cap', () => {
    const p = policy({ backoffInitialMs: 1000, backoffMaxMs: 4000 });
    let s = streak(0, 0);
    let nowMs = 10;
    const delays: number[] = [];
    for (let i = 0; i < 6; i++) {
      const d = decideRestart(p, s, exit(1), nowMs);
      if (d.kind !== 'restart') throw new Error('expected a restart');
      delays.push(d.atMs - nowMs);
      s = { restarts: d.restarts, startedAtMs: d.atMs };
      nowMs = d.atMs + 10; // crashes 10 ms after each start
    }
    expect(delays).toEqual([1000, 2000, 4000, 4000, 4000, 4000]);
    expect(isCrashLooping(s.restarts)).toBe(true);
  });
});
