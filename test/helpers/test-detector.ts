/** A failure detector on a clock the test moves, with the grace and thresholds the unit tests use. */
import { FailureDetector, type FailureDetectorOptions, type NodeState } from '../../hub/failure-detector.js';

export interface TestDetector {
  clock: { now: number; nowMs(): number };
  detector: FailureDetector;
  /** Every state change, with the state before it (unless `onStateChange` is given). */
  changes: Array<[string, NodeState, NodeState | null]>;
  advance: (ms: number) => void;
}

/** 15 s grace, 60 s lostAfter, 30 s startup grace; the clock jumps between sweeps, so no stall detection unless asked. */
export function testDetector(options: Partial<Omit<FailureDetectorOptions, 'clock'>> & { startMs?: number } = {}): TestDetector {
  const { startMs = 1_000_000, ...rest } = options;
  const clock = { now: startMs, nowMs() { return this.now; } };
  const changes: Array<[string, NodeState, NodeState | null]> = [];
  const detector = new FailureDetector({
    clock,
    heartbeatGraceMs: 15_000,
    lostAfterMs: 60_000,
    startupGraceMs: 30_000,
    stallAfterMs: Number.POSITIVE_INFINITY,
    onStateChange: (id, state, previous) => changes.push([id, state, previous]),
    ...rest,
  });
  return { clock, detector, changes, advance: (ms: number) => (clock.now += ms) };
}
