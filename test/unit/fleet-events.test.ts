import { describe, expect, it } from 'vitest';
import { FleetEvents, firstSeqAt } from '../../hub/events/fleet-events.js';

const T0 = Date.parse('2026-12-01T10:00:00.000Z');

function history(capacity: number) {
  let now = T0;
  const events = new FleetEvents({ capacity, wallNowMs: () => now, firstSeq: 100 });
  return {
    events,
    tick: (ms: number) => (now += ms),
    publish: (n: number) => {
      for (let i = 0; i < n; i++) events.publish({ type: 'node.ready', node: `n${i}` });
    },
  };
}

describe('the fleet events history', () => {
  it('numbers events one after another from the first seq, with the wall time', () => {
    const { events, tick, publish } = history(5);
    expect([events.latestSeq, events.oldestSeq]).toEqual([100, 101]);
    publish(1);
    tick(1500);
    const second = events.publish({ type: 'node.lost', node: 'n9', nodeName: 'edge-9' });
    expect(events.after(100).events).toEqual([
      { seq: 101, time: '2026-12-01T10:00:00.000Z', type: 'node.ready', node: 'n0' },
      { seq: 102, time: '2026-12-01T10:00:01.500Z', type: 'node.lost', node: 'n9', nodeName: 'edge-9' },
    ]);
    expect(second).toBe(102);
  });

  it('holds the last `capacity` events, and says when a seq asked for is no longer held', () => {
    const { events, publish } = history(5);
    publish(12);
    expect([events.oldestSeq, events.latestSeq]).toEqual([108, 112]);
    expect(events.after(107)).toMatchObject({ gap: false });
    expect(events.after(107).events.map((e) => e.seq)).toEqual([108, 109, 110, 111, 112]);
    expect(events.after(110).events.map((e) => e.seq)).toEqual([111, 112]);
    expect(events.after(112)).toEqual({ events: [], gap: false });
    // Older than held: everything held, and a gap.
    expect(events.after(106)).toMatchObject({ gap: true });
    expect(events.after(106).events.map((e) => e.seq)).toEqual([108, 109, 110, 111, 112]);
    // Above the latest (another run's, or made up): unknown as well.
    expect(events.knows(113)).toBe(false);
    expect(events.knows(1.5)).toBe(false);
    expect(events.after(108, 2).events.map((e) => e.seq)).toEqual([109, 110]);
    expect(events.newest(2).map((e) => e.seq)).toEqual([111, 112]);
    expect(events.newest(50).map((e) => e.seq)).toEqual([108, 109, 110, 111, 112]);
    expect(events.at(107)).toBeUndefined();
    expect(events.at(112)?.node).toBe('n11');
  });

  it('gives every reader of an event the same object, each with its own time, in whatever order they read', () => {
    const { events, tick } = history(4);
    const fields = { type: 'node.ready', node: 'n1' } as const;
    events.publish(fields);
    tick(2);
    events.publish({ type: 'node.lost', node: 'n2' });
    const later = events.at(102)!;
    const earlier = events.at(101)!;
    expect([earlier.time, later.time]).toEqual(['2026-12-01T10:00:00.000Z', '2026-12-01T10:00:00.002Z']);
    expect(events.at(101)).toBe(earlier);
    expect(events.after(100).events[0]).toBe(earlier);
    // The publisher's fields are not changed: the event is a whole of its own.
    expect(fields).toEqual({ type: 'node.ready', node: 'n1' });
    expect(earlier).toEqual({ seq: 101, time: '2026-12-01T10:00:00.000Z', type: 'node.ready', node: 'n1' });
  });

  it('tells subscribers each event as it is published, until they stop', () => {
    const { events, publish } = history(3);
    const seen: number[] = [];
    const stop = events.subscribe((seq) => seen.push(seq));
    publish(2);
    stop();
    publish(1);
    expect(seen).toEqual([101, 102]);
  });

  it('starts each run above the seqs of any earlier run that averaged under 1,000 events a millisecond', () => {
    const first = firstSeqAt(T0);
    // A run of a minute with 50 million events still ends below the next run's first seq.
    expect(first + 50_000_000).toBeLessThan(firstSeqAt(T0 + 60_000));
    expect(Number.isSafeInteger(firstSeqAt(Date.parse('2200-01-01T00:00:00Z')))).toBe(true);
    expect(new FleetEvents({ wallNowMs: () => T0 }).latestSeq).toBe(first);
  });
});
