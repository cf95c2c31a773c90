/**
 * A replica's report as the hub reads it, from the container that stands for the replica and the
 * last step error. Pure: the reconcile loop builds reports from a listing of the engine, at the end
 * of a pass and as its steps finish, and sends those that changed.
 */
import { MAX_REPORT_ERROR_LENGTH, type ReplicaReport, type ReplicaState } from '../../shared/protocol.js';
import type { ObservedContainer } from '../runtime/container-runtime.js';

/** A replica's state as the hub reads it, from the container that counts and the last step error. */
export function reportOf(
  replicaId: string,
  service: string,
  specHash: string,
  c: ObservedContainer | undefined,
  stepError: string | null,
  restarts: number,
): ReplicaReport {
  if (!c) {
    return { replicaId, service, state: stepError ? 'failed' : 'pending', specHash, containerId: null, error: stepError, restarts };
  }
  let state: ReplicaState;
  let error: string | null;
  switch (c.state) {
    case 'running':
      if (c.error !== null) {
        // The engine listed it running but its state could not be read: a listing can lag a
        // container's death, so it is not reported running on the listing's word alone.
        state = 'failed';
        error = c.error;
        break;
      }
      // An error here is an update that failed while the old container goes on serving: the
      // report carries that container's spec hash, so the hub sees which version runs.
      state = 'running';
      error = stepError;
      break;
    case 'created':
      error = stepError ?? c.error;
      state = error ? 'failed' : 'starting';
      break;
    case 'restarting':
      state = 'failed';
      error = stepError ?? exitText(c);
      break;
    case 'exited':
      error = stepError ?? c.error ?? (c.exitCode !== null && c.exitCode !== 0 ? exitText(c) : null);
      state = error ? 'failed' : 'stopped';
      break;
    case 'dead':
      state = 'failed';
      error = stepError ?? c.error ?? 'container is dead';
      break;
    case 'paused':
    case 'removing':
      state = 'stopped';
      error = stepError;
      break;
  }
  return {
    replicaId,
    service,
    state: state,
    specHash: c.specHash,
    containerId: c.id,
    error: error === null ? null : error.slice(0, MAX_REPORT_ERROR_LENGTH),
    restarts,
  };
}

function exitText(c: ObservedContainer): string {
  const restarts = c.restartCount ? ` (restarted ${c.restartCount} times)` : '';
  return `exited with code ${c.exitCode ?? 'unknown'}${restarts}`;
}

export function sameReport(a: ReplicaReport | undefined, b: ReplicaReport): boolean {
  return (
    a !== undefined &&
    a.state === b.state &&
    a.specHash === b.specHash &&
    a.containerId === b.containerId &&
    a.error === b.error &&
    a.restarts === b.restarts &&
    a.service === b.service
  );
}

