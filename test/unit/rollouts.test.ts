import { describe, expect, it } from 'vitest';
import { ObservedState } from '../../hub/observed-state.js';
import type { RolloutRecord } from '../../hub/rollout/rollout-record.js';
import { Rollouts } from '../../hub/rollouts.js';
import type { ServiceRecord } from '../../hub/store/store.js';
import type { ReplicaReport } from '../../shared/protocol.js';
import { normalize } from '../helpers/spec-validation.js';

const rollout = (batchIds: string[] | null): RolloutRecord => ({
  state: 'updating',
  toRevision: 2,
  fromRevision: 1,
  rollbackOf: null,
  startedAtMs: 0,
  finishedAtMs: null,
  reason: null,
  batch: batchIds ? { replicaIds: batchIds, startedAtMs: 0, failedIds: [], restartsAtStart: {} } : null,
  nextBatchAtMs: null,
  failedReplicaIds: [],
  failedCount: 0,
  total: 2,
});

function setup() {
  const wakes: number[] = [];
  const observed = new ObservedState();
  const rollouts = new Rollouts({
    observed,
    dispatcher: { specHashOf: () => 'new' },
    detector: { state: () => 'ready' },
    clock: { nowMs: () => 1000 },
    markDirty: (withinMs) => wakes.push(withinMs),
    rollBack: () => undefined,
  });
  return { rollouts, observed, wakes };
}

const report = (replicaId: string, over: Partial<ReplicaReport> = {}): ReplicaReport => ({
  replicaId,
  service: 'web',
  state: 'running',
  specHash: 'new',
  containerId: 'c',
  error: null,
  restarts: 0,
  ...over,
});

const record = (over: Partial<ServiceRecord>): ServiceRecord => ({
  name: 'web',
  spec: normalize({ image: 'app:2', replicas: 2 }),
  revision: 2,
  createdAt: '',
  updatedAt: '',
  placements: [],
  ...over,
});

describe('Rollouts', () => {
  it("asks for a pass when a batch's replica reports, and only then", () => {
    const { rollouts, wakes } = setup();
    rollouts.reported([report('web.a')]);
    expect(wakes).toEqual([]);
    rollouts.track([record({ rollout: rollout(['web.a']) })]);
    rollouts.reported([report('web.b')]);
    expect(wakes).toEqual([]);
    rollouts.reported([report('web.a')]);
    expect(wakes).toHaveLength(1);
    // The batch moved on: its replicas no longer matter.
    rollouts.track([record({ rollout: rollout(null) })]);
    rollouts.reported([report('web.a')]);
    expect(wakes).toHaveLength(1);
    rollouts.track([record({ rollout: rollout(['web.b']) })]);
    rollouts.forget('web');
    rollouts.reported([report('web.b')]);
    expect(wakes).toHaveLength(1);
  });

  it('asks for no pass for a report of pull progress alone: it decides nothing of the update', () => {
    const { rollouts, wakes } = setup();
    rollouts.track([record({ rollout: rollout(['web.a']) })]);
    rollouts.reported([report('web.a', { state: 'pending', containerId: null, pull: { bytesDone: 1, bytesTotal: 10, layersDone: 0, layersTotal: 1 } })]);
    expect(wakes).toEqual([]);
    rollouts.reported([report('web.a')]);
    expect(wakes).toHaveLength(1);
  });

  it('judges a new replica by its report: failed, unhealthy, an old container with an error, serving', () => {
    const { rollouts, observed } = setup();
    const progress = (r: ReplicaReport) => {
      observed.apply('n1', [r], 0);
      return rollouts.progressOf('web', r.replicaId);
    };
    expect(rollouts.progressOf('web', 'web.none')).toEqual({ kind: 'starting', restarts: null });
    expect(progress(report('web.a', { specHash: 'old' }))).toEqual({ kind: 'starting', restarts: null });
    expect(progress(report('web.a', { specHash: 'old', error: 'pull: manifest unknown' }))).toEqual({ kind: 'failed', reason: 'pull: manifest unknown' });
    // A rollback's broken old container, crashing before its replacement is made, says nothing of the new one.
    expect(progress(report('web.a', { specHash: 'old', state: 'failed', error: 'exited with code 1 (restarted 1 times)' }))).toEqual({ kind: 'starting', restarts: null });
    expect(progress(report('web.a', { state: 'failed', error: 'exited with code 1' }))).toEqual({ kind: 'failed', reason: 'exited with code 1' });
    expect(progress(report('web.a', { health: { status: 'unhealthy', output: 'HTTP 500' } }))).toEqual({ kind: 'failed', reason: 'health check failing: HTTP 500' });
    expect(progress(report('web.a', { state: 'stopped', crashLoop: { restarts: 3, lastExitCode: 1, outputTail: 'boom', nextRestartAtMs: 5000 } }))).toEqual({
      kind: 'failed',
      reason: 'crash-looping (3 restarts in a row, last: exit code 1)',
    });
    expect(progress(report('web.a', { health: { status: 'starting', output: null }, restarts: 2 }))).toEqual({ kind: 'starting', restarts: 2 });
    expect(progress(report('web.a', { health: { status: 'healthy', output: null }, restarts: 2 }))).toEqual({ kind: 'serving', restarts: 2 });
  });

  it('replaces a global service stop-first even when start-first is asked: its node has no room for two', () => {
    const { rollouts } = setup();
    const spec = normalize({ image: 'app:2', mode: 'global', update: { order: 'start-first' } });
    const placements = [{ replicaId: 'web.a', nodeId: 'n1', pendingReason: null, revision: 1 }];
    const step = rollouts.step(record({ spec, placements, rollout: rollout(null) }), placements);
    expect(step?.placements).toEqual([{ replicaId: 'web.a', nodeId: 'n1', pendingReason: null }]);
    rollouts.stop();
  });
});
