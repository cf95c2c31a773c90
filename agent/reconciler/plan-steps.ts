/**
 * The agent's pure planner: from the target and the containers the engine reports, the steps
 * that bring one closer to the other. No I/O, no clock: the reconcile loop applies the steps and
 * plans again from a fresh listing, so a plan only has to be right for the state it was given.
 */
import type { AssignedReplica } from '../../shared/protocol.js';
import type { RegistryAuth } from '../../shared/spec.js';
import type { EngineState, ObservedContainer } from '../runtime/container-runtime.js';

export type RemoveReason =
  | 'unassigned'
  | 'outdated'
  | 'duplicate'
  /** Docker cannot start a dead (half-removed) container, so it is removed and made again. */
  | 'dead';

export type Step =
  | { kind: 'remove'; containerId: string; replicaId: string; reason: RemoveReason }
  | { kind: 'pull'; image: string; auth: RegistryAuth | null; replicaIds: string[] }
  /**
   * Create, remove the replaced containers (the replica's outdated ones), start. The old container
   * goes only once the engine has accepted the new one: a create it refuses (say more CPUs than
   * the host has) leaves the old one serving.
   */
  | { kind: 'create'; replica: AssignedReplica; replaces: string[] }
  /**
   * A stopped container of the replica. standIn: one of an older spec, started because it is the
   * replica until its replacement can be created (the new image is being pulled or failing, the
   * create is backing off).
   */
  | { kind: 'start'; containerId: string; replicaId: string; standIn: boolean };

export interface PlanInput {
  target: readonly AssignedReplica[];
  current: readonly ObservedContainer[];
  /** Target images present in the engine. */
  images: ReadonlySet<string>;
  /** Replica ids whose retry delay has not passed: they get no pull, create or start of their spec. */
  backingOff: ReadonlySet<string>;
  /**
   * Container ids whose stand-in start failed and whose retry delay has not passed. A stand-in
   * has its own delay: the replica's belongs to its replacement, and must not hold the old
   * container down for a minute.
   */
  startBackingOff: ReadonlySet<string>;
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

/**
 * Removes come first: the applier finishes them before any create, so a new container can bind a
 * host port or take a name that an unassigned or dead container held. A replica's own outdated
 * containers are not among them: its create step replaces them once the new container exists.
 *
 * An outdated container is replaced only in a plan that also creates its replacement (image
 * present, not backing off). Removing it while the new image is still to be pulled would stop the
 * service for the whole pull, and for good if the pull keeps failing; the loop plans again after
 * a pull, and that plan does the swap. Until then the old container is the replica, so the best
 * of them is started if it stopped (say it crashed, or was killed, while the new image would not
 * pull): waiting for a replacement that may never come would leave the replica down meanwhile.
 */
export function planSteps(input: PlanInput): Step[] {
  const { current, images, backingOff, startBackingOff } = input;
  const wanted = new Map<string, AssignedReplica>();
  for (const r of input.target) wanted.set(r.replicaId, r);

  const containersOf = new Map<string, ObservedContainer[]>();
  for (const c of current) {
    const list = containersOf.get(c.replicaId);
    if (list) list.push(c);
    else containersOf.set(c.replicaId, [c]);
  }

  const removes: Step[] = [];
  const pulls = new Map<string, Extract<Step, { kind: 'pull' }>>();
  const creates: Step[] = [];
  const starts: Step[] = [];
  const remove = (c: ObservedContainer, reason: RemoveReason) =>
    removes.push({ kind: 'remove', containerId: c.id, replicaId: c.replicaId, reason });

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

    if (keeper) {
      for (const c of rightHash) if (c !== keeper) remove(c, 'duplicate');
      for (const c of outdated) remove(c, 'outdated');
      // 'restarting' belongs to the engine's restart policy and 'paused' to whoever paused it.
      if ((keeper.state === 'exited' || keeper.state === 'created') && !backingOff.has(id)) {
        starts.push({ kind: 'start', containerId: keeper.id, replicaId: id, standIn: false });
      }
      continue;
    }

    const keepStandIn = () => {
      const standIn = bestContainer(outdated);
      if (standIn && (standIn.state === 'exited' || standIn.state === 'created') && !startBackingOff.has(standIn.id)) {
        starts.push({ kind: 'start', containerId: standIn.id, replicaId: id, standIn: true });
      }
    };

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

    creates.push({ kind: 'create', replica, replaces: outdated.map((c) => c.id) });
  }

  return [...removes, ...pulls.values(), ...creates, ...starts];
}
