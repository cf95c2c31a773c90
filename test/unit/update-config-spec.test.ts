import { describe, expect, it } from 'vitest';
import { DEFAULT_UPDATE_CONFIG, updateConfigOf } from '../../hub/spec/update-config.js';
import { errorsOf, normalize } from '../helpers/spec-validation.js';

describe('update settings in a spec', () => {
  it('are absent when not given, and read as the documented defaults', () => {
    const spec = normalize({ image: 'nginx:1' });
    expect(spec.update).toBeUndefined();
    expect(updateConfigOf(spec)).toEqual({
      parallelism: 1,
      order: 'stop-first',
      delayMs: 0,
      monitorMs: 5000,
      maxFailureRatio: 0,
      failureAction: 'rollback',
    });
    expect(updateConfigOf(spec)).toBe(DEFAULT_UPDATE_CONFIG);
  });

  it('fill in what is left out of a partial block', () => {
    const spec = normalize({ image: 'nginx:1', update: { parallelism: 3, order: 'start-first', monitor: '30s' } });
    expect(spec.update).toEqual({ ...DEFAULT_UPDATE_CONFIG, parallelism: 3, order: 'start-first', monitorMs: 30_000 });
  });

  it.each([
    [{ parallelism: 0 }, 'update.parallelism'],
    [{ order: 'sideways' }, 'update.order'],
    [{ failureAction: 'explode' }, 'update.failureAction'],
    [{ maxFailureRatio: 1.5 }, 'update.maxFailureRatio'],
    [{ delay: '5 seconds' }, 'update.delay'],
    [{ monitor: '2d' }, 'update.monitor'],
    [{ monitor: '25h' }, 'update.monitor'],
    [{ surprise: true }, 'update.surprise'],
  ])('refuse %j naming %s', (update, field) => {
    expect(new Set(errorsOf({ image: 'nginx:1', update }).map((e) => e.path))).toEqual(new Set([field]));
  });
});
