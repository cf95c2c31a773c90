import { describe, expect, it } from 'vitest';
import { FailureDetector, type NodeState } from '../../hub/failure-detector.js';
import { testDetector } from '../helpers/test-detector.js';

function setup(startMs = 1_000_000) {
  const changes: Array<[string, NodeState]> = [];
  const { clock, detector, advance } = testDetector({ startMs, onStateChange: (id, state) => changes.push([id, state]) });
  return { clock, detector, changes, advance };
}

describe('failure detector (hub clock only)', () => {
  it('goes ready -> unreachable (silent past grace) -> lost, and back to ready on hello', () => {
    const { detector, changes, advance } = setup();
    const entry = detector.connected('n1');
    expect(detector.state('n1')).toBe('ready');
    advance(10_000);
    detector.seen('n1', entry);
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
      detector.seen('n1', entry);
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

/**
 * A fleet on the fake clock, driven the way the hub drives the detector: a sweep every 250 ms,
 * and a heartbeat from every node that is up at each heartbeat interval.
 */
function fleetSetup(nodeCount: number, opts: { startMs?: number; connectAll?: boolean } = {}) {
  const clock = { now: opts.startMs ?? 1_000_000, nowMs() { return this.now; } };
  const changes: Array<[string, NodeState]> = [];
  const detector = new FailureDetector({
    clock,
    heartbeatGraceMs: 15_000,
    lostAfterMs: 60_000,
    startupGraceMs: 30_000,
    disruptionShare: 0.55,
    onStateChange: (id, state) => changes.push([id, state]),
  });
  const ids = Array.from({ length: nodeCount }, (_, i) => `n${i}`);
  const connectAll = opts.connectAll ?? true;
  const up = new Set(connectAll ? ids : []);
  const entries = new Map(connectAll ? ids.map((id) => [id, detector.connected(id)]) : []);
  /** Runs the hub for `ms`: sweeps every 250 ms, heartbeats every 5 s from the nodes that are up. */
  const run = (ms: number) => {
    for (let t = 0; t < ms; t += 250) {
      clock.now += 250;
      if (t % 5_000 === 0) for (const id of up) detector.seen(id, entries.get(id)!);
      const { silent } = detector.sweep(ids, [60_000]);
      for (const id of silent) detector.disconnected(id);
    }
  };
  const cut = (which: string[]) => {
    for (const id of which) {
      up.delete(id);
      detector.disconnected(id);
    }
  };
  const heal = (which: string[]) => {
    for (const id of which) {
      up.add(id);
      entries.set(id, detector.connected(id));
    }
  };
  /** The node's heartbeats stop reaching the hub, without a close (a partition, a dead device). */
  const silence = (which: string[]) => {
    for (const id of which) up.delete(id);
  };
  const lost = () => ids.filter((id) => detector.state(id) === 'lost');
  return { clock, detector, changes, ids, run, cut, heal, silence, lost };
}

describe('failure detector: fleet disruption (most of the fleet away at once)', () => {
  it('declares no node lost while more than 55 % of the fleet is away', () => {
    const f = fleetSetup(10);
    f.cut(f.ids.slice(0, 6));
    f.run(120_000);
    expect(f.lost()).toEqual([]);
    expect(f.detector.disruption()).toMatchObject({ awayNodes: 6, countedNodes: 10 });
    expect(f.changes.filter(([, s]) => s === 'lost')).toEqual([]);
    // The scheduler reads away-time through downForMs: it must not pass lostAfter either.
    expect(Math.max(...f.ids.slice(0, 6).map((id) => f.detector.downForMs(id)!))).toBeLessThan(60_000);
  });

  it('still declares nodes lost when 55 % or fewer are away', () => {
    const f = fleetSetup(10);
    f.cut(f.ids.slice(0, 5));
    f.run(61_000);
    expect(f.lost()).toEqual(f.ids.slice(0, 5));
    expect(f.detector.disruption()).toBeNull();
  });

  it('counts silent nodes (no close seen) the same way as cut ones', () => {
    const f = fleetSetup(10);
    // A partition on the hub's side: no FIN, the heartbeats just stop.
    f.silence(f.ids.slice(0, 8));
    f.run(150_000);
    expect(f.ids.slice(0, 8).map((id) => f.detector.state(id))).toEqual(Array(8).fill('unreachable'));
    expect(f.detector.disruption()).toMatchObject({ awayNodes: 8, countedNodes: 10 });
  });

  it('resumes when the fleet is back: nodes still away get a full lostAfter from that moment', () => {
    const f = fleetSetup(10);
    f.cut(['n7']);
    f.run(40_000);
    // n7 was away 40 s when most of the fleet went: it does not keep that head start.
    f.cut(f.ids.slice(0, 7));
    f.run(100_000);
    expect(f.detector.disruption()).not.toBeNull();
    expect(f.lost()).toEqual([]);
    f.heal(f.ids.slice(0, 7)); // 1 of 10 away
    f.run(250);
    expect(f.detector.disruption()).toBeNull();
    f.run(59_000);
    expect(f.detector.state('n7')).toBe('unreachable');
    f.run(1_250);
    expect(f.lost()).toEqual(['n7']);
    expect(f.changes.filter(([, s]) => s === 'lost')).toEqual([['n7', 'lost']]);
  });

  it('keeps a node that was lost before the disruption lost (its replicas have moved already)', () => {
    const f = fleetSetup(10);
    f.cut(['n0']);
    f.run(61_000);
    expect(f.lost()).toEqual(['n0']);
    // Lost nodes no longer count toward the share: 6 of the 9 others is 67 %.
    f.cut(f.ids.slice(1, 7));
    f.run(120_000);
    expect(f.detector.disruption()).toMatchObject({ awayNodes: 6, countedNodes: 9 });
    expect(f.lost()).toEqual(['n0']);
    f.heal(f.ids.slice(1, 7));
    f.run(1_000);
    expect(f.detector.disruption()).toBeNull();
    expect(f.lost()).toEqual(['n0']);
  });

  it('needs at least 3 away nodes unless the whole fleet is away', () => {
    // 2 of 3 away (67 %): two dead nodes of three must still fail over to the third.
    const three = fleetSetup(3);
    three.cut(['n0', 'n1']);
    three.run(61_000);
    expect(three.lost()).toEqual(['n0', 'n1']);
    // Both of 2 away: there is nowhere to move to, and the first node back would get everything.
    const two = fleetSetup(2);
    two.cut(['n0', 'n1']);
    two.run(120_000);
    expect(two.lost()).toEqual([]);
    expect(two.detector.disruption()).toMatchObject({ awayNodes: 2, countedNodes: 2 });
    // A fleet of one has no share to speak of: its node is lost as usual.
    const one = fleetSetup(1);
    one.cut(['n0']);
    one.run(61_000);
    expect(one.lost()).toEqual(['n0']);
  });
});

describe('failure detector: a stalled hub (GC pause, suspended VM, SIGSTOP)', () => {
  it('a stall of 2x lostAfter makes no node silent or lost, connected or already away', () => {
    const f = fleetSetup(10);
    f.cut(['n0']); // away 10 s before the stall
    f.run(10_000);
    // The hub's process does not run for 120 s: no sweep, no frame read.
    f.clock.now += 120_000;
    // What the hub does first when it runs again: the agents gave up on it meanwhile, and their
    // connections' closes are read before the next sweep.
    f.detector.disconnected('n1');
    expect(f.detector.downForMs('n1')).toBeLessThan(15_000);
    expect(f.detector.downForMs('n0')).toBeLessThan(15_000);
    expect(f.detector.sweep(f.ids, [60_000]).silent).toEqual([]);
    expect(f.lost()).toEqual([]);
    f.heal(['n1']);
    f.run(49_000);
    expect(f.lost()).toEqual([]);
    // n0 was really away: it is lost once lostAfter of hub time has passed.
    f.run(2_000);
    expect(f.lost()).toEqual(['n0']);
    expect(f.detector.stalls()).toMatchObject({ count: 1 });
    expect(f.detector.stalls().totalMs).toBeGreaterThanOrEqual(120_000);
  });

  it('judges heartbeats read right after a stall by hub time, not by the stall', () => {
    const f = fleetSetup(4);
    f.run(5_000);
    f.clock.now += 40_000;
    // The queued heartbeat of one node is read before the sweep; the others' after it.
    f.detector.seen('n0', f.detector.handleOf('n0'));
    expect(f.detector.sweep(f.ids, [60_000]).silent).toEqual([]);
    expect(f.ids.map((id) => f.detector.state(id))).toEqual(['ready', 'ready', 'ready', 'ready']);
  });

  it('gives back only the part of a stall beyond the usual sweep interval', () => {
    const f = fleetSetup(3);
    f.cut(['n0']);
    f.run(10_000);
    expect(f.detector.downForMs('n0')).toBe(10_000);
    f.clock.now += 10_000; // one sweep 10 s late instead of 250 ms
    f.detector.sweep(f.ids, [60_000]);
    // The 250 ms the hub would have waited anyway count as usual.
    expect(f.detector.downForMs('n0')).toBe(10_250);
    expect(f.detector.stalls()).toEqual({ count: 1, totalMs: 10_000 });
  });

  it('finds a dead node silent, then lost, in a hub slow all the time (every call 1.1 s apart)', () => {
    // A CPU-starved hub, or one with a heavy pass every second: slow, never stopped.
    const f = fleetSetup(4);
    const liveEntries = ['n1', 'n2', 'n3'].map((id) => [id, f.detector.handleOf(id)] as const);
    const stepMs = 1_100;
    let elapsedMs = 0;
    const step = () => {
      f.clock.now += stepMs;
      elapsedMs += stepMs;
      // n0 is dead but its connection stays open; the others heartbeat every 5 s.
      if (elapsedMs % 5_500 === 0) for (const [id, handle] of liveEntries) f.detector.seen(id, handle);
      return f.detector.sweep(f.ids, [60_000]);
    };
    let silentAfterMs: number | null = null;
    while (silentAfterMs === null && elapsedMs < 300_000) if (step().silent.includes('n0')) silentAfterMs = elapsedMs;
    // The grace (15 s), plus about what the slowness costs.
    expect(silentAfterMs).not.toBeNull();
    expect(silentAfterMs!).toBeLessThan(20_000);
    f.detector.disconnected('n0');
    const awayFromMs = elapsedMs;
    expect(step().silent).toEqual([]);
    while (f.detector.state('n0') !== 'lost' && elapsedMs < 600_000) step();
    expect(f.detector.state('n0')).toBe('lost');
    // lostAfter (60 s), plus about what the slowness costs.
    expect(elapsedMs - awayFromMs).toBeLessThan(70_000);
    expect(['n1', 'n2', 'n3'].map((id) => f.detector.state(id))).toEqual(['ready', 'ready', 'ready']);
  });

  it('does not take sweeps on time for a stall', () => {
    const f = fleetSetup(3);
    f.cut(['n0']);
    f.run(61_000);
    expect(f.detector.stalls().count).toBe(0);
    expect(f.lost()).toEqual(['n0']);
  });
});

describe('failure detector: nodes lost before the hub (re)started', () => {
  it('keeps them lost and out of the disruption count, so a later failure still fails over', () => {
    const f = fleetSetup(10, { connectAll: false });
    // Six long-dead devices the hub had declared lost before it restarted; four come back.
    for (const id of f.ids.slice(0, 6)) f.detector.restoreLost(id, 600_000);
    const alive = f.ids.slice(6);
    f.heal(alive);
    expect(f.lost()).toEqual(f.ids.slice(0, 6));
    f.run(40_000); // past the startup grace
    // One of the four dies: 1 of 4 counted nodes away, no disruption; it is lost after lostAfter.
    f.cut([alive[0]!]);
    f.run(61_000);
    expect(f.detector.disruption()).toBeNull();
    expect(f.lost()).toContain(alive[0]);
  });

  it('keeps an already lost node lost through a stall of the hub', () => {
    const f = fleetSetup(10);
    f.cut(['n0']);
    f.run(70_000);
    expect(f.lost()).toEqual(['n0']);
    f.clock.now += 120_000;
    f.run(250);
    expect(f.lost()).toEqual(['n0']);
  });
});

describe('failure detector: a node whose engine was down, then goes away', () => {
  /** Five connected nodes (no disruption when one goes), swept every 500 ms with heartbeats. */
  function engineSetup() {
    const s = setup();
    const ids = ['n1', 'n2', 'n3', 'n4', 'n5'];
    const entries = ids.map((id) => s.detector.connected(id));
    s.changes.length = 0;
    const run = (ms: number) => {
      for (let t = 0; t < ms; t += 500) {
        s.advance(500);
        ids.forEach((id, i) => { if (s.detector.liveness(id)?.connected) s.detector.seen(id, entries[i]!); });
        s.detector.sweep(ids, [60_000]);
      }
    };
    return { ...s, entries, run };
  }

  it('is announced lost when it goes away after its outage passed lostAfter, once', () => {
    const { detector, changes, entries, run } = engineSetup();
    detector.engineReported('n1', entries[0]!, false);
    run(70_000); // the outage passes lostAfter: its replicas move
    detector.disconnected('n1');
    run(5_000);
    expect(detector.state('n1')).toBe('lost');
    expect(changes.filter(([id]) => id === 'n1').map(([, s]) => s)).toEqual(['not_ready', 'lost']);
  });

  it('is announced lost once when its outage passes lostAfter between a sweep and its going away', () => {
    const { detector, changes, entries, run, advance } = engineSetup();
    detector.engineReported('n1', entries[0]!, false);
    run(59_500);
    advance(499);
    detector.disconnected('n1'); // 59.999 s into the outage
    expect(detector.state('n1')).toBe('unreachable');
    run(5_000);
    expect(detector.state('n1')).toBe('lost');
    expect(changes.filter(([id]) => id === 'n1').map(([, s]) => s)).toEqual(['not_ready', 'unreachable', 'lost']);
  });
});
