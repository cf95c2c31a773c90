import type { LogChanges } from './change-log.js';

/**
 * How a collection stores a record whose parts change on their own: its main part under its own
 * key, and each item (a service's placement, a node's generation) as a part record of its own under
 * `<key>/<part id>`, in the record's shard. A write then carries only the parts that changed: one
 * placement of a 20,000-replica service is a line of a few hundred bytes, not the 2 MB record.
 *
 * In memory the record stays whole (callers see one record, and a refused write undoes all of it
 * at once). Parts are the change log's form: a shard file written whole holds each record whole
 * (compact, and the form of versions before parts), its items' places standing for their order keys. Items keep their order through an
 * order key (`seq`) given when an item first appears: kept items keep theirs, new ones go after the
 * last, so that the usual change (kept in place, new ones appended) rewrites nothing else.
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
 * Gives each item of `value` its part id and order key: kept from `previous` while they stay in
 * order, new ones (and any that moved before an earlier one) after the last.
 */
export function placeItems<T>(layout: RecordLayout<T>, value: T, previous: StoredParts | undefined): StoredParts {
  const items = layout.items(value);
  const find = previous ? indexer(previous.ids) : () => -1;
  let next = previous && previous.seqs.length > 0 ? previous.seqs[previous.seqs.length - 1]! + 1 : 0;
  const ids: string[] = [];
  const seqs: number[] = [];
  const used = new Set<string>();
  let last = -1;
  for (let i = 0; i < items.length; i++) {
    const base = layout.itemId(items[i]!);
    let id = base;
    // Two items of one id (never meant to happen) must not share a part: the later one gets its own.
    for (let n = 1; used.has(id); n++) id = `${base}~${n}`;
    const j = find(id, i);
    let seq = j === -1 ? -1 : previous!.seqs[j]!;
    if (seq <= last) seq = next++;
    used.add(id);
    ids.push(id);
    seqs.push(seq);
    last = seq;
  }
  // Unchanged (the usual case for a node, say): keep the one already held rather than a copy of it.
  if (previous && sameList(previous.ids, ids) && sameList(previous.seqs, seqs)) return previous;
  return { ids, seqs };
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
    for (let i = 0; i < afterItems.length; i++) {
      const id = afterParts.ids[i]!;
      const seq = afterParts.seqs[i]!;
      const j = find(id, i);
      if (j !== -1) removed[j] = 0;
      if (j !== -1 && beforeParts!.seqs[j] === seq && sameFields(beforeItems[j]!, afterItems[i]!)) continue;
      out[partKey(key, id)] = part(keyField, partKey(key, id), seq, afterItems[i]!);
    }
  }
  if (beforeParts) for (let j = 0; j < removed.length; j++) if (removed[j] === 1) out[partKey(key, beforeParts.ids[j]!)] = null;
}

/**
 * Lays a shard's stored records out as parts, for its change log to be laid over: a shard file
 * holds each record whole (its items inline, in order: the compact form, and the one of versions
 * before parts), which is the same as parts whose order keys are their places. A reason when the
 * file holds a part record: no version writes one there.
 */
export function explodeWhole<T>(layout: RecordLayout<T>, keyField: string, stored: Record<string, unknown>): string | null {
  const misplaced = partRecordIn(stored);
  if (misplaced !== null) return misplaced;
  for (const [key, whole] of Object.entries(stored)) {
    const record = whole as T;
    const placed = placeItems(layout, record, undefined);
    stored[key] = layout.main(record);
    const items = layout.items(record);
    for (let i = 0; i < items.length; i++) stored[partKey(key, placed.ids[i]!)] = part(keyField, partKey(key, placed.ids[i]!), placed.seqs[i]!, items[i]!);
  }
  return null;
}

/** A reason when a shard file holds a part record: no version writes one there. */
export function partRecordIn(stored: Record<string, unknown>): string | null {
  for (const key of Object.keys(stored)) if (key.includes(PART_SEPARATOR)) return `it holds a part record ${JSON.stringify(key)}, which belongs in a change log`;
  return null;
}

/**
 * Joins the stored records of a shard (its file with its log laid over) into whole records, and
 * where each one's items sit; a reason when a part record is malformed.
 */
export function joinParts<T>(
  layout: RecordLayout<T>,
  stored: Record<string, unknown>,
): { ok: true; records: Record<string, T>; parts: Map<string, StoredParts> } | { ok: false; reason: string } {
  const itemsOf = new Map<string, Array<{ id: string; seq: number; item: object }>>();
  for (const [key, value] of Object.entries(stored)) {
    const at = key.indexOf(PART_SEPARATOR);
    if (at === -1) continue;
    const p = value as Partial<Part>;
    if (typeof p.seq !== 'number' || !Number.isSafeInteger(p.seq) || p.item === null || typeof p.item !== 'object' || Array.isArray(p.item)) {
      return { ok: false, reason: `part record ${JSON.stringify(key)} is malformed` };
    }
    const owner = key.slice(0, at);
    let list = itemsOf.get(owner);
    if (!list) itemsOf.set(owner, (list = []));
    list.push({ id: key.slice(at + 1), seq: p.seq, item: p.item });
  }
  const records: Record<string, T> = {};
  const parts = new Map<string, StoredParts>();
  for (const [key, main] of Object.entries(stored)) {
    if (key.includes(PART_SEPARATOR)) continue;
    const list = itemsOf.get(key) ?? [];
    list.sort((a, b) => a.seq - b.seq);
    records[key] = layout.assemble(
      main as object,
      list.map((x) => x.item),
    );
    parts.set(key, { ids: list.map((x) => x.id), seqs: list.map((x) => x.seq) });
  }
  // Parts whose record is gone are left out: the next whole write of the shard drops them.
  return { ok: true, records, parts };
}

function part(keyField: string, key: string, seq: number, item: object): Part {
  return { [keyField]: key, seq, item };
}

/**
 * Finds an id's index in `ids`, looking first where it is expected (the usual change keeps items in
 * place): the map of all ids is built only once that guess misses.
 */
function indexer(ids: readonly string[]): (id: string, hint: number) => number {
  let byId: Map<string, number> | null = null;
  return (id, hint) => {
    if (ids[hint] === id) return hint;
    if (byId === null) {
      byId = new Map();
      for (let j = 0; j < ids.length; j++) if (!byId.has(ids[j]!)) byId.set(ids[j]!, j);
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
