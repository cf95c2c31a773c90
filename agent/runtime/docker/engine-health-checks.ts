/**
 * Exec health checks run by the Docker engine itself, as the container's HEALTHCHECK: they survive
 * an agent restart and cost the agent nothing. This maps a check to the create body's Healthcheck
 * and the engine's State.Health back to a replica's health.
 */
import type { HealthCheck } from '../../../shared/container-spec.js';
import type { ReplicaHealth } from '../../../shared/protocol.js';
import { clipHealthOutput } from '../../health/probe-result.js';

/** Healthcheck of POST /containers/create: durations in nanoseconds. */
export interface DockerHealthConfig {
  Test: string[];
  Interval: number;
  Timeout: number;
  StartPeriod: number;
  Retries: number;
}

/** State.Health of GET /containers/{id}/json, as far as the agent reads it. */
export interface DockerHealthState {
  Status?: string;
  Log?: Array<{ ExitCode?: number; Output?: string }> | null;
}

const NS_PER_MS = 1_000_000;

export function dockerHealthConfigOf(check: HealthCheck): DockerHealthConfig | null {
  if (check.type !== 'exec' || check.command === null) return null;
  return {
    Test: ['CMD', ...check.command],
    Interval: check.intervalMs * NS_PER_MS,
    Timeout: check.timeoutMs * NS_PER_MS,
    StartPeriod: check.startPeriodMs * NS_PER_MS,
    Retries: check.retries,
  };
}

/**
 * The engine's health as a replica's: null when it keeps none ("none", or no Health at all). An
 * unhealthy one carries the tail of the last try's output, or its exit code when it printed nothing.
 */
export function engineHealthOf(health: DockerHealthState | undefined | null): ReplicaHealth | null {
  switch (health?.Status) {
    case 'starting':
      return { status: 'starting', output: null };
    case 'healthy':
      return { status: 'healthy', output: null };
    case 'unhealthy': {
      const last = health.Log?.[health.Log.length - 1];
      const text = last?.Output?.trim() ?? '';
      const output = text || (last?.ExitCode !== undefined ? `exited with code ${last.ExitCode}` : '');
      return { status: 'unhealthy', output: clipHealthOutput(output) };
    }
    default:
      return null;
  }
}
