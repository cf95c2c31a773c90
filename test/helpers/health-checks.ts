/** Health checks as agents receive them (every field filled in), for the agent's tests. */
import type { HealthCheck } from '../../shared/container-spec.js';

/** An http check of port 8080, path "/", any 2xx or 3xx; `more` overrides. */
export function httpCheck(more: Partial<HealthCheck> = {}): HealthCheck {
  return {
    type: 'http',
    port: 8080,
    path: '/',
    statusMin: 200,
    statusMax: 399,
    command: null,
    intervalMs: 1_000,
    timeoutMs: 1_000,
    retries: 1,
    startPeriodMs: 0,
    ...more,
  };
}

/** An exec check that fails with exit code 3; `more` overrides. */
export function execCheck(more: Partial<HealthCheck> = {}): HealthCheck {
  return {
    type: 'exec',
    port: null,
    path: null,
    statusMin: null,
    statusMax: null,
    command: ['sh', '-c', 'exit 3'],
    intervalMs: 1_000,
    timeoutMs: 1_000,
    retries: 1,
    startPeriodMs: 0,
    ...more,
  };
}
