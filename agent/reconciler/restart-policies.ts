/**
 * The agent's restarts of replicas under a restart policy (Nomad's model: the engine restarts
 * none of them, see enginePolicyOf). Each pass shows it the listing; it decides, once per stop of
 * a replica's container (an exit, or its health check failing), when that container starts again
 * (restart-decision.ts), and tells the planner which replicas to leave stopped for now and which
 * running containers to restart. It also says what a crash-looping replica's report carries.
 *
 * Soft state, in memory: an agent restart starts every streak over (the restart counts the hub
 * sees are kept apart, in restart-tally.ts). No timers of its own: the loop asks when the earliest
 * restart is due and sets one timer.
 */
import type { RestartPolicy } from '../../shared/container-spec.js';
import type { AssignedReplica, CrashLoop, ReplicaHealth } from '../../shared/protocol.js';
import type { ObservedContainer } from '../runtime/container-runtime.js';
import { bestContainer } from './plan-steps.js';
import { decideRestart, isCrashLooping, streakAt, type RestartDecision, type Stop } from './restart-decision.js';

/** Replicas followed at most: far above what one device runs, and a bound on this state. */
export const MAX_POLICY_REPLICAS = 10_000;

interface Followed {
  policy: RestartPolicy;
  /** The spec the streak is of: a new spec is a fix to try, and starts over. */
  specHash: string;
  restarts: number;
  /** When the agent last started the replica's container (clock ms); null when it did not. */
  startedAtMs: number | null;
  /** The decision about the current stop of `stoppedId`; null while its container runs (or never stopped). */
  stopped: { containerId: string; stop: Stop; decision: RestartDecision; restartWallMs?: number } | null;
  lastExitCode: number | null;
  outputTail: string | null;
}

/** What a pass is to do about the replicas under a policy. */
export interface PolicyPlan {
  /** Replicas whose stopped container stays stopped for now (its restart is not due, or never). */
  held: Set<string>;
  /** Running containers to restart now (their health check failed), by replica id. */
  restartNow: Map<string, string>;
  /** Containers whose output tail a report is to carry (crash-looping, or given up on), by replica id. */
  wantOutput: Map<string, string>;
  /** The stops decided on in this observation (one per stop of a container), for the log. */
  decided: Array<{ replicaId: string; containerId: string; stop: Stop; decision: RestartDecision }>;
}

export class RestartPolicies {
  private readonly byReplica = new Map<string, Followed>();

  /**
   * Judges the replicas of the target that have a policy against a listing made at nowMs (clock
   * time). health: what the agent's own probes say of a container (the engine's word comes first).
   */
  observe(
    assigned: readonly AssignedReplica[],
    current: readonly ObservedContainer[],
    nowMs: number,
    health: (containerId: string) => ReplicaHealth | undefined,
  ): PolicyPlan {
    const plan: PolicyPlan = { held: new Set(), restartNow: new Map(), wantOutput: new Map(), decided: [] };
    let byReplica: Map<string, ObservedContainer[]> | null = null;
    for (const r of assigned) {
      const policy = r.container.restart;
      if (!policy) continue;
      byReplica ??= groupOfSpec(current);
      const keeper = bestContainer((byReplica.get(r.replicaId) ?? []).filter((c) => c.specHash === r.specHash));
      const f = this.followed(r.replicaId, r.specHash, policy);
      if (!f || !keeper) continue;
      if (keeper.state === 'running') this.running(r.replicaId, f, keeper, nowMs, health, plan);
      else if (keeper.state === 'exited') this.exited(r.replicaId, f, keeper, nowMs, plan);
    }
    return plan;
  }

  /** The agent started the replica's container (it ran before, or never did): a due restart is made. */
  started(replicaId: string, containerId: string, nowMs: number): void {
    const f = this.byReplica.get(replicaId);
    if (!f) return;
    if (f.stopped?.containerId === containerId && f.stopped.decision.kind === 'restart') f.restarts = f.stopped.decision.restarts;
    f.stopped = null;
    f.startedAtMs = nowMs;
  }

  /** The tail of the container's output, for the report of a replica that crash-loops. */
  setOutput(replicaId: string, containerId: string, tail: string | null): void {
    const f = this.byReplica.get(replicaId);
    if (f?.stopped?.containerId === containerId) f.outputTail = tail;
  }

  /**
   * What a report of the replica says of its crash loop: set while a restart is due after
   * CRASH_LOOP_RESTARTS or more in a row, or once its policy gave up (maxAttempts). wallMsOf: the
   * wall-clock time of a clock time, since the hub reads it.
   */
  crashLoopOf(replicaId: string, wallMsOf: (clockMs: number) => number): CrashLoop | undefined {
    const f = this.byReplica.get(replicaId);
    const stopped = f?.stopped;
    const d = stopped?.decision;
    if (!f || !stopped || !d) return undefined;
    if (d.kind === 'restart' && isCrashLooping(d.restarts)) {
      // Taken once: reports built later must say the same, or each would differ from the last.
      stopped.restartWallMs ??= Math.max(0, Math.round(wallMsOf(d.atMs)));
      return { restarts: d.restarts, lastExitCode: f.lastExitCode, outputTail: f.outputTail, nextRestartAtMs: stopped.restartWallMs };
    }
    if (d.kind === 'stay-down' && d.reason === 'max-attempts') {
      return { restarts: d.restarts, lastExitCode: f.lastExitCode, outputTail: f.outputTail, nextRestartAtMs: null };
    }
    return undefined;
  }

  /** Why the replica's container stays stopped, for its report's error; undefined when it does not. */
  downNoteOf(replicaId: string): string | undefined {
    const f = this.byReplica.get(replicaId);
    const d = f?.stopped?.decision;
    if (!f || d?.kind !== 'stay-down') return undefined;
    if (d.reason === 'never') return 'not restarted: its restart policy is "never"';
    if (d.reason === 'max-attempts') {
      return `not restarted again: ${d.restarts} restarts in a row, its restart policy allows ${f.policy.maxAttempts}`;
    }
    return undefined;
  }

  /**
   * The earliest time at or after fromMs (clock time) when something here is due: a restart, or
   * the end of a crash loop (a run of resetAfter), so that reports follow; null when none.
   */
  earliestDueMs(fromMs: number): number | null {
    let earliestMs = Infinity;
    for (const f of this.byReplica.values()) {
      const d = f.stopped?.decision;
      let dueMs = Infinity;
      if (d?.kind === 'restart') dueMs = d.atMs;
      else if (!f.stopped && f.restarts > 0 && f.startedAtMs !== null) dueMs = f.startedAtMs + f.policy.resetAfterMs;
      if (dueMs >= fromMs && dueMs < earliestMs) earliestMs = dueMs;
    }
    return earliestMs === Infinity ? null : earliestMs;
  }

  /** Forgets replicas that are no longer assigned here: nothing will restart them. */
  retain(assigned: ReadonlySet<string>): void {
    for (const id of this.byReplica.keys()) if (!assigned.has(id)) this.byReplica.delete(id);
  }

  private followed(replicaId: string, specHash: string, policy: RestartPolicy): Followed | undefined {
    const f = this.byReplica.get(replicaId);
    if (f && f.specHash === specHash) {
      f.policy = policy;
      return f;
    }
    if (!f && this.byReplica.size >= MAX_POLICY_REPLICAS) return undefined;
    const fresh: Followed = { policy, specHash, restarts: 0, startedAtMs: null, stopped: null, lastExitCode: null, outputTail: null };
    this.byReplica.set(replicaId, fresh);
    return fresh;
  }

  private running(
    replicaId: string,
    f: Followed,
    c: ObservedContainer,
    nowMs: number,
    health: (containerId: string) => ReplicaHealth | undefined,
    plan: PolicyPlan,
  ): void {
    // A run of resetAfter ends the streak, and with it the crash loop.
    const streak = streakAt(f.policy, f, nowMs);
    if (streak.restarts !== f.restarts) {
      f.restarts = streak.restarts;
      f.lastExitCode = null;
      f.outputTail = null;
    }
    const status = c.healthCheck ? (c.engineHealth ?? health(c.id))?.status : undefined;
    if (status !== 'unhealthy') {
      // Started again by someone else (an operator), or healthy again: that stop is over.
      f.stopped = null;
      return;
    }
    if (f.stopped?.containerId !== c.id || f.stopped.stop.kind !== 'unhealthy') {
      f.stopped = { containerId: c.id, stop: { kind: 'unhealthy' }, decision: decideRestart(f.policy, f, { kind: 'unhealthy' }, nowMs) };
      plan.decided.push({ replicaId, containerId: c.id, stop: f.stopped.stop, decision: f.stopped.decision });
      f.lastExitCode = null;
      f.outputTail = null;
      if (this.wantsOutput(f)) plan.wantOutput.set(replicaId, c.id);
    }
    // Left running otherwise (never, maxAttempts): an unhealthy container may still serve a little.
    const d = f.stopped.decision;
    if (d.kind === 'restart' && d.atMs <= nowMs) plan.restartNow.set(replicaId, c.id);
  }

  private exited(replicaId: string, f: Followed, c: ObservedContainer, nowMs: number, plan: PolicyPlan): void {
    if (f.stopped?.containerId !== c.id || f.stopped.stop.kind !== 'exited') {
      const stop: Stop = { kind: 'exited', exitCode: c.exitCode };
      f.stopped = { containerId: c.id, stop, decision: decideRestart(f.policy, f, stop, nowMs) };
      plan.decided.push({ replicaId, containerId: c.id, stop, decision: f.stopped.decision });
      f.lastExitCode = c.exitCode;
      f.outputTail = null;
      if (this.wantsOutput(f)) plan.wantOutput.set(replicaId, c.id);
    }
    const d = f.stopped.decision;
    if (d.kind === 'stay-down' || d.atMs > nowMs) plan.held.add(replicaId);
  }

  /** Only a crash loop's report carries output: one engine call per stop of a crash-looping replica, none otherwise. */
  private wantsOutput(f: Followed): boolean {
    const d = f.stopped?.decision;
    return d !== undefined && ((d.kind === 'restart' && isCrashLooping(d.restarts)) || (d.kind === 'stay-down' && d.reason === 'max-attempts'));
  }
}

/** The usable containers of each replica (not on their way out): the ones the planner keeps. */
function groupOfSpec(current: readonly ObservedContainer[]): Map<string, ObservedContainer[]> {
  const byReplica = new Map<string, ObservedContainer[]>();
  for (const c of current) {
    if (c.state === 'removing' || c.state === 'dead') continue;
    const list = byReplica.get(c.replicaId);
    if (list) list.push(c);
    else byReplica.set(c.replicaId, [c]);
  }
  return byReplica;
}
