/**
 * When a replica under a restart policy starts again after its container stopped (or was found
 * unhealthy), and when it is crash-looping. Pure: no clock, no I/O; restart-policies.ts holds the
 * streaks and asks here.
 *
 * The delays are Kubernetes' crash-loop backoff with the operator's numbers: the n-th restart in a
 * row waits backoffInitialMs * 2^(n-1), capped at backoffMaxMs; a run of resetAfterMs or more
 * ends the streak (the next stop restarts after backoffInitialMs again). No jitter: each replica
 * is one container on one device, with no herd of clients to spread.
 */
import type { RestartPolicy } from '../../shared/container-spec.js';
import { CRASH_LOOP_RESTARTS } from '../../shared/protocol.js';

/** A replica's restarts in a row, as far as its policy is concerned. */
export interface RestartStreak {
  /** Restarts in a row since the last run of resetAfterMs or more. */
  restarts: number;
  /** When the agent last started its container (clock ms); null when it did not (before the agent's time). */
  startedAtMs: number | null;
}

/** Why the container is to start again: it exited (with a code, null when unknown), or failed its health check. */
export type Stop = { kind: 'exited'; exitCode: number | null } | { kind: 'unhealthy' };

export type RestartDecision =
  /** Start it again at atMs; `restarts`: the streak once it has. */
  | { kind: 'restart'; atMs: number; restarts: number }
  /** Leave it stopped: its policy is `never`, it exited 0 under `on-failure`, or maxAttempts restarts in a row were made. */
  | { kind: 'stay-down'; reason: 'never' | 'completed' | 'max-attempts'; restarts: number };

/** The delay before the restart that follows `restartsSoFar` restarts in a row. */
export function backoffDelayMs(policy: RestartPolicy, restartsSoFar: number): number {
  // 2^40 ms is decades: past it the cap has long applied, and the power stays a safe integer.
  const factor = 2 ** Math.min(restartsSoFar, 40);
  return Math.min(policy.backoffInitialMs * factor, policy.backoffMaxMs);
}

/** The streak as it stands at nowMs: over once its container has run resetAfterMs since the agent started it. */
export function streakAt(policy: RestartPolicy, streak: RestartStreak, nowMs: number): RestartStreak {
  if (streak.restarts > 0 && streak.startedAtMs !== null && nowMs - streak.startedAtMs >= policy.resetAfterMs) {
    return { restarts: 0, startedAtMs: streak.startedAtMs };
  }
  return streak;
}

/** What happens to a replica whose container stopped (or was found unhealthy) at stoppedAtMs. */
export function decideRestart(policy: RestartPolicy, streak: RestartStreak, stop: Stop, stoppedAtMs: number): RestartDecision {
  const { restarts } = streakAt(policy, streak, stoppedAtMs);
  if (policy.policy === 'never') return { kind: 'stay-down', reason: 'never', restarts };
  // An unknown exit code is no proof of success: on-failure restarts it.
  if (policy.policy === 'on-failure' && stop.kind === 'exited' && stop.exitCode === 0) return { kind: 'stay-down', reason: 'completed', restarts };
  if (policy.maxAttempts !== null && restarts >= policy.maxAttempts) return { kind: 'stay-down', reason: 'max-attempts', restarts };
  return { kind: 'restart', atMs: stoppedAtMs + backoffDelayMs(policy, restarts), restarts: restarts + 1 };
}

/** Whether a streak of this many restarts in a row is a crash loop. */
export function isCrashLooping(restarts: number): boolean {
  return restarts >= CRASH_LOOP_RESTARTS;
}
