/**
 * The health of one checked container from its tries, as Docker judges it: `starting` until the
 * first pass; `retries` failures in a row make it `unhealthy`, with the last failure's output;
 * one pass makes it `healthy` again. Failures within startPeriodMs of the start do not count
 * while it is still starting (a pass ends the start period early). Pure: no clock, no I/O.
 */
import type { HealthCheck } from '../../shared/container-spec.js';
import type { ReplicaHealth } from '../../shared/protocol.js';
import { clipHealthOutput, type ProbeResult } from './probe-result.js';

export interface HealthState {
  health: ReplicaHealth;
  /** Failures counted since the last pass. */
  failuresInRow: number;
}

export const STARTING: ReplicaHealth = { status: 'starting', output: null };

export function initialHealthState(): HealthState {
  return { health: STARTING, failuresInRow: 0 };
}

/** The state after one try, made sinceStartMs after the container started. */
export function afterTry(
  state: HealthState,
  result: ProbeResult,
  check: Pick<HealthCheck, 'retries' | 'startPeriodMs'>,
  sinceStartMs: number,
): HealthState {
  if (result.ok) return { health: { status: 'healthy', output: null }, failuresInRow: 0 };
  if (state.health.status === 'starting' && sinceStartMs < check.startPeriodMs) return state;
  const failuresInRow = state.failuresInRow + 1;
  if (failuresInRow < check.retries) return { health: state.health, failuresInRow };
  return { health: { status: 'unhealthy', output: clipHealthOutput(result.output) }, failuresInRow };
}

export function sameHealth(a: ReplicaHealth | undefined, b: ReplicaHealth | undefined): boolean {
  return a === b || (a !== undefined && b !== undefined && a.status === b.status && a.output === b.output);
}
