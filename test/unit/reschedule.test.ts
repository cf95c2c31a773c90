import { describe, expect, it } from 'vitest';
import { planPlacements, type PlacementOptions } from '../../hub/scheduler/placement.js';
import type { Placement, SchedNode, SchedService } from '../../hub/scheduler/types.js';
import { validateServiceSpec } from '../../hub/spec/service-spec.js';

const node = (id: string, downForMs: number | null = null): SchedNode => ({
  id,
  name: id,
  labels: {},
  facts: { hostname: id, arch: 'x64', os: 'linux', cpus: 4, memoryBytes: 8 * 1024 ** 3 },
  schedulable: downForMs === null,
  downForMs,
});

function service(placements: Placement[], input: Record<string, unknown> = {}): SchedService {
  const v = validateServiceSpec({ image: 'x', replicas: placements.filter((p) => !p.replacedBy).length, ...input });
  if (!v.ok) throw new Error(JSON.stringify(v.errors));
  return { name: 'web', spec: v.value, placements };
}

function options(running: string[] = []): PlacementOptions {
  let n = 0;
  return { newReplicaId: (s) => `${s}.new${++n}`, defaultLostAfterMs: 60_000, isRunning: (id) => running.includes(id) };
}

const placed = (replicaId: string, nodeId: string): Placement => ({ replicaId, nodeId, pendingReason: null });

/** Runs one pass and returns the service's new placements (or the old ones when unchanged). */
function pass(svc: SchedService, nodes: SchedNode[], opts = options()): Placement[] {
  const [change] = planPlacements([svc], nodes, opts);
  return change ? change.placements : [...svc.placements];
}

describe('rescheduling replicas of lost nodes', () => {
  const twoOnTwo = [placed('web.a', 'n1'), placed('web.b', 'n2')];

  it('leaves replicas of an unreachable node alone until lostAfter', () => {
    expect(planPlacements([service(twoOnTwo)], [node('n1', 59_999), node('n2'), node('n3')], options())).toEqual([]);
  });

  it('places a replacement elsewhere once the node is lost, keeping the original until it runs', () => {
    const after = pass(service(twoOnTwo), [node('n1', 60_000), node('n2'), node('n3')]);
    expect([...after].sort((a, b) => a.replicaId.localeCompare(b.replicaId))).toEqual([
      { replicaId: 'web.a', nodeId: 'n1', pendingReason: null, replacedBy: 'web.new1' },
      placed('web.b', 'n2'),
      { replicaId: 'web.new1', nodeId: 'n3', pendingReason: null, movedFrom: 'n1' },
    ]);
    // Stable while the replacement is not yet running.
    expect(planPlacements([service(after, { replicas: 2 })], [node('n1', 90_000), node('n2'), node('n3')], options())).toEqual([]);
  });

  it('drops the original once its replacement runs (the hand-over)', () => {
    const moving = [placed('web.b', 'n2'), { ...placed('web.new1', 'n3'), movedFrom: 'n1' }, { ...placed('web.a', 'n1'), replacedBy: 'web.new1' }];
    const after = pass(service(moving, { replicas: 2 }), [node('n1', 90_000), node('n2'), node('n3')], options(['web.new1']));
    expect(after.map((p) => p.replicaId)).toEqual(['web.b', 'web.new1']);
  });

  it('calls the move off when the node returns before the replacement runs', () => {
    const moving = [placed('web.b', 'n2'), { ...placed('web.new1', 'n3'), movedFrom: 'n1' }, { ...placed('web.a', 'n1'), replacedBy: 'web.new1' }];
    const after = pass(service(moving, { replicas: 2 }), [node('n1'), node('n2'), node('n3')]);
    expect(after).toEqual([placed('web.b', 'n2'), placed('web.a', 'n1')]);
  });

  it('hands over when the node returns after the replacement runs', () => {
    const moving = [placed('web.b', 'n2'), { ...placed('web.new1', 'n3'), movedFrom: 'n1' }, { ...placed('web.a', 'n1'), replacedBy: 'web.new1' }];
    const after = pass(service(moving, { replicas: 2 }), [node('n1'), node('n2'), node('n3')], options(['web.new1']));
    expect(after.map((p) => p.replicaId)).toEqual(['web.b', 'web.new1']);
  });

  it('keeps the replacement pending with a reason when no node fits, and the original waiting', () => {
    const after = pass(service(twoOnTwo, { ports: [{ containerPort: 80, hostPort: 80 }] }), [node('n1', 60_000), node('n2')]);
    const replacement = after.find((p) => p.movedFrom === 'n1')!;
    expect(replacement.nodeId).toBeNull();
    expect(replacement.pendingReason).toMatch(/host port tcp\/80/);
    expect(after.find((p) => p.replicaId === 'web.a')).toMatchObject({ nodeId: 'n1', replacedBy: replacement.replicaId });
  });

  it('honours a service lostAfterMs of its own', () => {
    expect(planPlacements([service(twoOnTwo, { lostAfterMs: 120_000 })], [node('n1', 90_000), node('n2'), node('n3')], options())).toEqual([]);
    const fast = pass(service(twoOnTwo, { lostAfterMs: 5_000 }), [node('n1', 5_000), node('n2'), node('n3')]);
    expect(fast.some((p) => p.movedFrom === 'n1')).toBe(true);
  });

  it('never moves a service that waits for its node (onNodeLost: wait)', () => {
    expect(planPlacements([service(twoOnTwo, { onNodeLost: 'wait' })], [node('n1', 3_600_000), node('n2'), node('n3')], options())).toEqual([]);
  });

  it('never moves a global replica', () => {
    const svc: SchedService = { ...service([]), spec: { ...service([], { mode: 'global', replicas: undefined }).spec }, placements: twoOnTwo };
    expect(planPlacements([svc], [node('n1', 3_600_000), node('n2')], options())).toEqual([]);
  });

  it('scaling down while a replica moves removes the pending replacement and its original', () => {
    const moving = [placed('web.b', 'n2'), { replicaId: 'web.new1', nodeId: null, pendingReason: 'no ready node', movedFrom: 'n1' }, { ...placed('web.a', 'n1'), replacedBy: 'web.new1' }];
    const after = pass(service(moving, { replicas: 1 }), [node('n1', 90_000), node('n2')]);
    expect(after).toEqual([placed('web.b', 'n2')]);
  });

  it('a node removed from the fleet takes its waiting original with it', () => {
    const moving = [placed('web.b', 'n2'), { ...placed('web.new1', 'n3'), movedFrom: 'n1' }, { ...placed('web.a', 'n1'), replacedBy: 'web.new1' }];
    const after = pass(service(moving, { replicas: 2 }), [node('n2'), node('n3')]);
    expect(after.map((p) => p.replicaId)).toEqual(['web.b', 'web.new1']);
  });
});
