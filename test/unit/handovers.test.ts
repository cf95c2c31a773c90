import { describe, expect, it } from 'vitest';
import type { ReplicaReport } from '../../shared/protocol.js';
import type { NodeState } from '../../hub/failure-detector.js';
import { Handovers } from '../../hub/handovers.js';
import { ObservedState } from '../../hub/observed-state.js';
import type { ServiceRecord } from '../../hub/store/store.js';

const report = (replicaId: string, state: ReplicaReport['state'], specHash = 'h1', service = 'web', extra: Partial<ReplicaReport> = {}): ReplicaReport => ({
  replicaId,
  service,
  state,
  specHash,
  containerId: null,
  error: null,
  restarts: 0,
  ...extra,
});
const checked = (replicaId: string, status: 'starting' | 'healthy' | 'unhealthy'): ReplicaReport =>
  report(replicaId, 'running', 'h1', 'web', { health: { status, output: null } });

function service(name: string, placements: ServiceRecord['placements']): ServiceRecord {
  return { name, placements } as unknown as ServiceRecord;
}

function setup() {
  const observed = new ObservedState();
  const nodeStates = new Map<string, NodeState>();
  const passes: number[] = [];
  const handovers = new Handovers({
    observed,
    // r-pinned runs an earlier revision (h0) until a rolling update reaches it.
    dispatcher: { specHashOfReplica: (name, replicaId) => (name !== 'web' ? undefined : replicaId === 'r-pinned' ? 'h0' : 'h1') },
    detector: { state: (nodeId) => nodeStates.get(nodeId) ?? 'ready' },
    markDirty: (withinMs) => passes.push(withinMs),
  });
  return { observed, nodeStates, passes, handovers };
}

describe('Handovers', () => {
  it('asks for one shared pass when a replacement first reports running, and none for other reports', () => {
    const { passes, handovers } = setup();
    handovers.reported([report('r-new', 'running')]);
    expect(passes).toEqual([]);
    handovers.track([service('web', [{ replicaId: 'r-old', nodeId: 'n1', pendingReason: null, replacedBy: 'r-new' }, { replicaId: 'r-new', nodeId: 'n2', pendingReason: null }])]);
    handovers.reported([report('r-new', 'starting'), report('r-other', 'running')]);
    expect(passes).toEqual([]);
    handovers.reported([report('r-new', 'running'), report('r-new', 'running')]);
    expect(passes).toEqual([1000]);
  });

  it('forgets a service once a pass leaves it no hand-over, or once it is deleted', () => {
    const { passes, handovers } = setup();
    const waiting = service('web', [{ replicaId: 'r-old', nodeId: 'n1', pendingReason: null, replacedBy: 'r-new' }]);
    handovers.track([waiting]);
    handovers.track([service('web', [{ replicaId: 'r-new', nodeId: 'n2', pendingReason: null }])]);
    handovers.reported([report('r-new', 'running')]);
    handovers.track([waiting]);
    handovers.forget('web');
    handovers.reported([report('r-new', 'running')]);
    expect(passes).toEqual([]);
  });

  it('counts a replica serving only with its current spec on a ready node', () => {
    const { observed, nodeStates, handovers } = setup();
    expect(handovers.isServing('r1')).toBe(false);
    observed.apply('n1', [report('r1', 'running', 'h0')], 0);
    expect(handovers.isServing('r1')).toBe(false);
    observed.apply('n1', [report('r1', 'running')], 0);
    expect(handovers.isServing('r1')).toBe(true);
    nodeStates.set('n1', 'unreachable');
    expect(handovers.isServing('r1')).toBe(false);
  });

  it('counts a replica pinned to an earlier revision serving when it runs that revision', () => {
    const { observed, handovers } = setup();
    observed.apply('n1', [report('r-pinned', 'running', 'h1')], 0);
    expect(handovers.isServing('r-pinned')).toBe(false);
    observed.apply('n1', [report('r-pinned', 'running', 'h0')], 0);
    expect(handovers.isServing('r-pinned')).toBe(true);
  });

  it('counts a checked replica serving only once it is healthy', () => {
    const { observed, handovers } = setup();
    observed.apply('n1', [checked('r1', 'starting')], 0);
    expect(handovers.isServing('r1')).toBe(false);
    observed.apply('n1', [checked('r1', 'healthy')], 0);
    expect(handovers.isServing('r1')).toBe(true);
    observed.apply('n1', [checked('r1', 'unhealthy')], 0);
    expect(handovers.isServing('r1')).toBe(false);
  });

  it('asks for the pass when a checked replacement becomes healthy, not when it starts running', () => {
    const { passes, handovers } = setup();
    handovers.track([service('web', [{ replicaId: 'r-old', nodeId: 'n1', pendingReason: null, replacedBy: 'r-new' }, { replicaId: 'r-new', nodeId: 'n2', pendingReason: null }])]);
    handovers.reported([checked('r-new', 'starting')]);
    handovers.reported([checked('r-new', 'unhealthy')]);
    expect(passes).toEqual([]);
    handovers.reported([checked('r-new', 'healthy')]);
    expect(passes).toEqual([1000]);
  });

  it('counts a replica failing when it failed, crash-loops or is unhealthy', () => {
    const { observed, handovers } = setup();
    expect(handovers.isFailing('r1')).toBe(false);
    observed.apply('n1', [report('r1', 'running'), report('r2', 'failed'), checked('r3', 'unhealthy'), checked('r4', 'starting')], 0);
    observed.apply('n1', [report('r5', 'starting', 'h1', 'web', { crashLoop: { restarts: 3, lastExitCode: 1, outputTail: null, nextRestartAtMs: 0 } })], 0);
    expect(['r1', 'r2', 'r3', 'r4', 'r5'].map((id) => handovers.isFailing(id))).toEqual([false, true, true, false, true]);
  });
});
