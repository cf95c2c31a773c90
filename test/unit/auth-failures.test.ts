import { describe, expect, it } from 'vitest';
import { AuthFailures, DEFAULT_AUTH_FAILURE_LIMITS, type AuthFailureLimits } from '../../hub/auth/auth-failures.js';

function throttle(limits: Partial<AuthFailureLimits> = {}) {
  const clock = { ms: 1_000_000 };
  const failures = new AuthFailures({ ...DEFAULT_AUTH_FAILURE_LIMITS, ...limits }, () => clock.ms);
  return { clock, failures };
}

const repeat = (n: number, f: () => unknown) => Array.from({ length: n }, f);

describe('AuthFailures', () => {
  it('answers an address its allowance of failures at once, then slowly, then refuses it with Retry-After', () => {
    const { failures } = throttle();
    expect(repeat(10, () => failures.failed('203.0.113.7', 'api_token'))).toEqual(repeat(10, () => ({ action: 'answer' })));
    expect(repeat(10, () => failures.failed('203.0.113.7', 'api_token'))).toEqual(repeat(10, () => ({ action: 'slow', delayMs: 500 })));
    expect(failures.failed('203.0.113.7', 'api_token')).toEqual({ action: 'refuse', retryAfterS: 60, burstStarted: true });
    // The burst is logged once: later refusals do not start one.
    expect(failures.failed('203.0.113.7', 'join_token')).toEqual({ action: 'refuse', retryAfterS: 60, burstStarted: false });
    expect(failures.failuresByKind).toEqual({ api_token: 21, join_token: 1, node_credential: 0 });
    expect(failures.refusedByKind).toEqual({ api_token: 1, join_token: 1, node_credential: 0 });
  });

  it('shortens Retry-After as the refusal runs out, then gives the address its allowance again', () => {
    const { clock, failures } = throttle({ allowance: 2, slowedFailures: 0, refuseForMs: 30_000 });
    repeat(2, () => failures.failed('203.0.113.7', 'node_credential'));
    expect(failures.failed('203.0.113.7', 'node_credential')).toMatchObject({ action: 'refuse', retryAfterS: 30 });
    clock.ms += 20_500;
    expect(failures.failed('203.0.113.7', 'node_credential')).toMatchObject({ action: 'refuse', retryAfterS: 10 });
    clock.ms += 9_500;
    expect(failures.failed('203.0.113.7', 'node_credential')).toEqual({ action: 'answer' });
    expect(failures.failed('203.0.113.7', 'node_credential')).toEqual({ action: 'answer' });
    expect(failures.failed('203.0.113.7', 'node_credential')).toMatchObject({ action: 'refuse', burstStarted: true });
  });

  it('counts failures over a window: a quiet address starts again', () => {
    const { clock, failures } = throttle({ allowance: 3 });
    repeat(3, () => failures.failed('203.0.113.7', 'api_token'));
    clock.ms += 60_000;
    expect(repeat(3, () => failures.failed('203.0.113.7', 'api_token'))).toEqual(repeat(3, () => ({ action: 'answer' })));
    expect(failures.failed('203.0.113.7', 'api_token')).toMatchObject({ action: 'slow' });
  });

  it('keeps addresses apart, and counts an IPv6 /64 (or an IPv4-mapped address) as one', () => {
    const { failures } = throttle({ allowance: 1, slowedFailures: 0 });
    failures.failed('2001:db8:1:2::1', 'api_token');
    expect(failures.failed('2001:db8:1:2:ffff::9', 'api_token')).toMatchObject({ action: 'refuse' });
    expect(failures.failed('2001:db8:1:3::1', 'api_token')).toEqual({ action: 'answer' });
    failures.failed('::ffff:198.51.100.1', 'api_token');
    expect(failures.failed('198.51.100.1', 'api_token')).toMatchObject({ action: 'refuse' });
    expect(failures.failed('198.51.100.2', 'api_token')).toEqual({ action: 'answer' });
  });

  it('never remembers more than maxAddresses, forgetting the oldest first', () => {
    const { failures } = throttle({ allowance: 1, slowedFailures: 0, maxAddresses: 100 });
    failures.failed('10.0.0.1', 'api_token');
    for (let i = 0; i < 1000; i++) failures.failed(`10.1.${i >> 8}.${i & 255}`, 'api_token');
    expect(failures.addressCount).toBe(100);
    // The first address was forgotten: its next failure is its first again.
    expect(failures.failed('10.0.0.1', 'api_token')).toEqual({ action: 'answer' });
    // The newest are still counted.
    expect(failures.failed('10.1.3.231', 'api_token')).toMatchObject({ action: 'refuse' });
  });

  it('forgets addresses whose window and refusal are over', () => {
    const { clock, failures } = throttle({ allowance: 1, slowedFailures: 0, refuseForMs: 120_000 });
    for (let i = 0; i < 50; i++) failures.failed(`10.2.0.${i}`, 'join_token');
    repeat(2, () => failures.failed('10.3.0.1', 'join_token'));
    expect(failures.addressCount).toBe(51);
    clock.ms += 60_000;
    failures.failed('10.4.0.1', 'join_token');
    // The windows of the 50 are over; the refused address is kept until its refusal ends.
    expect(failures.addressCount).toBe(2);
    expect(failures.failed('10.3.0.1', 'join_token')).toMatchObject({ action: 'refuse', retryAfterS: 60 });
    clock.ms += 60_000;
    failures.failed('10.5.0.1', 'join_token');
    expect(failures.addressCount).toBe(1);
  });

  it('keeps its bound and its counts as addresses come and go many times over', () => {
    const { clock, failures } = throttle({ allowance: 1, slowedFailures: 0, maxAddresses: 7 });
    for (let round = 0; round < 20; round++) {
      for (let i = 0; i < 5 + (round % 4); i++) failures.failed(`10.9.${round}.${i}`, 'api_token');
      expect(failures.addressCount).toBeLessThanOrEqual(7);
      // The newest address of the round is still counted: its second failure starts its refusal.
      expect(failures.failed(`10.9.${round}.4`, 'api_token')).toMatchObject({ action: 'refuse', burstStarted: true });
      clock.ms += round % 2 === 0 ? 1_000 : 120_000;
    }
  });

  it('tells of each burst once, when its refusal starts', () => {
    const clock = { ms: 0 };
    const bursts: unknown[] = [];
    const failures = new AuthFailures({ ...DEFAULT_AUTH_FAILURE_LIMITS, allowance: 1, slowedFailures: 1 }, () => clock.ms, (burst) => bursts.push(burst));
    repeat(50, () => failures.failed('2001:db8::7', 'join_token'));
    expect(bursts).toEqual([{ address: '2001:db8:0:0::/64', kind: 'join_token', failures: 3, refuseForMs: 60_000 }]);
    clock.ms += 60_000;
    repeat(3, () => failures.failed('2001:db8::7', 'join_token'));
    expect(bursts).toHaveLength(2);
  });

  it('refuses limits that are not numbers >= 0', () => {
    expect(() => throttle({ allowance: -1 })).toThrow(/allowance/);
    expect(() => throttle({ maxAddresses: 0 })).toThrow(/maxAddresses/);
  });
});
