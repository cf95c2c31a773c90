/**
 * The rolling update's state machine, alone: a table of single steps, and property tests that run
 * whole updates against a model of agents (replicas take a while to start, a broken release never
 * serves) and check what must hold at every step.
 */
import { describe, expect, it } from 'vitest';
import { historyAfter } from '../../hub/revisions.js';
import { planRollout, type ReplicaProgress, type RolloutInput } from '../../hub/rollout/rollout-planner.js';
import type { RolloutRecord } from '../../hub/rollout/rollout-record.js';
import { containerHashOf, startUpdate } from '../../hub/rollout/start-update.js';
import type { Placement } from '../../hub/scheduler/types.js';
import { DEFAULT_UPDATE_CONFIG, type UpdateConfig } from '../../hub/spec/update-config.js';
import type { NormalizedSpec } from '../../hub/spec/service-spec.js';
import type { ServiceRecord } from '../../hub/store/store.js';
import { prng } from '../helpers/prng.js';
import { normalize } from '../helpers/spec-validation.js';

const on = (replicaId: string, revision?: number): Placement => ({ replicaId, nodeId: 'n1', pendingReason: null, ...(revision === undefined ? {} : { revision }) });

function rollout(over: Partial<RolloutRecord> = {}): RolloutRecord {
  return {
    state: 'updating',
    toRevision: 2,
    fromRevision: 1,
    rollbackOf: null,
    startedAtMs: 0,
    finishedAtMs: null,
    reason: null,
    batch: null,
    nextBatchAtMs: null,
    failedReplicaIds: [],
    failedCount: 0,
    total: 3,
    ...over,
  };
}

const serving: ReplicaProgress = { kind: 'serving', restarts: 0 };
const starting: ReplicaProgress = { kind: 'starting', restarts: null };

function input(over: Partial<RolloutInput> & { progress?: Record<string, ReplicaProgress> }): RolloutInput {
  const progress = over.progress ?? {};
  let n = 0;
  return {
    placements: [on('a', 1), on('b', 1), on('c', 1)],
    rollout: rollout(),
    config: { ...DEFAULT_UPDATE_CONFIG, monitorMs: 1000 },
    nowMs: 10_000,
    progressOf: (id) => progress[id] ?? starting,
    newReplicaId: () => `new-${++n}`,
    ...over,
  };
}

describe('planRollout: one step', () => {
  it('starts a batch of `parallelism` replicas, moving them to the new revision where they are', () => {
    const step = planRollout(input({ config: { ...DEFAULT_UPDATE_CONFIG, parallelism: 2 } }));
    expect(step.placements).toEqual([on('a'), on('b'), on('c', 1)]);
    expect(step.rollout.batch).toMatchObject({ replicaIds: ['a', 'b'], startedAtMs: 10_000 });
  });

  it('start-first places a new replica beside each old one, which stays until the new one serves', () => {
    const step = planRollout(input({ config: { ...DEFAULT_UPDATE_CONFIG, order: 'start-first' } }));
    expect(step.placements).toEqual([{ ...on('a', 1), replacedBy: 'new-1' }, on('b', 1), on('c', 1), { replicaId: 'new-1', nodeId: null, pendingReason: null }]);
    expect(step.rollout.batch?.replicaIds).toEqual(['new-1']);
  });

  it('waits while a batch replica starts; once it serves, starts the next batch and watches it for the monitor period', () => {
    const inFlight = rollout({ batch: { replicaIds: ['a'], startedAtMs: 9000, failedIds: [], restartsAtStart: {} } });
    const placements = [on('a'), on('b', 1), on('c', 1)];
    const waiting = planRollout(input({ placements, rollout: inFlight }));
    expect(waiting.placements).toBe(placements);
    expect(waiting.rollout).toBe(inFlight);
    // It serves: the next batch starts in the same step, and `a` is watched until 11_000.
    const next = planRollout(input({ placements, rollout: inFlight, progress: { a: { kind: 'serving', restarts: 0 } } }));
    expect(next.rollout.batch?.replicaIds).toEqual(['b']);
    expect(next.rollout.watching).toEqual([{ replicaId: 'a', servingSinceMs: 10_000, restartsAtStart: 0 }]);
    expect(next.wakeAtMs).toBe(11_000);
    // Its period over, it is no longer watched.
    const later = planRollout(input({ placements: next.placements, rollout: next.rollout, progress: { a: serving }, nowMs: 11_000 }));
    expect(later.rollout.watching).toEqual([]);
  });

  it('a watched replica that stops serving leaves the watch (its node went away, say); one that fails or restarts fails the update', () => {
    const watched = rollout({ watching: [{ replicaId: 'a', servingSinceMs: 9500, restartsAtStart: 0 }] });
    const placements = [on('a'), on('b'), on('c', 1)];
    const still = (progress: ReplicaProgress) =>
      planRollout(input({ placements, rollout: { ...watched, batch: { replicaIds: ['b'], startedAtMs: 9000, failedIds: [], restartsAtStart: {} } }, progress: { a: progress } }));
    expect(still({ kind: 'starting', restarts: null }).rollout.watching).toEqual([]);
    const failed = still({ kind: 'failed', reason: 'health check failing' });
    expect(failed.rollBackTo).toBe(1);
    expect(failed.rollout.reason).toBe('replica a failed: health check failing');
    const restarted = still({ kind: 'serving', restarts: 1 });
    expect(restarted.rollBackTo).toBe(1);
    expect(restarted.rollout.reason).toMatch(/replica a failed: restarted 1 time/);
  });

  it('an update whose last watched replica stops serving (its node lost) completes rather than waiting for it', () => {
    const watched = rollout({ watching: [{ replicaId: 'c', servingSinceMs: 9500, restartsAtStart: 0 }] });
    const step = planRollout(input({ placements: [on('a'), on('b'), on('c')], rollout: watched, progress: { c: starting } }));
    expect(step.rollout).toMatchObject({ state: 'completed', watching: [] });
  });

  it('completes only once the last batch has served for the monitor period', () => {
    const watched = rollout({ watching: [{ replicaId: 'c', servingSinceMs: 9500, restartsAtStart: 0 }] });
    const placements = [on('a'), on('b'), on('c')];
    const notYet = planRollout(input({ placements, rollout: watched, progress: { c: serving } }));
    expect(notYet.rollout.state).toBe('updating');
    expect(notYet.wakeAtMs).toBe(10_500);
    const done = planRollout(input({ placements, rollout: watched, progress: { c: serving }, nowMs: 10_500 }));
    expect(done.rollout).toMatchObject({ state: 'completed', finishedAtMs: 10_500, watching: [] });
  });

  it('waits `delay` between batches', () => {
    const config: UpdateConfig = { ...DEFAULT_UPDATE_CONFIG, monitorMs: 0, delayMs: 5000 };
    const inFlight = rollout({ batch: { replicaIds: ['a'], startedAtMs: 9000, failedIds: [], restartsAtStart: {} } });
    const done = planRollout(input({ placements: [on('a'), on('b', 1)], rollout: inFlight, config, progress: { a: serving } }));
    expect(done.rollout).toMatchObject({ batch: null, nextBatchAtMs: 15_000 });
    expect(done.wakeAtMs).toBe(15_000);
    const later = planRollout(input({ placements: done.placements, rollout: done.rollout, config, nowMs: 15_000 }));
    expect(later.rollout.batch?.replicaIds).toEqual(['b']);
  });

  it.each([
    ['rollback', { rollBackTo: 1, state: 'updating' }],
    ['pause', { rollBackTo: null, state: 'paused' }],
    ['continue', { rollBackTo: null, state: 'updating' }],
  ] as const)('a failure past the ratio with failureAction %s', (failureAction, expected) => {
    const inFlight = rollout({ batch: { replicaIds: ['a'], startedAtMs: 9000, failedIds: [], restartsAtStart: {} } });
    const step = planRollout(
      input({ placements: [on('a'), on('b', 1), on('c', 1)], rollout: inFlight, config: { ...DEFAULT_UPDATE_CONFIG, failureAction }, progress: { a: { kind: 'failed', reason: 'exited with code 1' } } }),
    );
    expect(step.rollBackTo).toBe(expected.rollBackTo);
    expect(step.rollout).toMatchObject({ state: expected.state, failedCount: 1, failedReplicaIds: ['a'] });
    expect(step.rollout.reason).toMatch(/replica a failed: exited with code 1/);
    // continue: the failure counts as done; the next batch starts.
    if (failureAction === 'continue') expect(step.rollout.batch?.replicaIds).toEqual(['b']);
  });

  it('failures within maxFailureRatio go on', () => {
    const inFlight = rollout({ total: 4, batch: { replicaIds: ['a'], startedAtMs: 9000, failedIds: [], restartsAtStart: {} } });
    const step = planRollout(
      input({ placements: [on('a'), on('b', 1)], rollout: inFlight, config: { ...DEFAULT_UPDATE_CONFIG, maxFailureRatio: 0.25 }, progress: { a: { kind: 'failed', reason: 'x' } } }),
    );
    expect(step.rollBackTo).toBeNull();
    expect(step.rollout.state).toBe('updating');
  });

  it('a restart of a new replica after it first ran is a failure, even when it runs again', () => {
    const inFlight = rollout({ batch: { replicaIds: ['a'], startedAtMs: 9000, failedIds: [], restartsAtStart: { a: 2 } } });
    const step = planRollout(input({ placements: [on('a'), on('b', 1)], rollout: inFlight, progress: { a: { kind: 'serving', restarts: 3 } } }));
    expect(step.rollBackTo).toBe(1);
    expect(step.rollout.reason).toMatch(/restarted 1 time/);
  });

  it('a rollback that fails pauses rather than rolling back again', () => {
    const back = rollout({ state: 'rolling-back', rollbackOf: 2, fromRevision: 2, toRevision: 3, batch: { replicaIds: ['a'], startedAtMs: 0, failedIds: [], restartsAtStart: {} } });
    const step = planRollout(input({ placements: [on('a'), on('b', 2)], rollout: back, progress: { a: { kind: 'failed', reason: 'x' } } }));
    expect(step.rollBackTo).toBeNull();
    expect(step.rollout.state).toBe('paused');
    expect(step.rollout.reason).toMatch(/^rollback paused/);
  });

  it('completes once no replica is left on an earlier revision; a rollback ends rolled-back', () => {
    expect(planRollout(input({ placements: [on('a'), on('b')] })).rollout).toMatchObject({ state: 'completed', finishedAtMs: 10_000 });
    expect(planRollout(input({ placements: [on('a')], rollout: rollout({ state: 'rolling-back', rollbackOf: 2 }) })).rollout.state).toBe('rolled-back');
  });

  it('a pending replica has no container to replace: it goes to the new revision at once, in no batch', () => {
    const pending: Placement = { replicaId: 'p', nodeId: null, pendingReason: 'no node fits', revision: 1 };
    const step = planRollout(input({ placements: [on('a'), pending] }));
    expect(step.placements).toEqual([on('a'), { replicaId: 'p', nodeId: null, pendingReason: 'no node fits' }]);
    expect(step.rollout.state).toBe('completed');
  });

  it('does nothing for a paused or finished update', () => {
    for (const state of ['paused', 'completed', 'rolled-back'] as const) {
      const r = rollout({ state });
      const i = input({ rollout: r });
      expect(planRollout(i)).toEqual({ placements: i.placements, rollout: r, rollBackTo: null, wakeAtMs: null });
    }
  });
});

describe('startUpdate: what a new spec does to placements', () => {
  const v1 = normalize({ image: 'app:1', replicas: 3 });
  const v2 = normalize({ image: 'app:2', replicas: 3 });
  const base: ServiceRecord = { name: 'web', spec: v1, revision: 1, createdAt: '', updatedAt: '', placements: [on('a'), on('b'), { replicaId: 'p', nodeId: null, pendingReason: 'none fits' }] };
  const accept = (before: ServiceRecord, spec: NormalizedSpec, rollbackOf: number | null = null) => {
    const after: ServiceRecord = { ...before, spec, revision: before.revision + 1, history: historyAfter(before) };
    const start = startUpdate(before, after, 5000, rollbackOf);
    return { ...after, placements: start.placements, ...(start.rollout ? { rollout: start.rollout } : {}) };
  };

  it('pins placed replicas to the revision they run when their container changes', () => {
    const next = accept(base, v2);
    expect(next.placements.map((p) => p.revision)).toEqual([1, 1, undefined]);
    expect(next.rollout).toMatchObject({ state: 'updating', fromRevision: 1, toRevision: 2, total: 2 });
  });

  it('starts no update when no container changes (a scale, credentials, update settings)', () => {
    const next = accept(base, { ...v1, replicas: 5, update: { ...DEFAULT_UPDATE_CONFIG, parallelism: 3 } });
    expect(next.placements).toBe(base.placements);
    expect(next.rollout).toBeUndefined();
  });

  it('a rollback leaves alone what already runs the spec it restores', () => {
    const updating = accept(base, v2);
    // One replica got the new revision before the rollback.
    const midway = { ...updating, placements: [on('a'), on('b', 1)] };
    const back = accept(midway, v1, 2);
    expect(back.placements.map((p) => p.revision)).toEqual([2, undefined]);
    expect(back.rollout).toMatchObject({ state: 'rolling-back', rollbackOf: 2, fromRevision: 2, toRevision: 3, total: 1 });
    expect(containerHashOf(back.spec)).toBe(containerHashOf(v1));
  });
});

/**
 * Whole updates against a model of agents: each replica runs the container of its placement's
 * revision; a new container serves some ticks after its swap, never for a broken release; a
 * start-first replacement is placed the tick after it appears, and its predecessor leaves once
 * it serves (what the scheduler's hand-over does).
 */
describe('planRollout: whole updates (property)', () => {
  const TICK_MS = 100;
  const good1 = normalize({ image: 'app:1', replicas: 1 });
  const good2 = normalize({ image: 'app:2', replicas: 1 });
  const broken = normalize({ image: 'app:broken', replicas: 1 });

  function run(seed: number) {
    const rand = prng(seed);
    const n = 1 + Math.floor(rand() * 10);
    const order = rand() < 0.5 ? 'start-first' : 'stop-first';
    const isBroken = rand() < 0.4;
    // A broken release either never serves, or serves for a moment and then crashes (caught while watched).
    const crashesLate = isBroken && rand() < 0.5;
    const config: UpdateConfig = {
      parallelism: 1 + Math.floor(rand() * 4),
      order,
      delayMs: rand() < 0.5 ? 0 : 200,
      monitorMs: Math.floor(rand() * 4) * TICK_MS,
      maxFailureRatio: rand() < 0.7 ? 0 : 0.5,
      failureAction: (['rollback', 'pause', 'continue'] as const)[Math.floor(rand() * 3)]!,
    };
    const specOf = new Map<number, NormalizedSpec>([[1, good1]]);
    const brokenHash = containerHashOf(broken);
    let record: ServiceRecord = { name: 'web', spec: good1, revision: 1, createdAt: '', updatedAt: '', placements: [] };
    for (let i = 0; i < n; i++) record.placements.push({ replicaId: `r${i}`, nodeId: 'n1', pendingReason: null });
    // replicaId -> the container hash it runs, when it serves (Infinity: never) and when it crashes.
    const containers = new Map<string, { hash: string; upAtMs: number; crashAtMs: number }>();
    let nowMs = 0;
    const sync = () => {
      for (const p of record.placements) {
        if (p.nodeId === null) continue;
        const hash = containerHashOf(specOf.get(p.revision ?? record.revision)!);
        const had = containers.get(p.replicaId);
        if (had?.hash === hash) continue;
        const delay = (1 + Math.floor(rand() * 3)) * TICK_MS;
        const upAtMs = hash === brokenHash && !crashesLate ? Infinity : had === undefined && nowMs === 0 ? 0 : nowMs + delay;
        containers.set(p.replicaId, { hash, upAtMs, crashAtMs: hash === brokenHash && crashesLate ? upAtMs + TICK_MS : Infinity });
      }
    };
    const isServing = (id: string) => {
      const c = containers.get(id);
      return c !== undefined && c.upAtMs <= nowMs && nowMs < c.crashAtMs;
    };
    const accept = (spec: NormalizedSpec, rollbackOf: number | null) => {
      const after: ServiceRecord = { ...record, spec, revision: record.revision + 1, history: historyAfter(record) };
      specOf.set(after.revision, spec);
      const start = startUpdate(record, after, nowMs, rollbackOf);
      record = { ...after, placements: start.placements, ...(start.rollout ? { rollout: start.rollout } : {}) };
    };
    sync();
    accept(isBroken ? broken : good2, null);
    let ids = 0;
    let fewestServing = n;
    let mostReplacing = 0;
    for (let tick = 0; tick < 400; tick++) {
      nowMs += TICK_MS;
      const step = planRollout({
        placements: record.placements,
        rollout: record.rollout!,
        config,
        nowMs,
        progressOf: (id) => {
          const c = containers.get(id);
          if (c?.hash === brokenHash && (c.upAtMs === Infinity || nowMs >= c.crashAtMs)) return { kind: 'failed', reason: 'exited with code 1' };
          return isServing(id) ? { kind: 'serving', restarts: 0 } : { kind: 'starting', restarts: null };
        },
        newReplicaId: () => `new${++ids}`,
      });
      record = { ...record, placements: [...step.placements], rollout: step.rollout };
      if (step.rollBackTo !== null) accept(specOf.get(step.rollBackTo)!, record.revision);
      // The scheduler's part: place new replicas; end hand-overs whose replacement serves.
      record.placements = record.placements
        .filter((p) => !(p.replacedBy && isServing(p.replacedBy)))
        .map((p) => (p.nodeId === null ? { ...p, nodeId: 'n1' } : p));
      sync();
      const active = record.placements.filter((p) => !p.replacedBy);
      const servingNow = record.placements.filter((p) => isServing(p.replicaId)).length;
      fewestServing = Math.min(fewestServing, servingNow);
      // Replicas down for the update: swapped (stop-first) and not serving yet, broken ones aside.
      const replacing = active.filter((p) => !isServing(p.replicaId) && containers.get(p.replicaId)?.hash !== brokenHash).length;
      mostReplacing = Math.max(mostReplacing, replacing);
      if (record.rollout!.state !== 'updating' && record.rollout!.state !== 'rolling-back') break;
    }
    return { n, config, isBroken, crashesLate, record, fewestServing, mostReplacing, containers, brokenHash };
  }

  it('holds its invariants over 400 random updates', () => {
    // SEED=n replays one case.
    for (let seed = Number(process.env.SEED ?? 1); seed <= Number(process.env.SEED ?? 400); seed++) {
      const { n, config, isBroken, crashesLate, record, fewestServing, mostReplacing, containers, brokenHash } = run(seed);
      const where = `seed ${seed}: ${JSON.stringify({ n, config, isBroken, crashesLate })}`;
      const rollout = record.rollout!;
      // Every update ends: finished, or paused by a failure.
      expect(['completed', 'rolled-back', 'paused'], where).toContain(rollout.state);
      if (config.order === 'stop-first') {
        // Stop-first never has more than `parallelism` replicas down for the update at once.
        expect(mostReplacing, where).toBeLessThanOrEqual(config.parallelism);
      } else if (!crashesLate && (isBroken || rollout.state === 'completed')) {
        // Start-first never drops below the running count: an old replica leaves only once its
        // replacement serves (a broken one never does, so the old ones stay). A release that
        // crashes after it served is caught while watched, but what it took down was down.
        expect(fewestServing, where).toBeGreaterThanOrEqual(n);
      }
      // Once done, one revision runs everywhere: no placement pinned, every container the current
      // spec's. (An update that went on past failures is done with what failed: a start-first
      // replica whose replacement never served still serves the old revision.)
      if (rollout.state === 'rolled-back' || (rollout.state === 'completed' && rollout.failedCount === 0)) {
        expect(record.placements.filter((p) => p.revision !== undefined || p.replacedBy), where).toEqual([]);
        const current = containerHashOf(record.spec);
        for (const p of record.placements) expect(containers.get(p.replicaId)?.hash, where).toBe(current);
      }
      if (isBroken && config.failureAction === 'rollback' && (!crashesLate || config.monitorMs >= TICK_MS)) {
        // A broken release with failureAction rollback ends on the old spec, however far it got
        // (one that crashes a moment after it served, as long as `monitor` watches that moment).
        expect(rollout.state, where).toBe('rolled-back');
        expect(containerHashOf(record.spec), where).not.toBe(brokenHash);
      }
      if (!isBroken) expect(rollout.state, where).toBe('completed');
    }
  });
});
