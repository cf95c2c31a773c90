import type { LogChanges } from './change-log.js';

/**
 * How a collection stores a record whose parts change on their own: its main part under its own
 * key, and each item (a service's placement, a node's generation) as a part record of its own under
 * `<key>/<part id>`, in the record's shard. A write then carries only the parts that changed: one
 * placement of a 20,000-replica service is a line of a few hundred bytes, not the 2 MB record.
 *
 * In memory the record stays whole (callers see one record, and a refused write undoes all of it
 * at once). Parts are the change log's form: a shard file written whole holds each record whole
 * (compact, and the form of versions before parts), its items' places standing for their order
 * keys. Items keep their order through an order key (`seq`, any finite number): items that stay in
 * order keep theirs, and the others get keys between their neighbours' (see placeItems), so that
 * the usual changes (kept in place, new ones appended, a replacement where its predecessor was)
 * rewrite nothing else.
 */
export const PART_SEPARATOR = '/';

export interface RecordLayout<T> {
  /** The record without its items: what its own key stores. */
  main(value: T): object;
  /** Its items, in order. */
  items(value: T): readonly object[];
  /** An item's id, unique within its record (a duplicate gets a part key of its own all the same). */
  itemId(item: object): string;
  /** The record from its main and its items in order. */
  assemble(main: object, items: object[]): T;
}

/** Where the items of a record sit on disk, in item order: each one's part id and order key. */
export interface StoredParts {
  ids: string[];
  seqs: number[];
}

/** A part record as stored: its key (in the collection's key field), its order key and the item. */
type Part = Record<string, unknown> & { seq: number; item: object };

export const partKey = (key: string, id: string): string => `${key}${PART_SEPARATOR}${id}`;

/**
 * Where a one-item record's part sits, one frozen object for all records with the same: every node
 * record's (its target, `target` at 0) and a one-replica service's. An object and two lists of its
 * own cost each of tens of thousands of nodes some 150 bytes. At most MAX_SHARED_PARTS kept.
 */
const MAX_SHARED_PARTS = 256;
const sharedOneItemParts = new Map<string, StoredParts>();

export function sharedParts(parts: StoredParts): StoredParts {
  if (parts.ids.length !== 1 || !Number.isInteger(parts.seqs[0])) return parts;
  const key = `${parts.seqs[0]}${PART_SEPARATOR}${parts.ids[0]}`;
  const known = sharedOneItemParts.get(key);
  if (known !== undefined) return known;
  if (sharedOneItemParts.size >= MAX_SHARED_PARTS) return parts;
  const shared: StoredParts = Object.freeze({ ids: Object.freeze([...parts.ids]) as string[], seqs: Object.freeze([...parts.seqs]) as number[] });
  sharedOneItemParts.set(key, shared);
  return shared;
}

/**
 * Gives each item of `value` its part id and order key. The most items that can keep their keys
 * in order keep them (a longest increasing run: a replacement put where a lost replica was, or one
 * item moved to the front, renumbers nothing else); the others get keys between their kept
 * neighbours (fractions when no integer fits), or after the last. Order keys only order a record's
 * items, so any finite numbers do; a write whole (compaction) gives them their places again.
 */
export function placeItems<T>(layout: RecordLayout<T>, value: T, previous: StoredParts | undefined, previousValue?: T): StoredParts {
  const items = layout.items(value);
  const find = previous ? indexer(previous.ids) : () => -1;
  // The items `previous` places, when known: an item that is the very object at its place there
  // (what a pass keeps as it was) has that place's id, with no lookup (see below).
  const previousItems = previous && previousValue !== undefined ? layout.items(previousValue) : undefined;
  const same = previousItems !== undefined && previousItems.length === previous!.ids.length;
  const ids: string[] = new Array<string>(items.length);
  // Each item's key before this write; NaN for an item new to the record.
  const before: number[] = new Array<number>(items.length);
  // Places of `previous` whose id an item took; ids taken that `previous` does not hold.
  const taken = new Uint8Array(previous ? previous.ids.length : 0);
  const takenNew = new Set<string>();
  // How far the item found last was from its place: a drop or an insertion before it shifts the
  // rest of the list by as much, so the next item is looked for there first.
  let shift = 0;
  for (let i = 0; i < items.length; i++) {
    const item = items[i]!;
    const k = i + shift;
    if (same && k >= 0 && k < previousItems.length && previousItems[k] === item && taken[k] === 0) {
      taken[k] = 1;
      ids[i] = previous!.ids[k]!;
      before[i] = previous!.seqs[k]!;
      continue;
    }
    const base = layout.itemId(item);
    let id = base;
    let j = find(id, k);
    if (j !== -1) shift = j - i;
    // Two items of one id (never meant to happen) must not share a part: the later one gets its
    // own, one that `previous` does not hold either (a later item may keep that one).
    if ((j !== -1 && taken[j] === 1) || (j === -1 && takenNew.has(id))) {
      for (let n = 1; ; n++) {
        id = `${base}~${n}`;
        if (!takenNew.has(id) && find(id, i) === -1) break;
      }
      j = -1;
    }
    if (j === -1) takenNew.add(id);
    else taken[j] = 1;
    ids[i] = id;
    before[i] = j === -1 ? Number.NaN : previous!.seqs[j]!;
  }
  const seqs = orderKeys(before);
  // Unchanged (the usual case for a node, say): keep the one already held rather than a copy of it.
  if (previous && sameList(previous.ids, ids) && sameList(previous.seqs, seqs)) return previous;
  return { ids, seqs };
}

/**
 * Order keys for items whose keys before were `before` (NaN: none): the longest increasing run of
 * them is kept, and the rest fill in between. Keys run out between two neighbours only after about
 * fifty insertions at one place with no whole write between; then every item gets its place.
 */
function orderKeys(before: readonly number[]): number[] {
  const n = before.length;
  const keep = longestIncreasing(before);
  const seqs = new Array<number>(n);
  let lo = Number.NEGATIVE_INFINITY;
  for (let i = 0; i < n; ) {
    if (keep[i] === 1) {
      lo = seqs[i] = before[i]!;
      i++;
      continue;
    }
    // A run of items to number: [i, end), between the kept keys lo and hi.
    let end = i;
    while (end < n && keep[end] !== 1) end++;
    const hi = end < n ? before[end]! : Number.POSITIVE_INFINITY;
    const count = end - i;
    for (let k = 0; k < count; k++) {
      let seq: number;
      if (lo === Number.NEGATIVE_INFINITY && hi === Number.POSITIVE_INFINITY) seq = k;
      else if (hi === Number.POSITIVE_INFINITY) seq = Math.floor(lo) + 1 + k;
      else if (lo === Number.NEGATIVE_INFINITY) seq = Math.ceil(hi) - count + k;
      else if (Number.isInteger(lo) && Number.isInteger(hi) && hi - lo > count) seq = lo + Math.floor(((hi - lo) * (k + 1)) / (count + 1));
      else seq = lo + ((hi - lo) * (k + 1)) / (count + 1);
      if (!(seq > (k === 0 ? lo : seqs[i + k - 1]!) && seq < hi)) return before.map((_, place) => place);
      seqs[i + k] = seq;
    }
    lo = seqs[end - 1]!;
    i = end;
  }
  return seqs;
}

/**
 * Marks (1) the items of a longest strictly increasing run of `keys`, NaN never among them. A run
 * already in order (most writes) is found in one look; otherwise patience sorting, O(n log n).
 */
function longestIncreasing(keys: readonly number[]): Uint8Array {
  const n = keys.length;
  const keep = new Uint8Array(n);
  let last = Number.NEGATIVE_INFINITY;
  let inOrder = true;
  for (let i = 0; i < n && inOrder; i++) {
    const key = keys[i]!;
    if (Number.isNaN(key)) continue;
    if (key <= last) inOrder = false;
    else last = key;
  }
  if (inOrder) {
    for (let i = 0; i < n; i++) if (!Number.isNaN(keys[i]!)) keep[i] = 1;
    return keep;
  }
  // tails[len] is the index ending the best run of length len + 1 found so far.
  const tails: number[] = [];
  const previous = new Int32Array(n).fill(-1);
  for (let i = 0; i < n; i++) {
    const key = keys[i]!;
    if (Number.isNaN(key)) continue;
    let low = 0;
    let high = tails.length;
    while (low < high) {
      const mid = (low + high) >>> 1;
      if (keys[tails[mid]!]! < key) low = mid + 1;
      else high = mid;
    }
    if (low > 0) previous[i] = tails[low - 1]!;
    tails[low] = i;
  }
  for (let i = tails.length > 0 ? tails[tails.length - 1]! : -1; i !== -1; i = previous[i]!) keep[i] = 1;
  return keep;
}

function sameList<V>(a: readonly V[], b: readonly V[]): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}

/**
 * The part records a write of `key` carries, from what the disk holds (`before`, placed as
 * `beforeParts`) to `after` (placed as `afterParts`): the main when it changed, the items added or
 * changed, and null for items (or a record) removed.
 */
export function changedParts<T>(
  layout: RecordLayout<T>,
  keyField: string,
  key: string,
  before: T | undefined,
  beforeParts: StoredParts | undefined,
  after: T | undefined,
  afterParts: StoredParts | undefined,
  out: LogChanges<unknown>,
): void {
  const beforeItems = before === undefined ? [] : layout.items(before);
  const removed = new Uint8Array(beforeParts ? beforeParts.ids.length : 0).fill(1);
  if (after === undefined || afterParts === undefined) {
    out[key] = null;
  } else {
    const main = layout.main(after);
    if (before === undefined || !sameFields(layout.main(before), main)) out[key] = main;
    const afterItems = layout.items(after);
    const find = beforeParts ? indexer(beforeParts.ids) : () => -1;
    let shift = 0;
    for (let i = 0; i < afterItems.length; i++) {
      const id = afterParts.ids[i]!;
      const seq = afterParts.seqs[i]!;
      const j = find(id, i + shift);
      if (j !== -1) shift = j - i;
      if (j !== -1) removed[j] = 0;
      if (j !== -1 && beforeParts!.seqs[j] === seq && sameFields(beforeItems[j]!, afterItems[i]!)) continue;
      out[partKey(key, id)] = part(keyField, partKey(key, id), seq, afterItems[i]!);
    }
  }
  if (beforeParts) for (let j = 0; j < removed.length; j++) if (removed[j] === 1) out[partKey(key, beforeParts.ids[j]!)] = null;
}

/** A reason when a shard file holds a part record: no version writes one there. */
export function partRecordIn(stored: Record<string, unknown>): string | null {
  for (const key of Object.keys(stored)) if (key.includes(PART_SEPARATOR)) return `it holds a part record ${JSON.stringify(key)}, which belongs in a change log`;
  return null;
}

/** One record as a start rebuilds it from its whole form and the log lines over it. */
interface LaidRecord {
  /** Its main part; undefined once a line deletes it (or before one creates it). */
  main: object | undefined;
  /** Its items by part id, in the order they came (the whole record's first, then the lines'). */
  items: Map<string, { seq: number; item: object }>;
}

/** What laying a shard's log over its records gives, or why a part record cannot be read. */
export type LaidLog<T> =
  | {
      ok: true;
      /** The records the log touches, whole again; undefined for one it deleted. */
      records: Map<string, T | undefined>;
      /** Where the items of each of those records sit. */
      parts: Map<string, StoredParts>;
      /** The same records as the log stores them (mains and parts), built when asked for (checks and tests). */
      stored: () => Record<string, unknown>;
    }
  | { ok: false; reason: string };

/**
 * Lays a shard's change log (its lines' entries, in order) over the records of its file (`whole`,
 * each record whole, its items at their places: see the header). Only records a line touches are
 * rebuilt: their items keyed by part id, the lines' parts and deletions applied, then ordered by
 * their keys. A start on a big store rebuilds a 100,000-replica service this way without making a
 * part record of each placement.
 */
export function layLog<T>(layout: RecordLayout<T>, keyField: string, whole: Readonly<Record<string, T>>, entries: ReadonlyArray<LogChanges<unknown>>): LaidLog<T> {
  const laid = new Map<string, LaidRecord>();
  const laidOf = (owner: string): LaidRecord | string => {
    let record = laid.get(owner);
    if (record) return record;
    record = { main: undefined, items: new Map() };
    const value = Object.hasOwn(whole, owner) ? whole[owner] : undefined;
    if (value !== undefined) {
      record.main = layout.main(value);
      const items = layout.items(value);
      const placed = placeItems(layout, value, undefined);
      for (let i = 0; i < items.length; i++) {
        const item = items[i]!;
        if (!isItem(item)) return `part record ${JSON.stringify(partKey(owner, placed.ids[i]!))} is malformed`;
        record.items.set(placed.ids[i]!, { seq: placed.seqs[i]!, item });
      }
    }
    laid.set(owner, record);
    return record;
  };
  for (const entry of entries) {
    for (const [key, value] of Object.entries(entry)) {
      const at = key.indexOf(PART_SEPARATOR);
      const record = laidOf(at === -1 ? key : key.slice(0, at));
      if (typeof record === 'string') return { ok: false, reason: record };
      if (at === -1) {
        record.main = value === null ? undefined : (value as object);
        continue;
      }
      const id = key.slice(at + 1);
      if (value === null) {
        record.items.delete(id);
        continue;
      }
      const p = value as Partial<Part>;
      if (typeof p.seq !== 'number' || !Number.isFinite(p.seq) || !isItem(p.item)) return { ok: false, reason: `part record ${JSON.stringify(key)} is malformed` };
      record.items.set(id, { seq: p.seq, item: p.item });
    }
  }
  const records = new Map<string, T | undefined>();
  const parts = new Map<string, StoredParts>();
  for (const [owner, record] of laid) {
    // Parts whose record is gone are left out: the next whole write of the shard drops them.
    if (record.main === undefined) {
      records.set(owner, undefined);
      continue;
    }
    const list = [...record.items].sort((a, b) => a[1].seq - b[1].seq);
    records.set(
      owner,
      layout.assemble(
        record.main,
        list.map(([, x]) => x.item),
      ),
    );
    parts.set(owner, { ids: list.map(([id]) => id), seqs: list.map(([, x]) => x.seq) });
  }
  const stored = (): Record<string, unknown> => {
    const out: Record<string, unknown> = {};
    for (const [owner, record] of laid) {
      if (record.main !== undefined) out[owner] = record.main;
      for (const [id, { seq, item }] of record.items) out[partKey(owner, id)] = part(keyField, partKey(owner, id), seq, item);
    }
    return out;
  };
  return { ok: true, records, parts, stored };
}

/** What a part's item must be: an object (a placement, a node's target). */
function isItem(item: unknown): item is object {
  return item !== null && typeof item === 'object' && !Array.isArray(item);
}

function part(keyField: string, key: string, seq: number, item: object): Part {
  return { [keyField]: key, seq, item };
}

/** Each id's index, per ids array: arrays of part ids are never changed once made. */
const indexes = new WeakMap<readonly string[], Map<string, number>>();

/** How far around the expected place an id is looked for before the map of all ids is. */
const NEAR_WINDOW = 8;

/**
 * Finds an id's index in `ids`, looking first where it is expected (`hint`: the usual change keeps
 * items in order, shifted by what was dropped or inserted before them), then a few places around
 * it: the map of all ids is built only once those miss (an item new to the record), and once per
 * array (a write looks items up twice: to place them, then to see what changed).
 */
function indexer(ids: readonly string[]): (id: string, hint: number) => number {
  let byId: Map<string, number> | undefined;
  return (id, hint) => {
    if (ids[hint] === id) return hint;
    for (let d = 1; d <= NEAR_WINDOW; d++) {
      if (ids[hint + d] === id) return hint + d;
      if (hint - d >= 0 && ids[hint - d] === id) return hint - d;
    }
    byId ??= indexes.get(ids);
    if (byId === undefined) {
      byId = new Map();
      for (let j = 0; j < ids.length; j++) if (!byId.has(ids[j]!)) byId.set(ids[j]!, j);
      indexes.set(ids, byId);
    }
    return byId.get(id) ?? -1;
  };
}

/** Whether two stored objects are equal: field by field first (the usual unchanged copy), else as JSON. */
function sameFields(a: object, b: object): boolean {
  if (a === b) return true;
  const x = a as Record<string, unknown>;
  const y = b as Record<string, unknown>;
  const keys = Object.keys(x);
  if (keys.length === Object.keys(y).length && keys.every((k) => x[k] === y[k])) return true;
  return JSON.stringify(a) === JSON.stringify(b);
}
