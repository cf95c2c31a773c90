import { describe, expect, it } from 'vitest';
import { diskChangedMeaningfully, NodeConditionsTracker, type ConditionTimers } from '../../agent/node-conditions.js';
import { isDiskLow } from '../../shared/protocol.js';
import type { DiskUsage, NodeConditions } from '../../shared/protocol.js';

const GiB = 1024 ** 3;
const MiB = 1024 ** 2;

/** A clock and timers that move only when the test says. */
class FakeTime implements ConditionTimers {
  nowMs = 0;
  private nextId = 1;
  private readonly pending = new Map<number, { atMs: number; fn: () => void }>();

  readonly clock = { nowMs: () => this.nowMs };

  setTimeout(fn: () => void, ms: number): unknown {
    const id = this.nextId++;
    this.pending.set(id, { atMs: this.nowMs + ms, fn });
    return id;
  }

  clearTimeout(handle: unknown): void {
    this.pending.delete(handle as number);
  }

  get pendingTimers(): number {
    return this.pending.size;
  }

  advance(ms: number): void {
    const endMs = this.nowMs + ms;
    for (;;) {
      const due = [...this.pending.entries()].filter(([, t]) => t.atMs <= endMs).sort((a, b) => a[1].atMs - b[1].atMs)[0];
      if (!due) break;
      this.pending.delete(due[0]);
      this.nowMs = due[1].atMs;
      due[1].fn();
    }
    this.nowMs = endMs;
  }
}

const COALESCE_MS = 500;
const MIN_FRAME_INTERVAL_MS = 3_000;

function setup(opts: { connected?: boolean } = {}) {
  const time = new FakeTime();
  const frames: NodeConditions[] = [];
  const link = { connected: opts.connected ?? true };
  const tracker = new NodeConditionsTracker({
    send: (conditions) => {
      if (!link.connected) return false;
      frames.push(structuredClone(conditions));
      return true;
    },
    clock: time.clock,
    timers: time,
    coalesceMs: COALESCE_MS,
    minFrameIntervalMs: MIN_FRAME_INTERVAL_MS,
  });
  // The agent pings the engine before its first hello; here it answered.
  tracker.setEngine(true, null);
  return { time, frames, link, tracker };
}

const disk = (path: string, totalBytes: number, freeBytes: number): DiskUsage => ({ path, totalBytes, freeBytes });

describe('node conditions tracker', () => {
  it('starts with the engine not yet checked and the (absent) target cache current', () => {
    const tracker = new NodeConditionsTracker({ send: () => true });
    expect(tracker.current()).toEqual({
      engine: { available: false, error: 'not checked yet' },
      targetCache: { current: true, error: null },
      dataDisk: null,
      engineDisk: null,
    });
  });

  it('gives the hello the current conditions, and sends nothing while nothing changes', () => {
    const { time, frames, tracker } = setup();
    tracker.setEngine(false, 'connect ENOENT /var/run/docker.sock');
    expect(tracker.forHello().engine).toEqual({ available: false, error: 'connect ENOENT /var/run/docker.sock' });
    tracker.connected();
    time.advance(60_000);
    expect(frames).toEqual([]);
  });

  it('sends a change as one frame after a short window, coalescing the changes within it', () => {
    const { time, frames, tracker } = setup();
    tracker.forHello();
    tracker.connected();
    tracker.setEngine(false, 'docker ping: the engine did not answer within 3 s');
    time.advance(COALESCE_MS / 2);
    tracker.setTargetCache(false, 'ENOSPC: no space left on device');
    expect(frames).toEqual([]);
    time.advance(COALESCE_MS);
    expect(frames).toHaveLength(1);
    expect(frames[0]!.engine).toEqual({ available: false, error: 'docker ping: the engine did not answer within 3 s' });
    expect(frames[0]!.targetCache).toEqual({ current: false, error: 'ENOSPC: no space left on device' });
    time.advance(60_000);
    expect(frames).toHaveLength(1);
  });

  it('sends nothing for a change undone within the window', () => {
    const { time, frames, tracker } = setup();
    tracker.forHello();
    tracker.setEngine(false, 'connect ECONNREFUSED');
    tracker.setEngine(true, null);
    time.advance(10_000);
    expect(frames).toEqual([]);
  });

  it('sends at most one frame per interval, with the state at the time it goes', () => {
    const { time, frames, tracker } = setup();
    tracker.forHello();
    tracker.setEngine(false, 'gone');
    time.advance(COALESCE_MS);
    expect(frames).toHaveLength(1);
    tracker.setEngine(true, null);
    time.advance(MIN_FRAME_INTERVAL_MS - 1);
    expect(frames).toHaveLength(1);
    time.advance(1);
    expect(frames.map((f) => f.engine.available)).toEqual([false, true]);
    // A flap back and forth before its frame is due leaves the hub's picture right: nothing to say.
    time.advance(MIN_FRAME_INTERVAL_MS);
    tracker.setEngine(false, 'again');
    tracker.setEngine(true, null);
    time.advance(60_000);
    expect(frames).toHaveLength(2);
  });

  it('queues nothing while disconnected: the next hello carries the state', () => {
    const { time, frames, link, tracker } = setup({ connected: false });
    tracker.forHello();
    tracker.setEngine(false, 'gone');
    time.advance(60_000);
    expect(frames).toEqual([]);
    link.connected = true;
    expect(tracker.forHello().engine.available).toBe(false);
    tracker.connected();
    time.advance(60_000);
    expect(frames).toEqual([]);
  });

  it('sends a change made between the hello and the welcome once connected', () => {
    const { time, frames, link, tracker } = setup({ connected: false });
    tracker.forHello();
    tracker.setEngine(false, 'gone');
    time.advance(COALESCE_MS); // the link is not up yet: dropped
    link.connected = true;
    tracker.connected();
    time.advance(COALESCE_MS);
    expect(frames.map((f) => f.engine.available)).toEqual([false]);
  });

  it('sends no frame for a new error text alone, but the next frame carries it', () => {
    const { time, frames, tracker } = setup();
    tracker.setEngine(false, 'first');
    tracker.forHello();
    tracker.setEngine(false, 'second');
    time.advance(10_000);
    expect(frames).toEqual([]);
    tracker.setTargetCache(false, 'ENOSPC');
    time.advance(COALESCE_MS);
    expect(frames[0]!.engine.error).toBe('second');
  });

  it('sends disks only when free space moved by a step or crossed the low mark', () => {
    const { time, frames, tracker } = setup();
    tracker.setDisks(disk('/var/lib/tether-agent', 100 * GiB, 50 * GiB), null);
    tracker.forHello();
    // 100 MiB less: under both 1% (1 GiB) and 256 MiB.
    tracker.setDisks(disk('/var/lib/tether-agent', 100 * GiB, 50 * GiB - 100 * MiB), null);
    time.advance(10_000);
    expect(frames).toEqual([]);
    // Another 200 MiB: 300 MiB since the hub last heard, past 256 MiB.
    tracker.setDisks(disk('/var/lib/tether-agent', 100 * GiB, 50 * GiB - 300 * MiB), null);
    time.advance(COALESCE_MS);
    expect(frames.map((f) => f.dataDisk?.freeBytes)).toEqual([50 * GiB - 300 * MiB]);
    // The engine's storage appears (the engine came back): a change of its own.
    tracker.setDisks(disk('/var/lib/tether-agent', 100 * GiB, 50 * GiB - 300 * MiB), disk('/var/lib/docker', 8 * GiB, 4 * GiB));
    time.advance(MIN_FRAME_INTERVAL_MS);
    expect(frames).toHaveLength(2);
    expect(frames[1]!.engineDisk).toEqual(disk('/var/lib/docker', 8 * GiB, 4 * GiB));
  });

  it('arms nothing and sends nothing after stop()', () => {
    const { time, frames, tracker } = setup();
    tracker.forHello();
    tracker.stop();
    tracker.setTargetCache(false, 'disk full');
    tracker.setEngine(false, 'gone');
    time.advance(60_000);
    expect(frames).toEqual([]);
    expect(time.pendingTimers).toBe(0);
  });

  it('sends a small move that crosses the low mark', () => {
    const { time, frames, tracker } = setup();
    // 8 GiB: the low mark is 10%, 819.2 MiB; the step is 1%, 81.92 MiB.
    tracker.setDisks(null, disk('/var/lib/docker', 8 * GiB, 830 * MiB));
    tracker.forHello();
    tracker.setDisks(null, disk('/var/lib/docker', 8 * GiB, 810 * MiB));
    time.advance(COALESCE_MS);
    expect(frames.map((f) => f.engineDisk?.freeBytes)).toEqual([810 * MiB]);
  });
});

describe('disk thresholds', () => {
  it('the low mark is 10% of the total, at most 2 GiB', () => {
    expect(isDiskLow(disk('/', 8 * GiB, 0.09 * 8 * GiB))).toBe(true);
    expect(isDiskLow(disk('/', 8 * GiB, 0.11 * 8 * GiB))).toBe(false);
    expect(isDiskLow(disk('/', 1000 * GiB, 3 * GiB))).toBe(false);
    expect(isDiskLow(disk('/', 1000 * GiB, 1.9 * GiB))).toBe(true);
  });

  it('a meaningful step is 1% of the total, at most 256 MiB; a new path or filesystem always counts', () => {
    expect(diskChangedMeaningfully(disk('/', 8 * GiB, 4 * GiB), disk('/', 8 * GiB, 4 * GiB - 80 * MiB))).toBe(false);
    expect(diskChangedMeaningfully(disk('/', 8 * GiB, 4 * GiB), disk('/', 8 * GiB, 4 * GiB - 90 * MiB))).toBe(true);
    expect(diskChangedMeaningfully(disk('/', 1000 * GiB, 400 * GiB), disk('/', 1000 * GiB, 400 * GiB + 300 * MiB))).toBe(true);
    expect(diskChangedMeaningfully(disk('/', 8 * GiB, 4 * GiB), disk('/data', 8 * GiB, 4 * GiB))).toBe(true);
    expect(diskChangedMeaningfully(null, disk('/', 8 * GiB, 4 * GiB))).toBe(true);
    expect(diskChangedMeaningfully(null, null)).toBe(false);
  });

  it('a total that moves by less than a step is the same filesystem (one that grows or reserves a little)', () => {
    expect(diskChangedMeaningfully(disk('/', 8 * GiB, 4 * GiB), disk('/', 8 * GiB + 4 * MiB, 4 * GiB))).toBe(false);
    expect(diskChangedMeaningfully(disk('/', 8 * GiB, 4 * GiB), disk('/', 8 * GiB - 90 * MiB, 4 * GiB))).toBe(true);
    expect(diskChangedMeaningfully(disk('/', 8 * GiB, 4 * GiB), disk('/', 16 * GiB, 4 * GiB))).toBe(true);
  });
});
