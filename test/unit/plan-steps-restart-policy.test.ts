/** The planner and a replica's restart policy: a held container stays stopped, an unhealthy one due for a restart gets one. */
import { describe, expect, it } from 'vitest';
import { planSteps, type PlanInput, type Step } from '../../agent/reconciler/plan-steps.js';
import type { EngineState, ObservedContainer } from '../../agent/runtime/container-runtime.js';
import { containerSpec } from '../helpers/container-spec.js';
import type { AssignedReplica } from '../../shared/protocol.js';

const r1: AssignedReplica = { replicaId: 'r1', service: 'web', specHash: 'h1', container: containerSpec('img:1') };

function container(id: string, state: EngineState, specHash = 'h1'): ObservedContainer {
  return { id, name: `tether-n-r1-${id}`, replicaId: 'r1', service: 'web', specHash, state, exitCode: state === 'exited' ? 1 : null, restartCount: 0, error: null };
}

function plan(input: Partial<PlanInput>): Step[] {
  return planSteps({ target: [r1], current: [], images: new Set(['img:1']), backingOff: new Set(), containerBackingOff: new Set(), ...input });
}

describe('planSteps with restart policies', () => {
  it('leaves a held exited container stopped, and starts it once it is not held', () => {
    const current = [container('c1', 'exited')];
    expect(plan({ current, held: new Set(['r1']) })).toEqual([]);
    expect(plan({ current })).toEqual([{ kind: 'start', containerId: 'c1', replicaId: 'r1', swap: null }]);
  });

  it('starts a container that never ran, held or not: only a stop is up to the policy', () => {
    expect(plan({ current: [container('c1', 'created')], held: new Set(['r1']) })).toEqual([{ kind: 'start', containerId: 'c1', replicaId: 'r1', swap: null }]);
  });

  it('restarts a running container its policy restarts now, unless the replica backs off', () => {
    const current = [container('c1', 'running')];
    expect(plan({ current, restartNow: new Map([['r1', 'c1']]) })).toEqual([{ kind: 'restart', containerId: 'c1', replicaId: 'r1' }]);
    expect(plan({ current, restartNow: new Map([['r1', 'c1']]), backingOff: new Set(['r1']) })).toEqual([]);
    // Another container than the one that runs: nothing (the listing moved on).
    expect(plan({ current, restartNow: new Map([['r1', 'c0']]) })).toEqual([]);
  });
});
