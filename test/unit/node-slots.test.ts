import { describe, expect, it } from 'vitest';
import { NodeConditionsTable } from '../../hub/node-conditions.js';
import { NodeSlots, NodeValues } from '../../hub/node-slots.js';
import type { NodeConditions } from '../../shared/protocol.js';
import { testDetector } from '../helpers/test-detector.js';

const engineDown: NodeConditions = {
  engine: { available: false, error: 'no socket' },
  targetCache: { current: true, error: null },
  dataDisk: null,
  engineDisk: null,
};

function fleet() {
  const slots = new NodeSlots();
  const { clock, detector } = testDetector({ slots });
  const conditions = new NodeConditionsTable(slots);
  return { clock, slots, detector, conditions };
}

describe('node slots shared by the failure detector and the conditions table', () => {
  it('give one slot per node to both tables, and free it only once neither holds it', () => {
    const { slots, detector, conditions } = fleet();
    const handle = detector.connected('n1');
    conditions.report('n1', engineDown, 5);
    expect(slots.slotOf('n1')).toBe(handle);
    detector.forget('n1');
    // The conditions still hold it: the node keeps its slot, and what it reported.
    expect(slots.slotOf('n1')).toBe(handle);
    expect(conditions.get('n1')?.engine.error).toBe('no socket');
    expect(detector.liveness('n1')).toBeUndefined();
    conditions.forget('n1');
    expect(slots.slotOf('n1')).toBe(-1);
    expect(conditions.get('n1')).toBeUndefined();
  });

  it('give a freed slot to the next node with nothing of the one before', () => {
    const { clock, slots, detector, conditions } = fleet();
    const first = detector.connected('n1', false);
    conditions.report('n1', engineDown, 5);
    detector.forget('n1');
    conditions.forget('n1');
    clock.now += 1000;
    const second = detector.connected('n2');
    expect(second).toBe(first);
    expect(slots.idAt(second)).toBe('n2');
    expect(detector.liveness('n2')).toEqual({ connected: true, lastSeenMs: clock.now, connectedSinceMs: clock.now, downSinceMs: null, reconnects: 0, engineDownSinceMs: null });
    expect(detector.state('n2')).toBe('ready');
    expect(conditions.get('n2')).toBeUndefined();
    expect(conditions.counts(['n2']).engine_unavailable).toBe(0);
  });

  it("never let a removed node's connection speak for the node that has its slot now", () => {
    const { clock, detector } = fleet();
    const stale = detector.connected('n1');
    detector.forget('n1');
    detector.connected('n2');
    const seenBefore = detector.liveness('n2')!.lastSeenMs;
    clock.now += 20_000;
    // The removed node's last frames, read before its connection closed.
    detector.seen('n1', stale);
    detector.engineReported('n1', stale, false);
    expect(detector.liveness('n2')!.lastSeenMs).toBe(seenBefore);
    expect(detector.state('n2')).toBe('ready');
    expect(detector.sweep(['n2'], [60_000]).silent).toEqual(['n2']);
  });

  it('grow past their first columns with every node kept', () => {
    const { clock, slots, detector, conditions } = fleet();
    const ids = Array.from({ length: 1000 }, (_, i) => `n${i}`);
    for (const [i, id] of ids.entries()) {
      clock.now += 1;
      detector.connected(id, i % 2 === 0);
      if (i % 3 === 0) conditions.report(id, engineDown, clock.now);
    }
    expect(slots.capacity).toBeGreaterThanOrEqual(1000);
    expect(detector.liveness('n0')!.lastSeenMs).toBe(1_000_001);
    expect(detector.liveness('n999')!.lastSeenMs).toBe(1_001_000);
    expect(detector.state('n1')).toBe('not_ready');
    expect(detector.state('n998')).toBe('ready');
    expect(conditions.counts(ids).engine_unavailable).toBe(334);
    expect(conditions.get('n999')!.reportedAtMs).toBe(1_001_000);
  });
});

describe('NodeValues', () => {
  it('holds one value per node like a map, counts them, and frees the slot once deleted', () => {
    const slots = new NodeSlots();
    const values = new NodeValues<{ n: number }>(slots);
    const other = new NodeValues<string>(slots);
    values.set('a', { n: 1 });
    values.set('b', { n: 2 });
    values.set('a', { n: 3 });
    other.set('b', 'kept');
    expect(values.size).toBe(2);
    expect(values.get('a')).toEqual({ n: 3 });
    expect([...values.each()].map((v) => v.n).sort()).toEqual([2, 3]);
    expect(values.delete('b')).toBe(true);
    expect(values.delete('b')).toBe(false);
    expect(values.get('b')).toBeUndefined();
    expect(values.size).toBe(1);
    // The other table still holds b's slot; a's goes once deleted.
    expect(slots.slotOf('b')).toBeGreaterThanOrEqual(0);
    expect(other.get('b')).toBe('kept');
    values.delete('a');
    expect(slots.slotOf('a')).toBe(-1);
    expect(values.get('a')).toBeUndefined();
  });
});
