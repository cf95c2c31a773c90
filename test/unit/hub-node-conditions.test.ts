import { describe, expect, it } from 'vitest';
import { testDetector } from '../helpers/test-detector.js';
import { conditionWarnings, NodeConditionsTable } from '../../hub/node-conditions.js';
import { isDiskLow, lowDiskThresholdBytes } from '../../shared/protocol.js';
import type { NodeConditions } from '../../shared/protocol.js';

const GiB = 1024 ** 3;
const MiB = 1024 ** 2;

const healthy: NodeConditions = {
  engine: { available: true, error: null },
  targetCache: { current: true, error: null },
  dataDisk: { path: '/data', totalBytes: 32 * GiB, freeBytes: 16 * GiB },
  engineDisk: { path: '/docker', totalBytes: 32 * GiB, freeBytes: 16 * GiB },
};

describe('low disk threshold: min(10% of the disk, 2 GiB)', () => {
  it.each([
    [4 * GiB, 0.4 * GiB],
    [20 * GiB, 2 * GiB],
    [1024 * GiB, 2 * GiB],
    [0, 0],
  ])('a %d-byte disk is low under %d free bytes', (total, threshold) => {
    expect(lowDiskThresholdBytes(total)).toBeCloseTo(threshold);
  });

  it('is low strictly under the threshold; an unknown disk is never low', () => {
    expect(isDiskLow({ path: '/', totalBytes: 100 * GiB, freeBytes: 2 * GiB })).toBe(false);
    expect(isDiskLow({ path: '/', totalBytes: 100 * GiB, freeBytes: 2 * GiB - 1 })).toBe(true);
    expect(isDiskLow(null)).toBe(false);
  });

  it('words the warnings for an operator', () => {
    expect(
      conditionWarnings({
        engine: { available: false, error: 'EACCES' },
        targetCache: { current: false, error: null },
        dataDisk: { path: '/data', totalBytes: 4 * GiB, freeBytes: 100 * MiB },
        engineDisk: { path: '/docker', totalBytes: 64 * GiB, freeBytes: 10 * GiB },
      }),
    ).toEqual([
      'container engine unavailable: EACCES; no new replicas are placed here',
      'target not cached on the device; after a reboot without the hub it would run an older target',
      'data disk low: 100.0 MiB free of 4.0 GiB (2%)',
    ]);
    expect(conditionWarnings(null)).toEqual([]);
  });
});

describe('node conditions table', () => {
  it('replaces a node\'s conditions whole and tells only what changed', () => {
    const table = new NodeConditionsTable();
    expect(table.report('n1', healthy, 1)).toEqual([]);
    const down = { ...healthy, engine: { available: false, error: 'gone' } };
    expect(table.report('n1', down, 2)).toEqual([{ condition: 'engine_unavailable', active: true }]);
    expect(table.report('n1', down, 3)).toEqual([]);
    expect(table.get('n1')).toMatchObject({ conditions: down, reportedAtMs: 3 });
    const lowDisk = { ...healthy, engineDisk: { path: '/docker', totalBytes: 10 * GiB, freeBytes: GiB / 2 } };
    expect(table.report('n1', lowDisk, 4)).toEqual([
      { condition: 'engine_unavailable', active: false },
      { condition: 'engine_disk_low', active: true },
    ]);
    // A version 1 hello: no conditions, so none hold.
    expect(table.report('n1', null, 5)).toEqual([{ condition: 'engine_disk_low', active: false }]);
    expect(table.get('n1')).toBeUndefined();
  });

  it('holds the usual engine and target-cache parts once for all nodes, and every report as it was said', () => {
    const table = new NodeConditionsTable();
    // Each as decoded from its own frame.
    const copy = (c: NodeConditions): NodeConditions => JSON.parse(JSON.stringify(c)) as NodeConditions;
    table.report('n1', copy(healthy), 1);
    table.report('n2', copy({ ...healthy, dataDisk: null }), 1);
    const [a, b] = [table.get('n1')!.conditions, table.get('n2')!.conditions];
    expect(a).toEqual(healthy);
    expect(b).toEqual({ ...healthy, dataDisk: null });
    // Nothing per node for what nearly every node says.
    expect(a.engine).toBe(b.engine);
    expect(a.targetCache).toBe(b.targetCache);
    // What is out of the ordinary stays the node's own.
    const stale = copy({ ...healthy, engine: { available: false, error: 'gone' }, targetCache: { current: true, error: 'slow disk' } });
    table.report('n3', stale, 2);
    expect(table.get('n3')!.conditions).toEqual(stale);
    expect(table.get('n3')!.conditions.targetCache).not.toBe(a.targetCache);
  });

  it('counts nodes per condition among the nodes asked about, and forgets a node', () => {
    const table = new NodeConditionsTable();
    table.report('n1', { ...healthy, targetCache: { current: false, error: null } }, 1);
    table.report('n2', { ...healthy, targetCache: { current: false, error: null }, engine: { available: false, error: null } }, 1);
    table.report('gone', { ...healthy, engine: { available: false, error: null } }, 1);
    expect(table.counts(['n1', 'n2', 'n3'])).toEqual({ engine_unavailable: 1, target_cache_stale: 2, data_disk_low: 0, engine_disk_low: 0 });
    table.forget('n2');
    expect(table.counts(['n1', 'n2'])).toEqual({ engine_unavailable: 0, target_cache_stale: 1, data_disk_low: 0, engine_disk_low: 0 });
  });
});

describe('failure detector: a connected node whose engine is unavailable', () => {
  const setup = () => testDetector();

  it('is not_ready, unusable for as long as the outage lasts, and crosses lostAfter once', () => {
    const { detector, changes, advance } = setup();
    const entry = detector.connected('n1', false);
    expect(changes).toEqual([['n1', 'not_ready', null]]);
    expect(detector.state('n1')).toBe('not_ready');
    // Connected: not away, but unusable.
    expect(detector.downForMs('n1')).toBeNull();
    advance(59_999);
    detector.seen('n1', entry);
    expect(detector.unusableForMs('n1')).toBe(59_999);
    expect(detector.sweep(['n1'], [60_000]).crossedThreshold).toBe(false);
    advance(1);
    expect(detector.sweep(['n1'], [60_000]).crossedThreshold).toBe(true);
    advance(1000);
    detector.seen('n1', entry);
    expect(detector.sweep(['n1'], [60_000]).crossedThreshold).toBe(false);
    // Still connected: its state says why it is unusable, not that it is lost.
    expect(detector.state('n1')).toBe('not_ready');

    detector.engineReported('n1', entry, false);
    detector.engineReported('n1', entry, true);
    detector.engineReported('n1', entry, true);
    expect(changes.slice(1)).toEqual([['n1', 'ready', 'not_ready']]);
    expect(detector.unusableForMs('n1')).toBeNull();
  });

  it('goes on counting an outage across a disconnect and a reconnect', () => {
    const { detector, changes, advance } = setup();
    const entry = detector.connected('n1');
    advance(1000);
    detector.engineReported('n1', entry, false);
    advance(20_000);
    detector.seen('n1', entry);
    detector.disconnected('n1');
    // Unusable since the outage began, not since it was last heard from.
    expect(detector.downForMs('n1')).toBe(20_000);
    advance(10_000);
    detector.connected('n1', false);
    expect(detector.unusableForMs('n1')).toBe(30_000);
    expect(changes.map(([, s]) => s)).toEqual(['ready', 'not_ready', 'unreachable', 'not_ready']);
    // A hello saying the engine answers ends it.
    detector.connected('n1', true);
    expect(detector.state('n1')).toBe('ready');
    expect(detector.unusableForMs('n1')).toBeNull();
  });
});
