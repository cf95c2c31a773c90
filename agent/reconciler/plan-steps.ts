/**
 * The agent's pure planner: from the target and the containers the engine reports, the steps
 * that bring one closer to the other. No I/O, no clock: the reconcile loop applies the steps and
 * plans again from a fresh listing, so a plan only has to be right for the state it was given.
 */
import type { AssignedReplica } from '../../shared/protocol.js';
import type { RegistryAuth } from '../../shared/container-spec.js';
import type { EngineState, ObservedContainer } from '../runtime/container-runtime.js';

export type RemoveReason =
  | 'unassigned'
  | 'outdated'
  | 'duplicate'
  /** Docker cannot start a dead (half-removed) container, so it is removed and made again. */
  | 'dead';

/**
 * How a new container of a replica takes over from its outdated ones: they are stopped (not
 * removed) just before it starts, which frees their host ports; if it will not start, the
 * fallback is started again, so the replica stays served. They are removed once it runs.
 */
export interface Swap {
  /** Every outdated container of the replica. */
  oldIds: string[];
  /** The one of them that can serve (running, or stopped and not backing off), or null. */
  fallbackId: string | null;
}

export type Step =
  | { kind: 'remove'; containerId: string; replicaId: string; reason: RemoveReason }
  | { kind: 'pull'; image: string; auth: RegistryAuth | null; replicaIds: string[] }
  /**
   * Create, then start by the swap, if any. A create the engine refuses (say more CPUs than the
   * host has) touches no old container.
   */
  | { kind: 'create'; replica: AssignedReplica; swap: Swap | null }
  /** Start a stopped container of the replica's spec, by the swap if outdated ones are left. */
  | { kind: 'start'; containerId: string; replicaId: string; swap: Swap | null }
  /**
   * Start a stopped outdated container: it is the replica until its replacement runs, whatever
   * holds that back (the new image being pulled or failing, the create or start backing off).
   */
  | { kind: 'start-stand-in'; containerId: string; replicaId: string }
  /** Stop and start the replica's running container: its restart policy restarts it for failing its health check. */
  | { kind: 'restart'; containerId: string; replicaId: string };

/** The replica an engine step is for (a pull is for several). */
export function replicaIdOf(step: Exclude<Step, { kind: 'pull' }>): string {
  return step.kind === 'create' ? step.replica.replicaId : step.replicaId;
}

export interface PlanInput {
  target: readonly AssignedReplica[];
  current: readonly ObservedContainer[];
  /** Target images present in the engine. */
  images: ReadonlySet<string>;
  /**
   * Replica ids whose retry delay has not passed: they get no pull, create or start of their
   * spec, and a removal that failed for the replica (an unassigned or dead container) waits too.
   */
  backingOff: ReadonlySet<string>;
  /**
   * Container ids whose own step failed (an outdated container's start as a stand-in or a
   * fallback, the removal of an old version) and whose retry delay has not passed: they get no
   * start and no removal. A stand-in has its own delay: the replica's belongs to its
   * replacement, and must not hold the old container down for a minute.
   */
  containerBackingOff: ReadonlySet<string>;
  /**
   * The target may be older than what runs: the agent's cached target, before the hub has
   * confirmed one (the cache may have missed newer targets, say while the disk was full). Then
   * nothing is removed but dead containers, and a replica with a running container of another
   * spec keeps it (it may be the newer one): only what is missing is made or started.
   */
  provisional?: boolean;
  /**
   * Replicas under a restart policy whose stopped container stays stopped for now: its restart is
   * not due yet, or its policy leaves it down (restart-policies.ts). Absent: none.
   */
  held?: ReadonlySet<string>;
  /** Running containers their restart policy restarts now (failing their health check), by replica id. */
  restartNow?: ReadonlyMap<string, string>;
}

/** How much a container is worth keeping: a running one beats one the engine is restarting beats one we must start. */
const KEEP_RANK: Record<EngineState, number> = {
  running: 4,
  restarting: 3,
  paused: 2,
  created: 1,
  exited: 1,
  dead: 0,
  removing: 0,
};

/**
 * The container that counts among several of one replica: the highest rank, then the lowest id
 * so the answer does not depend on the engine's listing order. Reports use it too, so they
 * describe the container the planner keeps.
 */
export function bestContainer(containers: readonly ObservedContainer[]): ObservedContainer | undefined {
  let best: ObservedContainer | undefined;
  for (const c of containers) {
    if (!best) best = c;
    else {
      const byRank = KEEP_RANK[c.state] - KEEP_RANK[best.state];
      if (byRank > 0 || (byRank === 0 && c.id < best.id)) best = c;
    }
  }
  return best;
}

/** The containers of each replica, in listing order. */
export function groupByReplica(containers: readonly ObservedContainer[]): Map<string, ObservedContainer[]> {
  const byReplica = new Map<string, ObservedContainer[]>();
  for (const c of containers) {
    const list = byReplica.get(c.replicaId);
    if (list) list.push(c);
    else byReplica.set(c.replicaId, [c]);
  }
  return byReplica;
}

/** Containers the planner can keep or start: one 'removing' is on its way out, one 'dead' cannot start. */
function isUsable(c: ObservedContainer): boolean {
  return c.state !== 'removing' && c.state !== 'dead';
}

/**
 * Whether the replica's image matters to this pass: only a replica with no container of its spec
 * to keep needs a create or a pull. One that only needs a start must not wait on an image check.
 */
export function needsImage(replica: AssignedReplica, containers: readonly ObservedContainer[]): boolean {
  return !containers.some((c) => c.replicaId === replica.replicaId && c.specHash === replica.specHash && isUsable(c));
}

/**
 * Removes come first: the applier finishes them before any create, so a new container can bind a
 * host port or take a name that an unassigned or dead container held.
 *
 * A replica's outdated containers are removed only once a container of its spec runs: until then
 * the best of them is the replica. The new container takes over by a swap (see Swap), planned as
 * part of its create, or of its start when it exists but does not run (the agent died between the
 * create and the swap, or its start failed). While the replica backs off, or its image is still
 * to be pulled, the best outdated container is kept up: left running, or started if it stopped
 * (say it crashed, or was killed, while the new image would not pull). Waiting for a replacement
 * that may never come would leave the replica down meanwhile. A new container the engine is
 * restarting, or that is paused, is the engine's or an operator's: the outdated ones stay as
 * they are.
 */
export function planSteps(input: PlanInput): Step[] {
  const { images, backingOff, containerBackingOff } = input;
  const wanted = new Map<string, AssignedReplica>();
  for (const r of input.target) wanted.set(r.replicaId, r);
  const containersOf = groupByReplica(input.current);

  const removes: Step[] = [];
  const pulls = new Map<string, Extract<Step, { kind: 'pull' }>>();
  const creates: Step[] = [];
  const starts: Step[] = [];
  // A removal the engine refused waits out its retry delay: asking again at once, every pass,
  // gets the same refusal. Unassigned and dead containers' failures are their replica's.
  const remove = (c: ObservedContainer, reason: RemoveReason) => {
    if (input.provisional && reason !== 'dead') return;
    if (containerBackingOff.has(c.id)) return;
    if ((reason === 'unassigned' || reason === 'dead') && backingOff.has(c.replicaId)) return;
    removes.push({ kind: 'remove', containerId: c.id, replicaId: c.replicaId, reason });
  };

  for (const [replicaId, containers] of containersOf) {
    if (wanted.has(replicaId)) continue;
    // A container in 'removing' is already on its way out: asking again only gets a conflict.
    for (const c of containers) if (c.state !== 'removing') remove(c, 'unassigned');
  }

  for (const replica of wanted.values()) {
    const id = replica.replicaId;
    const containers = containersOf.get(id) ?? [];
    const usable: ObservedContainer[] = [];
    let removalUnderWay = false;
    for (const c of containers) {
      if (c.state === 'removing') removalUnderWay = true;
      else if (c.state === 'dead') remove(c, 'dead');
      else usable.push(c);
    }
    const rightHash = usable.filter((c) => c.specHash === replica.specHash);
    const outdated = usable.filter((c) => c.specHash !== replica.specHash);
    const keeper = bestContainer(rightHash);
    const standIn = bestContainer(outdated);
    const standInStartable = standIn !== undefined && isStartable(standIn) && !containerBackingOff.has(standIn.id);
    const swap: Swap | null =
      outdated.length === 0
        ? null
        : { oldIds: outdated.map((c) => c.id), fallbackId: standIn!.state === 'running' || standInStartable ? standIn!.id : null };
    const keepStandIn = () => {
      if (standInStartable) starts.push({ kind: 'start-stand-in', containerId: standIn!.id, replicaId: id });
    };

    // A provisional target may be the older one: a running container of another spec stays.
    if (input.provisional && keeper?.state !== 'running' && outdated.some((c) => c.state === 'running')) continue;

    if (keeper) {
      for (const c of rightHash) if (c !== keeper) remove(c, 'duplicate');
      if (keeper.state === 'running') {
        for (const c of outdated) remove(c, 'outdated');
        if (input.restartNow?.get(id) === keeper.id && !backingOff.has(id)) starts.push({ kind: 'restart', containerId: keeper.id, replicaId: id });
      } else if (isStartable(keeper)) {
        if (backingOff.has(id)) keepStandIn();
        // Its restart policy decides when it starts again (a container never started is not held).
        else if (!(keeper.state === 'exited' && input.held?.has(id))) starts.push({ kind: 'start', containerId: keeper.id, replicaId: id, swap });
      }
      // 'restarting' belongs to the engine's restart policy and 'paused' to whoever paused it.
      continue;
    }

    // A container being removed may still hold the name the new one needs: wait for its destroy.
    if (backingOff.has(id) || removalUnderWay) {
      keepStandIn();
      continue;
    }

    const image = replica.container.image;
    if (!images.has(image)) {
      keepStandIn();
      const pull = pulls.get(image);
      if (pull) {
        pull.replicaIds.push(id);
        pull.auth ??= replica.container.registryAuth;
      } else {
        pulls.set(image, { kind: 'pull', image, auth: replica.container.registryAuth, replicaIds: [id] });
      }
      continue;
    }

    creates.push({ kind: 'create', replica, swap });
  }

  return [...removes, ...pulls.values(), ...creates, ...starts];
}

function isStartable(c: ObservedContainer): boolean {
  return c.state === 'exited' || c.state === 'created';
}
