/**
 * The replica reports on their way to the hub, coalesced into status frames: a replica that
 * changes several times within one window goes out once, as it last was; at most one frame goes
 * out per window, each of at most maxPerFrame reports (the rest wait for the next windows, oldest
 * first). The first change after a quiet window goes out at once, so a single change is not held
 * back for nothing.
 *
 * Why a window rather than a frame per change: a node bringing up 700 containers would otherwise
 * send 700 frames, each one a message the hub handles on its hot path; why not only one frame per
 * pass: a pass over 700 slow starts takes minutes, and containers already serving would show as
 * not running at the hub for all that time.
 *
 * Holds one report per replica: as many as the node reports on (its assigned replicas and the
 * containers it still has), never more.
 */
import type { ReplicaReport } from '../../shared/protocol.js';

export interface ReportOutboxOptions {
  /** The least time between two frames. */
  windowMs: number;
  /** Reports one frame may carry (the protocol's limit). */
  maxPerFrame: number;
  /** Sends one frame; must not throw. */
  send: (reports: ReplicaReport[]) => void;
  /** Monotonic time; the window runs on real timers, so tests do not replace it with a fake clock. */
  nowMs?: () => number;
}

export class ReportOutbox {
  /** The newest unsent report per replica, in the order they first waited. */
  private readonly waiting = new Map<string, ReplicaReport>();
  private lastSentAtMs = -Infinity;
  private timer: NodeJS.Timeout | null = null;
  private closed = false;
  private readonly nowMs: () => number;

  constructor(private readonly opts: ReportOutboxOptions) {
    if (opts.maxPerFrame < 1) throw new Error('invariant: a frame carries at least one report');
    this.nowMs = opts.nowMs ?? (() => performance.now());
  }

  /** Queues reports; a newer one of a replica replaces the one waiting. */
  push(reports: Iterable<ReplicaReport>): void {
    if (this.closed) return;
    for (const r of reports) this.waiting.set(r.replicaId, r);
    this.schedule();
  }

  /** Reports waiting to go out. */
  get size(): number {
    return this.waiting.size;
  }

  /** Drops what waits and sends nothing more (the loop stopped; the next hello says it all). */
  close(): void {
    this.closed = true;
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
    this.waiting.clear();
  }

  private schedule(): void {
    if (this.timer || this.closed || this.waiting.size === 0) return;
    const dueInMs = this.lastSentAtMs + this.opts.windowMs - this.nowMs();
    if (dueInMs <= 0) return this.sendNow();
    this.timer = setTimeout(() => {
      this.timer = null;
      this.sendNow();
    }, Math.ceil(dueInMs));
    this.timer.unref();
  }

  private sendNow(): void {
    if (this.closed) return;
    const frame: ReplicaReport[] = [];
    for (const [id, report] of this.waiting) {
      if (frame.length >= this.opts.maxPerFrame) break;
      frame.push(report);
      this.waiting.delete(id);
    }
    this.lastSentAtMs = this.nowMs();
    if (frame.length > 0) this.opts.send(frame);
    this.schedule();
  }
}
