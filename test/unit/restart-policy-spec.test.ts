/** The restart field of a spec: absent unless given, the documented defaults filled in, every bad value refused naming its field. */
import { describe, expect, it } from 'vitest';
import { containerSpecHash, containerSpecOf } from '../../shared/container-spec.js';
import { validateServiceSpec } from '../../hub/spec/service-spec.js';
import { errorsOf, normalize } from '../helpers/spec-validation.js';

describe('restart policy in a spec', () => {
  it('is absent when not given, so a container without one keeps its hash', () => {
    const spec = normalize({ image: 'nginx:1' });
    expect(spec.restart).toBeUndefined();
    expect('restart' in containerSpecOf(spec)).toBe(false);
    const withPolicy = normalize({ image: 'nginx:1', restart: {} });
    expect(containerSpecHash(containerSpecOf(withPolicy))).not.toBe(containerSpecHash(containerSpecOf(spec)));
  });

  it('fills in the documented defaults: always, unlimited, 1s doubling to 5m, reset after 10m', () => {
    expect(normalize({ image: 'nginx:1', restart: {} }).restart).toEqual({
      policy: 'always',
      maxAttempts: null,
      backoffInitialMs: 1000,
      backoffMaxMs: 300_000,
      resetAfterMs: 600_000,
    });
  });

  it('keeps what a partial block gives', () => {
    const spec = normalize({ image: 'nginx:1', restart: { policy: 'on-failure', maxAttempts: 5, backoff: { initial: '250ms' }, resetAfter: '30s' } });
    expect(spec.restart).toEqual({ policy: 'on-failure', maxAttempts: 5, backoffInitialMs: 250, backoffMaxMs: 300_000, resetAfterMs: 30_000 });
    expect(normalize({ image: 'nginx:1', restart: { policy: 'never' } }).restart).toMatchObject({ policy: 'never', maxAttempts: null });
  });

  it.each([
    [{ policy: 'sometimes' }, 'restart.policy'],
    [{ maxAttempts: 0 }, 'restart.maxAttempts'],
    [{ maxAttempts: 1.5 }, 'restart.maxAttempts'],
    [{ policy: 'never', maxAttempts: 3 }, 'restart.maxAttempts'],
    [{ backoff: { initial: 'soon' } }, 'restart.backoff.initial'],
    [{ backoff: { initial: '50ms' } }, 'restart.backoff.initial'],
    [{ backoff: { max: '2d' } }, 'restart.backoff.max'],
    [{ backoff: { initial: '10s', max: '5s' } }, 'restart.backoff.max'],
    [{ backoff: { initial: '1s', jitter: true } }, 'restart.backoff.jitter'],
    [{ resetAfter: '500ms' }, 'restart.resetAfter'],
    [{ resetAfter: '' }, 'restart.resetAfter'],
    [{ delay: '5s' }, 'restart.delay'],
  ])('refuses %j naming %s', (restart, field) => {
    expect(new Set(errorsOf({ image: 'nginx:1', restart }).map((e) => e.path))).toEqual(new Set([field]));
  });

  it('refuses a restart that is no object', () => {
    expect(validateServiceSpec({ image: 'nginx:1', restart: 'always' }).ok).toBe(false);
    expect(errorsOf({ image: 'nginx:1', restart: 'always' }).map((e) => e.path)).toEqual(['restart']);
  });
});
