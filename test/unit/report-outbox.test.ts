import { afterEach, describe, expect, it, vi } from 'vitest';
import { ReportOutbox } from '../../agent/reconciler/report-outbox.js';
import type { ReplicaReport } from '../../shared/protocol.js';

function report(replicaId: string, state: ReplicaReport['state'] = 'running'): ReplicaReport {
  return { replicaId, service: 'web', state, specHash: 'h', containerId: `c-${replicaId}`, error: null, restarts: 0 };
}

afterEach(() => {
  vi.useRealTimers();
});

/** An outbox on fake timers; `frames` holds what it sent, as [replicaId, state] pairs. */
function outbox(windowMs: number, maxPerFrame: number) {
  vi.useFakeTimers();
  const frames: Array<Array<[string, string]>> = [];
  const box = new ReportOutbox({
    windowMs,
    maxPerFrame,
    send: (reports) => frames.push(reports.map((r) => [r.replicaId, r.state])),
    nowMs: () => Date.now(),
  });
  return { box, frames };
}

describe('ReportOutbox', () => {
  it('sends the first change at once, and the changes of one window together, each replica as it last was', () => {
    const { box, frames } = outbox(250, 100);
    box.push([report('r1', 'starting')]);
    expect(frames).toEqual([[['r1', 'starting']]]);

    box.push([report('r2', 'starting')]);
    vi.advanceTimersByTime(100);
    box.push([report('r2', 'running'), report('r1', 'running')]);
    box.push([report('r3', 'failed')]);
    expect(frames).toHaveLength(1);
    vi.advanceTimersByTime(149);
    expect(frames).toHaveLength(1);
    vi.advanceTimersByTime(1);
    expect(frames[1]).toEqual([
      ['r2', 'running'],
      ['r1', 'running'],
      ['r3', 'failed'],
    ]);
    expect(box.size).toBe(0);
  });

  it('never sends two frames within a window, nor more reports in one than allowed', () => {
    const { box, frames } = outbox(100, 3);
    const sentAt: number[] = [];
    box.push(Array.from({ length: 10 }, (_, i) => report(`r${i}`)));
    sentAt.push(Date.now());
    for (let t = 0; t < 500; t += 10) {
      vi.advanceTimersByTime(10);
      if (frames.length > sentAt.length) sentAt.push(Date.now());
    }
    expect(frames.map((f) => f.length)).toEqual([3, 3, 3, 1]);
    expect(frames.flat().map(([id]) => id)).toEqual(Array.from({ length: 10 }, (_, i) => `r${i}`));
    for (let i = 1; i < sentAt.length; i++) expect(sentAt[i]! - sentAt[i - 1]!).toBeGreaterThanOrEqual(100);
  });

  it('sends nothing once closed', () => {
    const { box, frames } = outbox(100, 10);
    box.push([report('r1')]);
    box.push([report('r2')]);
    box.close();
    box.push([report('r3')]);
    vi.advanceTimersByTime(1_000);
    expect(frames).toEqual([[['r1', 'running']]]);
  });
});
