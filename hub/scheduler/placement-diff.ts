/**
 * What differs between two placement lists of one service, in a walk that costs what changed.
 *
 * A pass keeps placements in their order, drops some (a lost node's replicas move to the end as
 * hand-overs), and appends new ones. Comparing position by position then finds every position
 * after the first drop different: during a failover of a 100,000-replica service, each pass handed
 * its readers (the dispatcher's index, the events) the whole list as changed. This walk stays in
 * step by replica id instead: at a mismatch it looks a few places ahead on each side for where the
 * lists meet again (further, by id, when a run of drops or insertions is longer than that), so
 * that a drop or an insertion costs itself, not the rest of the list.
 */
import type { Placement } from './types.js';

/** How far ahead a mismatch looks for where the lists meet again before it asks each list's index by id. */
const RESYNC_WINDOW = 8;

/**
 * Calls `gone` for every placement of `olds` and `come` for every one of `news` that is not paired
 * with an equal one (same replica id, and `same` true) in a walk that keeps both lists in order.
 * Whatever the lists hold, every placement that is not so paired is passed on, so a reader that
 * resolves gone and come by replica id (a replica that left one place and came to another) sees
 * every change; the window only decides how few placements are passed on. Duplicate ids within a
 * list (never in the planner's output) are passed on as any other.
 */
export function diffPlacements(
  olds: readonly Placement[],
  news: readonly Placement[],
  same: (a: Placement, b: Placement) => boolean,
  gone: (a: Placement) => void,
  come: (b: Placement) => void,
): void {
  let i = 0;
  let j = 0;
  // Each list's index by id, made only when a mismatch is not resolved within the window (a run
  // of drops longer than it: a rolling update's batch handed over, half a fleet lost at once).
  let oldIndex: Map<string, number> | null = null;
  let newIndex: Map<string, number> | null = null;
  while (i < olds.length && j < news.length) {
    const a = olds[i]!;
    const b = news[j]!;
    if (a.replicaId === b.replicaId) {
      if (a !== b && !same(a, b)) {
        gone(a);
        come(b);
      }
      i++;
      j++;
      continue;
    }
    let skipOlds = aheadIn(olds, i, b.replicaId);
    let skipNews = aheadIn(news, j, a.replicaId);
    if (skipOlds === 0 && skipNews === 0) {
      oldIndex ??= indexFrom(olds, i);
      newIndex ??= indexFrom(news, j);
      skipOlds = distanceAfter(oldIndex, i, b.replicaId);
      skipNews = distanceAfter(newIndex, j, a.replicaId);
    }
    if (skipOlds > 0 && (skipNews === 0 || skipOlds <= skipNews)) {
      // Dropped from here (or moved later): the olds before the meeting point.
      for (const end = i + skipOlds; i < end; i++) gone(olds[i]!);
    } else if (skipNews > 0) {
      // Inserted here: the news before the meeting point.
      for (const end = j + skipNews; j < end; j++) come(news[j]!);
    } else {
      gone(a);
      come(b);
      i++;
      j++;
    }
  }
  for (; i < olds.length; i++) gone(olds[i]!);
  for (; j < news.length; j++) come(news[j]!);
}

/**
 * Each id's first place at or after `from`: the walk never looks behind where it stands, so the
 * places before are left out (a failover's first long mismatch can be far down a 100,000-replica
 * list). Made backwards, so that an id's first place is the one that stays with one map operation
 * per place: in a failover's passes this map was most of the walk's cost.
 */
function indexFrom(list: readonly Placement[], from: number): Map<string, number> {
  const index = new Map<string, number>();
  for (let k = list.length - 1; k >= from; k--) index.set(list[k]!.replicaId, k);
  return index;
}

/** How many places after `from` the id's first place is; 0 when it is not after `from`. */
function distanceAfter(index: ReadonlyMap<string, number>, from: number, replicaId: string): number {
  const at = index.get(replicaId);
  return at !== undefined && at > from ? at - from : 0;
}

/** How many places after `from` in `list` the id is, within the window; 0 when it is not there. */
function aheadIn(list: readonly Placement[], from: number, replicaId: string): number {
  const end = Math.min(list.length, from + 1 + RESYNC_WINDOW);
  for (let k = from + 1; k < end; k++) if (list[k]!.replicaId === replicaId) return k - from;
  return 0;
}
