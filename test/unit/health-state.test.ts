import { describe, expect, it } from 'vitest';
import { afterTry, initialHealthState, type HealthState } from '../../agent/health/health-state.js';
import type { ProbeResult } from '../../agent/health/probe-result.js';
import { HEALTH_OUTPUT_MAX_LENGTH } from '../../shared/container-spec.js';

const pass: ProbeResult = { ok: true };
const fail = (output = 'connection refused'): ProbeResult => ({ ok: false, output });

/** The health after each try, tries at the given ms since the start. */
function run(tries: Array<[ProbeResult, number]>, check = { retries: 3, startPeriodMs: 0 }): HealthState[] {
  let state = initialHealthState();
  return tries.map(([result, atMs]) => (state = afterTry(state, result, check, atMs)));
}

describe('health state', () => {
  it('is starting until the first pass, then healthy with no output', () => {
    expect(initialHealthState().health).toEqual({ status: 'starting', output: null });
    const states = run([[fail(), 10], [pass, 20]]);
    expect(states.map((s) => s.health.status)).toEqual(['starting', 'healthy']);
    expect(states[1]!.health.output).toBeNull();
  });

  it('turns unhealthy after retries failures in a row, with the last failure as output', () => {
    const states = run([[pass, 1], [fail('a'), 2], [fail('b'), 3], [fail('c'), 4]]);
    expect(states.map((s) => s.health)).toEqual([
      { status: 'healthy', output: null },
      { status: 'healthy', output: null },
      { status: 'healthy', output: null },
      { status: 'unhealthy', output: 'c' },
    ]);
  });

  it('counts only failures in a row: a pass starts the count again', () => {
    const states = run([[fail(), 1], [fail(), 2], [pass, 3], [fail(), 4], [fail(), 5]]);
    expect(states.every((s) => s.health.status !== 'unhealthy')).toBe(true);
  });

  it('recovers from unhealthy with one pass', () => {
    const states = run([[fail(), 1], [fail(), 2], [fail(), 3], [fail('still'), 4], [pass, 5]]);
    expect(states[3]!.health).toEqual({ status: 'unhealthy', output: 'still' });
    expect(states[4]!.health).toEqual({ status: 'healthy', output: null });
  });

  it('does not count failures within the start period while starting', () => {
    const check = { retries: 1, startPeriodMs: 1_000 };
    const states = run([[fail(), 100], [fail(), 999], [fail('late'), 1_000]], check);
    expect(states.map((s) => s.health.status)).toEqual(['starting', 'starting', 'unhealthy']);
  });

  it('ends the start period at the first pass: failures after it count at once', () => {
    const check = { retries: 1, startPeriodMs: 10_000 };
    const states = run([[pass, 100], [fail('down'), 200]], check);
    expect(states[1]!.health).toEqual({ status: 'unhealthy', output: 'down' });
  });

  it('keeps the tail of a long output, cut to the protocol limit', () => {
    const long = `${'a'.repeat(HEALTH_OUTPUT_MAX_LENGTH)}the end`;
    const [state] = run([[fail(long), 1]], { retries: 1, startPeriodMs: 0 });
    expect(state!.health.output).toHaveLength(HEALTH_OUTPUT_MAX_LENGTH);
    expect(state!.health.output!.endsWith('the end')).toBe(true);
  });
});
