import { describe, expect, it } from 'vitest';
import type { ReplicaReport } from '../../shared/protocol.js';
import type { NodeState } from '../../hub/failure-detector.js';
import { Handovers } from '../../hub/handovers.js';
import { ObservedState } from '../../hub/observed-state.js';
import type { ServiceRecord } from '../../hub/store/store.js';

const report = (replicaId: string, state: ReplicaReport['state'], specHash = 'h1', service = 'web'): ReplicaReport => ({
  replicaId,
  service,
  state,
  specHash,
  containerId: null,
  error: null,
  restarts: 0,
});

function service(name: string, placements: ServiceRecord['placements']): ServiceRecord {
  return { name, placements } as unknown as ServiceRecord;
}

function setup() {
  const observed = new ObservedState();
  const nodeStates = new Map<string, NodeState>();
  const passes: number[] = [];
  const handovers = new Handovers({
    observed,
    dispatcher: { specHashOf: (name) => (name === 'web' ? 'h1' : undefined) },
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

  it('counts a replica running only with its current spec on a ready node', () => {
    const { observed, nodeStates, handovers } = setup();
    expect(handovers.isRunning('r1')).toBe(false);
    observed.apply('n1', [report('r1', 'running', 'h0')], 0);
    expect(handovers.isRunning('r1')).toBe(false);
    observed.apply('n1', [report('r1', 'running')], 0);
    expect(handovers.isRunning('r1')).toBe(true);
    nodeStates.set('n1', 'unreachable');
    expect(handovers.isRunning('r1')).toBe(false);
  });
});
