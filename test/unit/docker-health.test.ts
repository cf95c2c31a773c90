import { describe, expect, it } from 'vitest';
import { dockerHealthConfigOf, engineHealthOf } from '../../agent/runtime/docker/engine-health-checks.js';
import { healthCheckLabel, healthCheckOfLabel } from '../../agent/runtime/health-check-label.js';
import { HEALTH_OUTPUT_MAX_LENGTH } from '../../shared/container-spec.js';
import { execCheck } from '../helpers/health-checks.js';

const exec = execCheck({ intervalMs: 500, timeoutMs: 2_000, retries: 3, startPeriodMs: 1_000 });

describe('the engine runs exec checks', () => {
  it('gives the engine an exec check as its HEALTHCHECK, durations in nanoseconds', () => {
    expect(dockerHealthConfigOf(exec)).toEqual({
      Test: ['CMD', 'sh', '-c', 'exit 3'],
      Interval: 500_000_000,
      Timeout: 2_000_000_000,
      StartPeriod: 1_000_000_000,
      Retries: 3,
    });
    expect(dockerHealthConfigOf({ ...exec, type: 'http', command: null, port: 80, path: '/' })).toBeNull();
  });

  it("maps the engine's health, with the last try's output (or exit code) when unhealthy", () => {
    expect(engineHealthOf(undefined)).toBeNull();
    expect(engineHealthOf({ Status: 'none' })).toBeNull();
    expect(engineHealthOf({ Status: 'starting', Log: [] })).toEqual({ status: 'starting', output: null });
    expect(engineHealthOf({ Status: 'healthy', Log: [{ ExitCode: 0, Output: 'fine' }] })).toEqual({ status: 'healthy', output: null });
    expect(engineHealthOf({ Status: 'unhealthy', Log: [{ ExitCode: 1, Output: 'old' }, { ExitCode: 3, Output: '' }] })).toEqual({
      status: 'unhealthy',
      output: 'exited with code 3',
    });
    const long = engineHealthOf({ Status: 'unhealthy', Log: [{ ExitCode: 1, Output: `${'x'.repeat(5_000)}last words\n` }] });
    expect(long!.output).toHaveLength(HEALTH_OUTPUT_MAX_LENGTH);
    expect(long!.output!.endsWith('last words')).toBe(true);
  });
});

describe('the health check label', () => {
  it('reads back the check it was written from, and no check from a label that is not one', () => {
    expect(healthCheckOfLabel(healthCheckLabel(exec))).toEqual(exec);
    expect(healthCheckOfLabel(undefined)).toBeNull();
    expect(healthCheckOfLabel('{not json')).toBeNull();
    expect(healthCheckOfLabel(JSON.stringify({ ...exec, retries: 0 }))).toBeNull();
  });
});
