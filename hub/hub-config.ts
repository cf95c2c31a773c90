import { AGENT_RECONNECT_CAP_MS } from '../shared/protocol.js';

/** The hub's timing settings, as the flags that set them name them. */
export interface HubTimings {
  heartbeatIntervalMs: number;
  heartbeatGraceMs: number;
  lostAfterMs: number;
  startupGraceMs: number;
}

/**
 * Combinations of timings that cannot work, as one line naming the flags and their values, or null.
 * Pure. Each rule is an invariant of the failure detector, not a taste:
 * - a grace of at most two heartbeat intervals judges a node silent for one late heartbeat;
 * - a lostAfter below the grace cannot be honoured for a node that goes silent (it is noticed only
 *   when the grace runs out, and is lost at once);
 * - a startup grace below the agents' reconnect backoff cap counts agents still waiting to retry
 *   after a hub restart as away, and their replicas move (with a service's own short lostAfter,
 *   within seconds).
 */
export function timingsProblem(t: HubTimings, agentReconnectCapMs = AGENT_RECONNECT_CAP_MS): string | null {
  if (t.heartbeatGraceMs <= 2 * t.heartbeatIntervalMs) {
    return (
      `--heartbeat-grace-ms ${t.heartbeatGraceMs} must be more than twice --heartbeat-interval-ms ${t.heartbeatIntervalMs} ` +
      `(over ${2 * t.heartbeatIntervalMs}): a node would be judged silent for a single late heartbeat`
    );
  }
  if (t.lostAfterMs < t.heartbeatGraceMs) {
    return (
      `--lost-after-ms ${t.lostAfterMs} must be at least --heartbeat-grace-ms ${t.heartbeatGraceMs}: ` +
      'a node that goes silent is noticed only when the grace runs out, so it could not be lost any sooner'
    );
  }
  if (t.startupGraceMs < agentReconnectCapMs) {
    return (
      `--startup-grace-ms ${t.startupGraceMs} must be at least ${agentReconnectCapMs}, the agents' reconnect backoff cap: ` +
      'after a hub restart, agents still waiting to retry would count as away and their replicas could move'
    );
  }
  return null;
}
