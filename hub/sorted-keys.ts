/**
 * The keys of one store collection in code-unit order, and pages of it that start after a given
 * key. A page is a binary search and a walk forward: a 10,000-node fleet is never copied and sorted
 * per page. The order is built on first use (most hubs are never listed page by page) and then
 * follows the store's changes, one binary-search insert or removal per record that comes or goes.
 *
 * A page after key K holds entries greater than K, whatever came or went before it: an entry that
 * exists from one page to the next is never shown twice nor skipped.
 */
import type { Store, StoreChange } from './store/store.js';

/** One page: the items, and the key the next page starts after (null: this was the last). */
export interface KeyPage<T> {
  items: T[];
  lastKey: string | null;
}

export class SortedKeys {
  private keys: string[] | null = null;

  /** `all`: every key now, read once when the order is first needed. */
  constructor(private readonly all: () => Iterable<string>) {}

  /** Keeps the order of `collection`'s keys as `store` changes. Returns the call that stops it. */
  static following(store: Store, collection: 'nodes' | 'services', all: () => Iterable<string>): { keys: SortedKeys; stop: () => void } {
    const keys = new SortedKeys(all);
    const stop = store.subscribe((change: StoreChange) => {
      if (change.collection !== collection) return;
      if (change.before === undefined && change.after !== undefined) keys.added(change.key);
      else if (change.before !== undefined && change.after === undefined) keys.removed(change.key);
    });
    return { keys, stop };
  }

  added(key: string): void {
    if (this.keys === null) return;
    const i = lowerBound(this.keys, key);
    if (this.keys[i] !== key) this.keys.splice(i, 0, key);
  }

  removed(key: string): void {
    if (this.keys === null) return;
    const i = lowerBound(this.keys, key);
    if (this.keys[i] === key) this.keys.splice(i, 1);
  }

  /**
   * Up to `limit` items after `afterKey` (null: from the first), in key order; `pick` gives a key's
   * item, or undefined to pass it over (filtered out, or gone). `lastKey` is set only when another
   * item follows, so that the last page says so rather than leaving an empty one to fetch.
   */
  page<T>(afterKey: string | null, limit: number, pick: (key: string) => T | undefined): KeyPage<T> {
    const keys = this.ordered();
    const items: T[] = [];
    let lastKey: string | null = null;
    for (let i = afterKey === null ? 0 : upperBound(keys, afterKey); i < keys.length; i++) {
      const key = keys[i] as string;
      const item = pick(key);
      if (item === undefined) continue;
      if (items.length === limit) return { items, lastKey };
      items.push(item);
      lastKey = key;
    }
    return { items, lastKey: null };
  }

  private ordered(): string[] {
    if (this.keys === null) this.keys = [...new Set(this.all())].sort(compareKeys);
    return this.keys;
  }
}

const compareKeys = (a: string, b: string): number => (a < b ? -1 : a > b ? 1 : 0);

/** The first index whose key is not below `key`. */
function lowerBound(keys: readonly string[], key: string): number {
  let lo = 0;
  let hi = keys.length;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    if ((keys[mid] as string) < key) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}

/** The first index whose key is above `key`. */
function upperBound(keys: readonly string[], key: string): number {
  let lo = 0;
  let hi = keys.length;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    if ((keys[mid] as string) <= key) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}
