import { describe, expect, it } from 'vitest';
import { FailureDetector, type NodeState } from '../../hub/failure-detector.js';

function setup(startMs = 1_000_000) {
  const clock = { now: startMs, nowMs() { return this.now; } };
  const changes: Array<[string, NodeState]> = [];
  const detector = new FailureDetector({
    clock,
    heartbeatGraceMs: 15_000,
    lostAfterMs: 60_000,
    startupGraceMs: 30_000,
    onStateChange: (id, state) => changes.push([id, state]),
  });
  const advance = (ms: number) => {
    clock.now += ms;
  };
  return { clock, detector, changes, advance };
}

describe('failure detector (hub clock only)', () => {
  it('goes ready -> unreachable (silent past grace) -> lost, and back to ready on hello', () => {
    const { detector, changes, advance } = setup();
    const entry = detector.connected('n1');
    expect(detector.state('n1')).toBe('ready');
    advance(10_000);
    detector.seen(entry);
    advance(14_000);
    expect(detector.sweep(['n1'], [60_000]).silent).toEqual([]);
    advance(2_000); // 16 s since the last frame
    expect(detector.sweep(['n1'], [60_000]).silent).toEqual(['n1']);
    detector.disconnected('n1');
    expect(detector.state('n1')).toBe('unreachable');
    // Away-time counts from the last frame, not from when silence was noticed.
    expect(detector.downForMs('n1')).toBe(16_000);
    advance(43_999);
    expect(detector.sweep(['n1'], [60_000]).crossedThreshold).toBe(false);
    expect(detector.state('n1')).toBe('unreachable');
    advance(1);
    expect(detector.sweep(['n1'], [60_000]).crossedThreshold).toBe(true);
    expect(detector.state('n1')).toBe('lost');
    detector.connected('n1');
    expect(detector.state('n1')).toBe('ready');
    expect(detector.liveness('n1')!.reconnects).toBe(1);
    expect(changes).toEqual([['n1', 'ready'], ['n1', 'unreachable'], ['n1', 'lost'], ['n1', 'ready']]);
  });

  it('heartbeats keep a node ready indefinitely', () => {
    const { detector, advance } = setup();
    const entry = detector.connected('n1');
    for (let i = 0; i < 100; i++) {
      advance(5_000);
      detector.seen(entry);
      expect(detector.sweep(['n1'], [60_000]).silent).toEqual([]);
    }
    expect(detector.state('n1')).toBe('ready');
  });

  it('gives every node the startup grace after a hub start before counting its absence', () => {
    const { detector, advance } = setup();
    // A node known from the store that has not reconnected yet.
    advance(29_000);
    expect(detector.downForMs('old')).toBe(0);
    expect(detector.state('old')).toBe('unreachable');
    advance(60_000); // 89 s after start: 59 s counted
    expect(detector.state('old')).toBe('unreachable');
    expect(detector.sweep(['old'], [60_000]).crossedThreshold).toBe(false);
    advance(1_000);
    expect(detector.sweep(['old'], [60_000]).crossedThreshold).toBe(true);
    expect(detector.state('old')).toBe('lost');
  });

  it('reports crossing a service threshold shorter than the hub one, once', () => {
    const { detector, advance } = setup();
    detector.connected('n1');
    detector.disconnected('n1');
    advance(5_000);
    expect(detector.sweep(['n1'], [60_000, 5_000]).crossedThreshold).toBe(true);
    advance(1_000);
    expect(detector.sweep(['n1'], [60_000, 5_000]).crossedThreshold).toBe(false);
    expect(detector.state('n1')).toBe('unreachable');
  });
});
