import { describe, expect, it } from 'vitest';
import { executeStep, stepExecutors, type StepContext, type StepExecutors } from '../../agent/reconciler/step-executors.js';
import { SimulatedRuntime } from '../../agent/runtime/simulated-runtime.js';
import { containerSpecHash } from '../../shared/container-spec.js';
import type { AssignedReplica } from '../../shared/protocol.js';
import { containerSpec } from '../helpers/container-spec.js';

function replica(replicaId: string): AssignedReplica {
  const container = containerSpec('httpd:1');
  return { replicaId, service: 'web', specHash: containerSpecHash(container), container };
}

/** A context that records what the executors hand it. */
function context(runtime: SimulatedRuntime) {
  const told: string[] = [];
  const ctx: StepContext = {
    runtime,
    nodeId: 'node-a',
    publishAddress: null,
    stopTimeoutS: 1,
    logger: { info() {}, warn() {} },
    planned: new Map(),
    stoppedForSwap: new Set(),
    succeeded: (id) => told.push(`succeeded ${id}`),
    failed: (id, error) => told.push(`failed ${id}: ${error}`),
    swapFailed: (id) => told.push(`swapFailed ${id}`),
    containerSucceeded: () => told.push('containerSucceeded'),
    containerFailed: (id) => told.push(`containerFailed ${id}`),
    started: (id, _containerId, restart) => told.push(`started ${id} restart=${restart}`),
    hadSpec: () => false,
  };
  return { ctx, told };
}

describe('step executors', () => {
  it('has one executor per kind of engine step, and a table missing one does not compile', () => {
    // @ts-expect-error: 'start-stand-in' and 'restart' have no executor
    const partial: StepExecutors = { remove: stepExecutors.remove, create: stepExecutors.create, start: stepExecutors.start };
    expect(Object.keys(partial)).toHaveLength(3);
    expect(Object.keys(stepExecutors).sort()).toEqual(['create', 'remove', 'restart', 'start', 'start-stand-in']);
  });

  it('applies a step through the executor of its kind', async () => {
    const runtime = new SimulatedRuntime({ images: ['httpd:1'] });
    const { ctx, told } = context(runtime);
    await executeStep({ kind: 'create', replica: replica('r1'), swap: null }, ctx);
    expect(runtime.containers().map((c) => [c.replicaId, c.state])).toEqual([['r1', 'running']]);
    expect(told).toEqual(['succeeded r1', 'started r1 restart=false']);

    const [c] = runtime.containers();
    await executeStep({ kind: 'remove', containerId: c!.id, replicaId: 'r1', reason: 'unassigned' }, ctx);
    expect(runtime.containers()).toEqual([]);
    expect(told.at(-1)).toBe('containerSucceeded');
  });

  it('hands a failure to the context rather than throwing', async () => {
    const runtime = new SimulatedRuntime({ images: ['httpd:1'], createFails: () => 'no such CPUs' });
    const { ctx, told } = context(runtime);
    await executeStep({ kind: 'create', replica: replica('r1'), swap: null }, ctx);
    expect(told).toEqual(['failed r1: create failed: no such CPUs']);
  });
});
