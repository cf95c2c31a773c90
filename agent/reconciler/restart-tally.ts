/**
 * Restart counts of the node's replicas. The engine's RestartCount counts only its restart
 * policy's restarts of one container, and goes back to 0 when a container is started through the
 * API or made anew; the agent adds its own starts of a replica that had run. Restarts only grow:
 * a count the hub sees going backwards would read as a different replica.
 *
 * Kept in a RestartCountStore so that an agent restart does not reset them; without one (or with
 * a lost file) the engine's counts of the containers present are the floor.
 */
import type { ObservedContainer } from '../runtime/container-runtime.js';

/** One replica's restarts, as stored. */
export interface ReplicaRestarts {
  restarts: number;
  /** The engine's RestartCount last seen per container of the replica (the present ones). */
  engineCounts: Record<string, number>;
  /** Spec hash of the replica's container last seen, null if none was: a new one of it is a restart. */
  lastSpecHash: string | null;
}

export type RestartRecords = Record<string, ReplicaRestarts>;

/** Where the counts survive an agent restart. */
export interface RestartCountStore {
  /** The stored counts, or null when there are none (or they cannot be read: the engine is the floor then). */
  load(): Promise<RestartRecords | null>;
  /** Keeps these counts; writes may be coalesced, and a failed write must not throw. */
  save(records: RestartRecords): void;
  /** Resolves once what was saved is written. */
  flush(): Promise<void>;
}

/** Replicas tracked at most: far above what one device runs, and a bound on the store's size. */
export const MAX_TRACKED_REPLICAS = 10_000;
/** Containers of one replica whose engine counts are kept; more are duplicates on their way out. */
export const MAX_CONTAINERS_PER_REPLICA = 16;

interface Tally {
  restarts: number;
  engineCounts: Map<string, number>;
  lastSpecHash: string | null;
}

/**
 * What changed since the counts were last taken. 'engine-counts': only what follows from the
 * engine's counts, which an agent that restarts before it is written mostly finds again in the
 * engine (the count since the last written one is added then). 'counted': something only the agent knows
 * (a start it made, a replica it began or stopped tracking, the spec last seen).
 */
export type TallyChange = 'none' | 'engine-counts' | 'counted';

export class RestartTally {
  private readonly byReplica = new Map<string, Tally>();
  private change: TallyChange = 'none';

  /** Replaces the counts with stored ones (at start, before the first pass). */
  load(records: RestartRecords): void {
    this.byReplica.clear();
    for (const [replicaId, r] of Object.entries(records)) {
      if (this.byReplica.size >= MAX_TRACKED_REPLICAS) break;
      const engineCounts = new Map(Object.entries(r.engineCounts).slice(0, MAX_CONTAINERS_PER_REPLICA));
      this.byReplica.set(replicaId, { restarts: r.restarts, engineCounts, lastSpecHash: r.lastSpecHash });
    }
    this.change = 'none';
  }

  /**
   * The agent started one of the replica's containers through the API: the engine's count of it
   * is 0 from now on. restart: the container had run (it exited), so the replica restarted.
   */
  noteStart(replicaId: string, containerId: string, restart: boolean): void {
    const tally = this.tallyOf(replicaId);
    if (!tally) return;
    if (restart) tally.restarts++;
    if (tally.engineCounts.has(containerId) || tally.engineCounts.size < MAX_CONTAINERS_PER_REPLICA) tally.engineCounts.set(containerId, 0);
    this.change = 'counted';
  }

  /** Whether the replica's container last seen had this spec: making one of it again is a restart. */
  hadSpec(replicaId: string, specHash: string): boolean {
    return this.byReplica.get(replicaId)?.lastSpecHash === specHash;
  }

  /**
   * The replica's restarts so far, given its containers now: what was counted, plus what the
   * engine's counts say happened since last seen. A count below the last seen was reset by a start
   * the agent did not make; the restarts after that start are the new count. An unknown count
   * (null) adds nothing and keeps the last one seen. chosen: the container that stands for the
   * replica, whose spec is remembered.
   */
  observe(replicaId: string, containers: readonly ObservedContainer[], chosen: ObservedContainer | undefined): number {
    const tally = this.tallyOf(replicaId);
    if (!tally) return containers.reduce((sum, c) => sum + (c.restartCount ?? 0), 0);
    const seen = new Map<string, number>();
    for (const c of containers) {
      if (seen.size >= MAX_CONTAINERS_PER_REPLICA) break;
      const last = tally.engineCounts.get(c.id);
      if (c.restartCount === null) {
        if (last !== undefined) seen.set(c.id, last);
        continue;
      }
      tally.restarts += last === undefined || c.restartCount < last ? c.restartCount : c.restartCount - last;
      seen.set(c.id, c.restartCount);
    }
    const lastSpecHash = chosen?.specHash ?? tally.lastSpecHash;
    if (lastSpecHash !== tally.lastSpecHash) this.change = 'counted';
    else if (!sameCounts(seen, tally.engineCounts) && this.change === 'none') this.change = 'engine-counts';
    // Replaced, not merged: containers that are gone drop out.
    tally.engineCounts = seen;
    tally.lastSpecHash = lastSpecHash;
    return tally.restarts;
  }

  /** Forgets replicas that are neither assigned nor present: nothing more will happen to them here. */
  retain(replicaIds: ReadonlySet<string>): void {
    for (const id of this.byReplica.keys()) {
      if (replicaIds.has(id)) continue;
      this.byReplica.delete(id);
      this.change = 'counted';
    }
  }

  /** What changed since the last takeChanges. */
  pendingChange(): TallyChange {
    return this.change;
  }

  /** The counts if they changed since the last call, else null. */
  takeChanges(): RestartRecords | null {
    if (this.change === 'none') return null;
    this.change = 'none';
    // fromEntries: own properties even for a replica id such as "__proto__".
    return Object.fromEntries(
      [...this.byReplica].map(([id, t]) => [id, { restarts: t.restarts, engineCounts: Object.fromEntries(t.engineCounts), lastSpecHash: t.lastSpecHash }]),
    );
  }

  private tallyOf(replicaId: string): Tally | undefined {
    let tally = this.byReplica.get(replicaId);
    if (!tally && this.byReplica.size < MAX_TRACKED_REPLICAS) {
      this.byReplica.set(replicaId, (tally = { restarts: 0, engineCounts: new Map(), lastSpecHash: null }));
      this.change = 'counted';
    }
    return tally;
  }
}

function sameCounts(a: ReadonlyMap<string, number>, b: ReadonlyMap<string, number>): boolean {
  if (a.size !== b.size) return false;
  for (const [id, n] of a) if (b.get(id) !== n) return false;
  return true;
}
