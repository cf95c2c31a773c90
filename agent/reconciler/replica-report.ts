/**
 * What a replica's report says, given what the loop knows: the target, a listing of the engine,
 * the last step errors and the restart counts. Pure: the reconcile loop builds reports from a
 * listing, at the end of a pass and as its steps finish, and replica-reporter.ts sends those that changed.
 */
import type { HealthCheck } from '../../shared/container-spec.js';
import {
  MAX_REPORT_ERROR_LENGTH,
  type AssignedReplica,
  type CrashLoop,
  type PullProgress,
  type ReplicaHealth,
  type ReplicaReport,
  type ReplicaState,
} from '../../shared/protocol.js';
import { sameHealth, STARTING } from '../health/health-state.js';
import type { ObservedContainer } from '../runtime/container-runtime.js';
import { bestContainer, groupByReplica } from './plan-steps.js';

/** One replica in a listing: its containers, and the one that stands for it. */
export interface Standing {
  replicaId: string;
  service: string;
  /** The spec it is assigned, or, for a replica not assigned here, the spec of its container. */
  specHash: string;
  /** Assigned by the target; otherwise its containers are present only until the pass removes them. */
  assigned: boolean;
  containers: readonly ObservedContainer[];
  /** The container its report describes; none for an assigned replica with no container yet. */
  chosen: ObservedContainer | undefined;
  /** The health check of the assigned spec, for a replica with no container yet; absent without one. */
  targetHealthCheck?: HealthCheck;
  /** The image of the assigned spec; absent for a replica not assigned here. */
  image?: string;
}

/**
 * Every replica a report is due for, from a listing: each assigned one, and each unassigned one
 * whose containers are still present. only: just these replicas (in this order); one neither
 * assigned nor present has no standing (it is gone).
 */
export function standingsOf(
  assigned: readonly AssignedReplica[],
  current: readonly ObservedContainer[],
  only?: Iterable<string>,
): Map<string, Standing> {
  const containersOf = groupByReplica(current);
  const standings = new Map<string, Standing>();
  const add = (id: string, r: AssignedReplica | undefined) => {
    const containers = containersOf.get(id) ?? [];
    if (r) standings.set(id, assignedStanding(r, containers));
    else if (containers.length > 0) standings.set(id, unassignedStanding(id, containers));
  };
  if (only) {
    const assignedById = new Map(assigned.map((r) => [r.replicaId, r]));
    for (const id of only) add(id, assignedById.get(id));
    return standings;
  }
  for (const r of assigned) add(r.replicaId, r);
  for (const id of containersOf.keys()) if (!standings.has(id)) add(id, undefined);
  return standings;
}

function assignedStanding(r: AssignedReplica, containers: readonly ObservedContainer[]): Standing {
  // The container that stands for the replica: its spec's, unless only an outdated one runs
  // (an update that has not taken over yet: the old version is what serves).
  const right = bestContainer(containers.filter((c) => c.specHash === r.specHash));
  const any = bestContainer(containers);
  const chosen = right?.state !== 'running' && any?.state === 'running' ? any : (right ?? any);
  const standing: Standing = { replicaId: r.replicaId, service: r.service, specHash: r.specHash, assigned: true, containers, chosen, image: r.container.image };
  if (r.container.healthcheck) standing.targetHealthCheck = r.container.healthcheck;
  return standing;
}

function unassignedStanding(replicaId: string, containers: readonly ObservedContainer[]): Standing {
  const chosen = bestContainer(containers)!;
  return { replicaId, service: chosen.service, specHash: chosen.specHash, assigned: false, containers, chosen };
}

/**
 * Running with the right spec is success however it came about (say the engine's restart
 * policy), so an older step error no longer describes the replica.
 */
export function runsItsSpec(s: Standing): boolean {
  return s.assigned && s.chosen?.state === 'running' && s.chosen.specHash === s.specHash;
}

/** What the loop knows of a replica beside the listing. */
export interface ReplicaFacts {
  /** The last error of the replica's steps, while it counts. */
  replicaError: string | undefined;
  /** The last error of a step on one container (an outdated one's start, an old version's removal). */
  containerError: (containerId: string) => string | undefined;
  restarts: number;
  /** What the agent's own probes found of a container's health; undefined when it does not probe it. */
  probedHealth?: (containerId: string) => ReplicaHealth | undefined;
  /** Its crash loop, under a restart policy (protocol 4); undefined when it has none. */
  crashLoop?: CrashLoop;
  /** Why its restart policy leaves its container stopped; undefined when it does not. */
  downNote?: string;
  /** How far the pull of its assigned image got, while one is in flight (protocol 5). */
  pull?: PullProgress;
}

/**
 * The report of a replica. An assigned one reports its own step error first, then that of the
 * container that stands for it (an outdated stand-in that will not start); a replica not assigned
 * here only its own.
 */
export function reportFor(s: Standing, facts: ReplicaFacts): ReplicaReport {
  const containerError = s.assigned && s.chosen ? facts.containerError(s.chosen.id) : undefined;
  const report = reportOf(s.replicaId, s.service, s.specHash, s.chosen, facts.replicaError ?? containerError ?? null, facts.restarts);
  const health = healthFor(s, facts.probedHealth);
  if (health) report.health = health;
  // Only of the replica's own container: an outdated stand-in is no part of its policy's story.
  const own = s.assigned && s.chosen?.specHash === s.specHash;
  if (own && facts.downNote && report.error !== null && report.state !== 'running') {
    report.error = `${report.error}; ${facts.downNote}`.slice(0, MAX_REPORT_ERROR_LENGTH);
  }
  if (own && facts.crashLoop) report.crashLoop = facts.crashLoop;
  if (facts.pull && s.assigned && !runsItsSpec(s)) report.pull = facts.pull;
  return report;
}

/**
 * A replica's health, for one whose container has a check (or, with no container yet, whose
 * assigned spec has one); undefined without a check. Only a running container can pass: one
 * that is not is `starting` (it passes again only once it runs again). A running one has the
 * engine's word (exec checks), else the agent's probes', else none yet: `starting`.
 */
export function healthFor(s: Standing, probedHealth?: (containerId: string) => ReplicaHealth | undefined): ReplicaHealth | undefined {
  const c = s.chosen;
  if (!c) return s.targetHealthCheck ? STARTING : undefined;
  if (!c.healthCheck) return undefined;
  if (c.state !== 'running') return STARTING;
  return c.engineHealth ?? probedHealth?.(c.id) ?? STARTING;
}

/** A replica gone for good (neither assigned nor present), as sent once to the hub. */
export function removedReport(last: ReplicaReport): ReplicaReport {
  const { health: _health, crashLoop: _crashLoop, pull: _pull, ...rest } = last;
  return { ...rest, state: 'removed', containerId: null, error: null };
}

/**
 * The reports that changed from last to next: a new or different one, and 'removed' for one in
 * last that next has not. scope: only these replicas (in this order); by default every replica of
 * next, then those gone from last.
 */
export function changedReports(
  last: ReadonlyMap<string, ReplicaReport>,
  next: ReadonlyMap<string, ReplicaReport>,
  scope?: Iterable<string>,
): ReplicaReport[] {
  const changed: ReplicaReport[] = [];
  const judge = (id: string) => {
    const before = last.get(id);
    const after = next.get(id);
    if (after) {
      if (!sameReport(before, after)) changed.push(after);
    } else if (before) changed.push(removedReport(before));
  };
  if (scope) for (const id of scope) judge(id);
  else {
    for (const id of next.keys()) judge(id);
    for (const id of last.keys()) if (!next.has(id)) judge(id);
  }
  return changed;
}

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
    a.service === b.service &&
    sameHealth(a.health, b.health) &&
    sameCrashLoop(a.crashLoop, b.crashLoop) &&
    samePull(a.pull, b.pull)
  );
}

export function samePull(a: PullProgress | undefined, b: PullProgress | undefined): boolean {
  return (
    a === b ||
    (a !== undefined &&
      b !== undefined &&
      a.bytesDone === b.bytesDone &&
      a.bytesTotal === b.bytesTotal &&
      a.layersDone === b.layersDone &&
      a.layersTotal === b.layersTotal)
  );
}

function sameCrashLoop(a: CrashLoop | undefined, b: CrashLoop | undefined): boolean {
  return (
    a === b ||
    (a !== undefined &&
      b !== undefined &&
      a.restarts === b.restarts &&
      a.lastExitCode === b.lastExitCode &&
      a.outputTail === b.outputTail &&
      a.nextRestartAtMs === b.nextRestartAtMs)
  );
}

