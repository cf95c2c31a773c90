/**
 * What happened in the fleet, for `GET /v1/events`: each event numbered, the last ones held in a
 * ring of fixed size (memory never grows with the fleet's activity), and told to subscribers as
 * it happens. In memory only: a hub restart starts a new history.
 */

export type FleetEventType =
  | 'service.created'
  | 'service.updated'
  | 'service.deleted'
  | 'replica.placed'
  | 'replica.started'
  | 'replica.failed'
  | 'replica.moved'
  | 'node.joined'
  | 'node.ready'
  | 'node.not_ready'
  | 'node.unreachable'
  | 'node.lost'
  | 'node.removed';

export interface FleetEvent {
  seq: number;
  /** Wall clock, ISO 8601. */
  time: string;
  type: FleetEventType;
  service?: string;
  replica?: string;
  node?: string;
  nodeName?: string;
  message?: string;
}

export type NewFleetEvent = Omit<FleetEvent, 'seq' | 'time'>;

/**
 * Events held for resuming: a client away for a few seconds during a failover or a rollout of a
 * few thousand replicas resumes without a gap. At about 300 bytes an event that is some 3 MB,
 * small next to what the hub holds for 10,000 agents; a client further behind gets `reset`.
 */
export const EVENT_HISTORY_CAPACITY = 10_000;

/** Seq numbers per millisecond of wall clock between two hub starts that the numbering allows (see firstSeqAt). */
const SEQS_PER_MS = 1000;

/**
 * The seq before the first event of a hub started at `wallMs`: numbers keep growing across hub
 * restarts (unless a run averaged more than SEQS_PER_MS events a millisecond), so that an id kept
 * from an earlier run is older than any this run holds and resumes with `reset`, never with
 * another run's events under the same numbers. Below 2^53 until the year 2255.
 */
export function firstSeqAt(wallMs: number): number {
  return Math.floor(wallMs) * SEQS_PER_MS;
}

/** The events after a seq, as `after` finds them. */
export interface EventsAfter {
  events: FleetEvent[];
  /** The seq asked for is unknown to this history (older than it holds, or not yet given): events were missed. */
  gap: boolean;
}

/** Told the seq of each new event (`at` has it); the event itself is made only when read. */
export type FleetEventListener = (seq: number) => void;

/** A held event not read yet: the fields it was published with, its seq and time kept apart. */
type Unread = NewFleetEvent & { seq?: undefined };

export class FleetEvents {
  /**
   * Each slot holds the fields an event was published with, until the event is first read: then
   * the whole event (seq and time too), so that every reader gets the same object (and an event
   * stream formats it once for all its clients). Most events are never read, and a whole one
   * would cost each one an object of its own beside the caller's, a boxed seq and spill space,
   * some 60 bytes: at the history's capacity, a few for every connected node.
   */
  private readonly ring: Array<FleetEvent | Unread | undefined>;
  /** Wall clock of each slot's event, in ms. */
  private readonly timesMs: Float64Array;
  /** Slot of the oldest event held. */
  private head = 0;
  private held = 0;
  private lastSeq: number;
  private readonly listeners = new Set<FleetEventListener>();
  private readonly wallNowMs: () => number;
  /** The last time made into text, made once per millisecond: formatting a date costs more than the rest of reading. */
  private timeMs = Number.NaN;
  private timeText = '';

  constructor(opts: { capacity?: number; wallNowMs?: () => number; firstSeq?: number } = {}) {
    const capacity = opts.capacity ?? EVENT_HISTORY_CAPACITY;
    if (!(Number.isInteger(capacity) && capacity > 0)) throw new Error(`event history capacity must be a positive integer, got ${capacity}`);
    this.ring = new Array<FleetEvent | Unread | undefined>(capacity);
    this.timesMs = new Float64Array(capacity);
    this.wallNowMs = opts.wallNowMs ?? Date.now;
    this.lastSeq = opts.firstSeq ?? firstSeqAt(this.wallNowMs());
  }

  get capacity(): number {
    return this.ring.length;
  }

  /** The seq of the newest event; before the first, the seq the first one follows. */
  get latestSeq(): number {
    return this.lastSeq;
  }

  /** The seq of the oldest event held; latestSeq + 1 while none is. */
  get oldestSeq(): number {
    return this.lastSeq - this.held + 1;
  }

  /**
   * Numbers the event, holds it (dropping the oldest when full) and tells every subscriber its
   * seq: O(1) plus O(subscribers). `fields` is held as it is: the caller makes a new one per event.
   */
  publish(fields: NewFleetEvent): number {
    const seq = ++this.lastSeq;
    const slot = (this.head + this.held) % this.ring.length;
    this.ring[slot] = fields as Unread;
    this.timesMs[slot] = this.wallNowMs();
    if (this.held < this.ring.length) this.held++;
    else this.head = (this.head + 1) % this.ring.length;
    for (const listener of this.listeners) listener(seq);
    return seq;
  }

  /** The held event with this seq, if it is held: O(1), as seqs are consecutive. */
  at(seq: number): FleetEvent | undefined {
    const offset = seq - this.oldestSeq;
    if (!(offset >= 0 && offset < this.held)) return undefined;
    const slot = (this.head + offset) % this.ring.length;
    const held = this.ring[slot]!;
    if (held.seq !== undefined) return held;
    const event: FleetEvent = { seq, time: this.timeAt(this.timesMs[slot]!), ...held };
    this.ring[slot] = event;
    return event;
  }

  private timeAt(ms: number): string {
    if (ms !== this.timeMs) {
      this.timeMs = ms;
      this.timeText = new Date(ms).toISOString();
    }
    return this.timeText;
  }

  /** At most `limit` events after `seq`, oldest first; all the history holds when `seq` is unknown to it. */
  after(seq: number, limit = Number.POSITIVE_INFINITY): EventsAfter {
    const gap = !this.knows(seq);
    const from = gap ? this.oldestSeq : seq + 1;
    const events: FleetEvent[] = [];
    for (let s = from; s <= this.lastSeq && events.length < limit; s++) events.push(this.at(s)!);
    return { events, gap };
  }

  /** The newest `limit` events, oldest first. */
  newest(limit: number): FleetEvent[] {
    return this.after(Math.max(this.oldestSeq - 1, this.lastSeq - limit), limit).events;
  }

  /**
   * Whether a client that saw every event up to `seq` can go on from here without a gap: the
   * history holds every event after it. A seq above the latest (an earlier run's, or made up) is
   * unknown too.
   */
  knows(seq: number): boolean {
    return Number.isInteger(seq) && seq >= this.oldestSeq - 1 && seq <= this.lastSeq;
  }

  /** Calls `listener` with the seq of every event from now on, synchronously; it must not throw. Returns the call that stops it. */
  subscribe(listener: FleetEventListener): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }
}
