/**
 * Sticky placement: a replica of a replicated service with a named volume keeps to the node that
 * holds its data. The scheduler never moves one on its own (a lost node waits by default; a
 * drained or no longer matching node keeps it; a start-first update starts the new container
 * beside the old one); the operator moves one on purpose (`movedOnRequest`). Scale-up places new
 * replicas as usual.
 */
import { describe, expect, it } from 'vitest';
import { planPlacements, type PlacementOptions } from '../../hub/scheduler/placement.js';
import type { Placement, SchedNode, SchedService } from '../../hub/scheduler/types.js';
import { validateServiceSpec } from '../../hub/spec/service-spec.js';

const node = (id: string, extra: Partial<SchedNode> = {}): SchedNode => ({
  id,
  name: id,
  labels: { zone: 'a' },
  facts: { hostname: id, arch: 'x64', os: 'linux', cpus: 4, memoryBytes: 8 * 1024 ** 3 },
  schedulable: true,
  downForMs: null,
  protocolVersion: 6,
  ...extra,
});
const down = (id: string, downForMs: number) => node(id, { schedulable: false, downForMs, protocolVersion: null });
const draining = (id: string) => node(id, { schedulable: false, scheduling: 'draining' });

const withVolume = { volumes: [{ name: 'data', target: '/data' }] };

function service(placements: Placement[], input: Record<string, unknown> = {}): SchedService {
  const v = validateServiceSpec({ image: 'x', replicas: placements.filter((p) => !p.replacedBy).length, ...withVolume, ...input });
  if (!v.ok) throw new Error(JSON.stringify(v.errors));
  return { name: 'db', spec: v.value, placements };
}

function options(running: string[] = []): PlacementOptions {
  let n = 0;
  return { newReplicaId: (s) => `${s}.new${++n}`, defaultLostAfterMs: 60_000, isRunning: (id) => running.includes(id) };
}

const placed = (replicaId: string, nodeId: string): Placement => ({ replicaId, nodeId, pendingReason: null });

function pass(svc: SchedService, nodes: SchedNode[], opts = options()): Placement[] {
  const [change] = planPlacements([svc], nodes, opts);
  return change ? change.placements : [...svc.placements];
}

const twoOnTwo = [placed('db.a', 'n1'), placed('db.b', 'n2')];

describe('sticky placement of services with a named volume', () => {
  it('defaults onNodeLost to wait, so a lost node keeps its replica', () => {
    expect(service(twoOnTwo).spec.onNodeLost).toBe('wait');
    expect(planPlacements([service(twoOnTwo)], [down('n1', 10 * 60_000), node('n2'), node('n3')], options())).toEqual([]);
  });

  it('keeps a replica on a draining node: its data is there (the operator moves it on purpose)', () => {
    expect(planPlacements([service(twoOnTwo)], [draining('n1'), node('n2'), node('n3')], options())).toEqual([]);
  });

  it('keeps a replica on a node that no longer matches the constraints', () => {
    const svc = service(twoOnTwo, { constraints: ['node.labels.zone == a'] });
    expect(planPlacements([svc], [node('n1', { labels: { zone: 'b' } }), node('n2'), node('n3')], options())).toEqual([]);
  });

  it('still hands a replica without a volume over off a draining node', () => {
    const v = validateServiceSpec({ image: 'x', replicas: 2 });
    if (!v.ok) throw new Error('bad spec');
    const after = pass({ name: 'db', spec: v.value, placements: twoOnTwo }, [draining('n1'), node('n2'), node('n3')]);
    expect(after).toContainEqual({ replicaId: 'db.new1', nodeId: 'n3', pendingReason: null, movedFrom: 'n1' });
  });

  it('places new replicas of a scale-up as usual, spread over the nodes', () => {
    const after = pass(service(twoOnTwo, { replicas: 3 }), [node('n1'), node('n2'), node('n3')]);
    expect(after).toEqual([...twoOnTwo, placed('db.new1', 'n3')]);
  });

  it("starts a start-first update's new container on the node of the replica it replaces", () => {
    const updating = [{ ...placed('db.a', 'n1'), revision: 1, replacedBy: 'db.u1' }, { ...placed('db.b', 'n2'), revision: 1 }, { replicaId: 'db.u1', nodeId: null, pendingReason: null }];
    const after = pass(service(updating, { replicas: 2 }), [node('n1'), node('n2'), node('n3')]);
    expect(after.find((p) => p.replicaId === 'db.u1')).toEqual(placed('db.u1', 'n1'));
  });

  it("leaves a start-first update's new container pending, saying why, while the data's node cannot take it", () => {
    const updating = [{ ...placed('db.a', 'n1'), revision: 1, replacedBy: 'db.u1' }, { ...placed('db.b', 'n2'), revision: 1 }, { replicaId: 'db.u1', nodeId: null, pendingReason: null }];
    const after = pass(service(updating, { replicas: 2 }), [down('n1', 1000), node('n2'), node('n3')]);
    const u1 = after.find((p) => p.replicaId === 'db.u1');
    expect(u1).toMatchObject({ nodeId: null });
    expect(u1?.pendingReason).toMatch(/n1.*volume|volume.*n1/);
  });

  it('leaves a replica pending on its node while that node\'s agent is too old to mount volumes, and runs it there again once it is not', async () => {
    const old = node('n1', { protocolVersion: 5 });
    const after = pass(service(twoOnTwo), [old, node('n2'), node('n3')]);
    expect(after).toHaveLength(2);
    const a = after.find((p) => p.replicaId === 'db.a');
    expect(a).toMatchObject({ nodeId: 'n1' });
    expect(a?.pendingReason).toMatch(/n1.*protocol 6.*speaks 5/);
    // Stable while the agent stays old; back where it was once the agent speaks 6 again.
    expect(planPlacements([service(after, { replicas: 2 })], [old, node('n2'), node('n3')], options())).toEqual([]);
    expect(pass(service(after, { replicas: 2 }), [node('n1'), node('n2'), node('n3')])).toEqual(twoOnTwo);
  });

  describe('a move the operator asked for', () => {
    // As a pass lists them: what stays, the replacement, then the replica handing over.
    const moving = (to: string | null): Placement[] => [
      placed('db.b', 'n2'),
      { replicaId: 'db.m1', nodeId: to, pendingReason: null, movedFrom: 'n1', movedOnRequest: true },
      { ...placed('db.a', 'n1'), replacedBy: 'db.m1' },
    ];

    it('places the replacement on another node, never back on the one it leaves, and keeps the original meanwhile', () => {
      // n1 is the emptiest node after the move: the scheduler would pick it were it not excluded.
      const after = pass(service(moving(null), { replicas: 2 }), [node('n1'), node('n2'), node('n3')]);
      expect(after).toContainEqual({ replicaId: 'db.m1', nodeId: 'n3', pendingReason: null, movedFrom: 'n1', movedOnRequest: true });
      expect(after).toContainEqual({ ...placed('db.a', 'n1'), replacedBy: 'db.m1' });
    });

    it('is not called off because the node it leaves is fine', () => {
      expect(planPlacements([service(moving('n3'), { replicas: 2 })], [node('n1'), node('n2'), node('n3')], options())).toEqual([]);
    });

    it('drops the original once the replacement runs', () => {
      const after = pass(service(moving('n3'), { replicas: 2 }), [node('n1'), node('n2'), node('n3')], options(['db.m1']));
      expect(after.map((p) => [p.replicaId, p.nodeId])).toEqual([
        ['db.b', 'n2'],
        ['db.m1', 'n3'],
      ]);
    });

    it('leaves the replacement pending when no other node fits', () => {
      const after = pass(service(moving(null), { replicas: 2 }), [node('n1'), node('n2', { schedulable: false, scheduling: 'cordoned' })]);
      expect(after.find((p) => p.replicaId === 'db.m1')).toMatchObject({ nodeId: null, pendingReason: expect.any(String) });
      expect(after).toContainEqual({ ...placed('db.a', 'n1'), replacedBy: 'db.m1' });
    });
  });
});
