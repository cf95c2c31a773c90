import { describe, expect, it } from 'vitest';
import { DEFAULT_HUB_CONFIG } from '../../hub/hub.js';
import { timingsProblem, type HubTimings } from '../../hub/hub-config.js';

const base: HubTimings = { heartbeatIntervalMs: 5_000, heartbeatGraceMs: 15_000, lostAfterMs: 60_000, startupGraceMs: 30_000 };

describe('hub timings that cannot work are refused', () => {
  it('accepts the defaults', () => {
    expect(timingsProblem(DEFAULT_HUB_CONFIG)).toBeNull();
  });

  it.each<[string, Partial<HubTimings>, RegExp | null]>([
    ['a grace of exactly two intervals', { heartbeatGraceMs: 10_000 }, /--heartbeat-grace-ms 10000 must be more than twice --heartbeat-interval-ms 5000/],
    ['a grace below the interval', { heartbeatIntervalMs: 20_000 }, /--heartbeat-grace-ms 15000 .* --heartbeat-interval-ms 20000/],
    ['a grace just over two intervals', { heartbeatGraceMs: 10_001 }, null],
    ['lostAfter below the grace', { lostAfterMs: 2_000 }, /--lost-after-ms 2000 must be at least --heartbeat-grace-ms 15000/],
    ['lostAfter equal to the grace', { lostAfterMs: 15_000 }, null],
    ['a startup grace below the agents\' backoff cap', { startupGraceMs: 5_000 }, /--startup-grace-ms 5000 must be at least 30000, the agents' reconnect backoff cap/],
    ['a startup grace of zero', { startupGraceMs: 0 }, /--startup-grace-ms 0/],
    ['a long startup grace', { startupGraceMs: 120_000 }, null],
    // The short timings the tests run real hubs with.
    ['e2e timings', { heartbeatIntervalMs: 300, heartbeatGraceMs: 1_200, lostAfterMs: 3_000 }, null],
    ['sim timings', { heartbeatIntervalMs: 200, heartbeatGraceMs: 800, lostAfterMs: 1_500 }, null],
  ])('%s', (_name, change, expected) => {
    const problem = timingsProblem({ ...base, ...change });
    if (expected === null) expect(problem).toBeNull();
    else expect(problem).toMatch(expected);
  });

  it('judges the startup grace against the cap the agents are known to use', () => {
    expect(timingsProblem({ ...base, startupGraceMs: 1_000 }, 500)).toBeNull();
    expect(timingsProblem({ ...base, startupGraceMs: 1_000 }, 2_000)).toMatch(/at least 2000/);
  });

  it('names one problem per line', () => {
    const problem = timingsProblem({ heartbeatIntervalMs: 5_000, heartbeatGraceMs: 5_000, lostAfterMs: 1_000, startupGraceMs: 0 })!;
    expect(problem.split('\n')).toHaveLength(1);
  });
});
