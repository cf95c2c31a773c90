/**
 * A container's health check, kept in a label on the container (LABELS.healthCheck): the agent
 * reads what to probe back from the engine, never from memory alone. A label that does not read
 * as a check (edited by hand, or written by a newer agent) means no check: the replica is then
 * reported without health rather than with a guess.
 */
import { Compile } from 'typebox/compile';
import { canonicalJson, HealthCheckSchema, type HealthCheck } from '../../shared/container-spec.js';

const checkHealthCheck = Compile(HealthCheckSchema);

export function healthCheckLabel(check: HealthCheck): string {
  return canonicalJson(check);
}

export function healthCheckOfLabel(text: string | undefined): HealthCheck | null {
  if (text === undefined) return null;
  try {
    const value: unknown = JSON.parse(text);
    return checkHealthCheck.Check(value) ? (value as HealthCheck) : null;
  } catch {
    return null;
  }
}
