/**
 * Slots for the hub's per-node soft state: one map from node id to a small integer, shared by the
 * tables that keep something for every node (liveness, conditions). Each table holds its values
 * in columns indexed by slot (typed arrays for numbers) rather than an object per node in a map
 * of its own: at tens of thousands of nodes, an object with boxed times and a hash-table entry
 * per table cost some 150 bytes a node more than the columns do.
 *
 * A table claims a node's slot with `hold` and gives it up with `release`; the slot is free once
 * no table holds it, and may then go to another node. A table that keeps a slot beyond a call
 * (a connection's handle) checks `idAt` before it writes through it.
 */
export class NodeSlots {
  private readonly byId = new Map<string, number>();
  private ids: Array<string | undefined> = [];
  /** Per slot, a bit for each table that holds it. */
  private held = new Uint8Array(INITIAL_CAPACITY);
  private readonly free: number[] = [];
  private used = 0;
  private readonly tables: Array<(capacity: number) => void> = [];

  /** Slots given out so far (a table's columns cover at least this many). */
  get capacity(): number {
    return this.held.length;
  }

  /** Slots in use: the upper bound of a scan over every slot. */
  get end(): number {
    return this.used;
  }

  /** Adds a table: `grow` is called at once and each time the slots outgrow its columns; returns the table's bit. */
  register(grow: (capacity: number) => void): number {
    if (this.tables.length >= MAX_TABLES) throw new Error(`at most ${MAX_TABLES} tables share node slots`);
    this.tables.push(grow);
    grow(this.capacity);
    return 1 << (this.tables.length - 1);
  }

  /** The node's slot, or -1 if no table holds anything of it (with `bit`: if that table does not hold it). */
  slotOf(nodeId: string, bit?: number): number {
    const slot = this.byId.get(nodeId);
    if (slot === undefined || (bit !== undefined && (this.held[slot]! & bit) === 0)) return -1;
    return slot;
  }

  /** The node whose slot this is, or undefined if it is free. */
  idAt(slot: number): string | undefined {
    return this.ids[slot];
  }

  /** Whether the table of `bit` holds the slot. */
  holds(slot: number, bit: number): boolean {
    return (this.held[slot]! & bit) !== 0;
  }

  /** The node's slot, held for the table of `bit` from now on (given the node now if it had none). */
  hold(nodeId: string, bit: number): number {
    let slot = this.byId.get(nodeId);
    if (slot === undefined) {
      slot = this.free.pop() ?? this.used++;
      if (slot >= this.capacity) this.grow();
      this.byId.set(nodeId, slot);
      this.ids[slot] = nodeId;
    }
    this.held[slot]! |= bit;
    return slot;
  }

  /** The table of `bit` holds the slot no more; free once no table does. */
  release(slot: number, bit: number): void {
    const id = this.ids[slot];
    if (id === undefined) return;
    this.held[slot]! &= ~bit;
    if (this.held[slot] !== 0) return;
    this.byId.delete(id);
    this.ids[slot] = undefined;
    this.free.push(slot);
  }

  private grow(): void {
    this.held = grownColumn(this.held, this.capacity * 2);
    for (const grow of this.tables) grow(this.held.length);
  }
}

/**
 * One value per node, by slot: what a Map from node id would hold, at a column's cost (a
 * reference per slot) rather than a hash-table entry per node.
 */
export class NodeValues<T> {
  private readonly bit: number;
  private readonly values: Array<T | undefined> = [];
  private count = 0;

  constructor(private readonly slots: NodeSlots) {
    // A plain array grows by itself: nothing to do when the slots do.
    this.bit = slots.register(() => undefined);
  }

  get size(): number {
    return this.count;
  }

  get(nodeId: string): T | undefined {
    const slot = this.slots.slotOf(nodeId, this.bit);
    return slot < 0 ? undefined : this.values[slot];
  }

  set(nodeId: string, value: T): void {
    if (this.slots.slotOf(nodeId, this.bit) < 0) this.count++;
    this.values[this.slots.hold(nodeId, this.bit)] = value;
  }

  delete(nodeId: string): boolean {
    const slot = this.slots.slotOf(nodeId, this.bit);
    if (slot < 0) return false;
    this.values[slot] = undefined;
    this.count--;
    this.slots.release(slot, this.bit);
    return true;
  }

  /** Every value held, in slot order (not the order they were set in). */
  *each(): Generator<T> {
    for (let slot = 0; slot < this.slots.end; slot++) if (this.slots.holds(slot, this.bit)) yield this.values[slot]!;
  }
}

const INITIAL_CAPACITY = 64;
const MAX_TABLES = 8;

type Column = Uint8Array<ArrayBuffer> | Int32Array<ArrayBuffer> | Float64Array<ArrayBuffer>;

/** A column of `capacity` of the same kind, `old`'s values first and zeros after them. */
export function grownColumn<C extends Column>(old: C, capacity: number): C {
  const next = new (old.constructor as new (length: number) => C)(capacity);
  next.set(old);
  return next;
}

/** A Float64Array of `capacity` with `old`'s values first and NaN (none) after them. */
export function grownTimes(old: Float64Array<ArrayBuffer>, capacity: number): Float64Array<ArrayBuffer> {
  return grownColumn(old, capacity).fill(Number.NaN, old.length);
}
