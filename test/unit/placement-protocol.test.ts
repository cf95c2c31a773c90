/**
 * Agents of protocol 1 and 2 refuse a container carrying a health check (their schema is closed):
 * placement keeps such services on agents known to speak protocol 3 or later.
 */
import { describe, expect, it } from 'vitest';
import { planPlacements, type PlacementOptions } from '../../hub/scheduler/placement.js';
import { SettledUsage } from '../../hub/scheduler/settled-usage.js';
import type { Placement, SchedNode, SchedService } from '../../hub/scheduler/types.js';
import type { NormalizedSpec } from '../../hub/spec/service-spec.js';
import { versionedNode } from '../helpers/sched-node.js';
import { normalize } from '../helpers/spec-validation.js';

const node = versionedNode;

const spec = (input: Record<string, unknown>): NormalizedSpec => normalize({ image: 'nginx:1', ...input });

const checked = { healthcheck: { type: 'tcp', port: 80 } };
const on = (replicaId: string, nodeId: string): Placement => ({ replicaId, nodeId, pendingReason: null });

function ids(): PlacementOptions {
  let n = 0;
  return { newReplicaId: (service) => `${service}-${++n}` };
}

function plan(services: SchedService[], nodes: SchedNode[], opts: PlacementOptions = ids()): Map<string, Placement[]> {
  return new Map(planPlacements(services, nodes, opts).map((c) => [c.service, c.placements]));
}

describe('placement by agent protocol', () => {
  it('places replicas with a health check only on agents of protocol 3 or later', () => {
    const out = plan([{ name: 'web', spec: spec({ ...checked, replicas: 4 }), placements: [] }], [node('a', 2), node('b', 3), node('c', 1)]);
    const placements = out.get('web') as Placement[];
    expect(placements.map((p) => [p.nodeId, p.pendingReason])).toEqual([
      ['b', null],
      ['b', null],
      ['b', null],
      ['b', null],
    ]);
  });

  it('places replicas without a check on agents of every version', () => {
    const out = plan([{ name: 'web', spec: spec({ replicas: 3 }), placements: [] }], [node('a', 2), node('b', 3), node('c', 1)]);
    expect(new Set((out.get('web') as Placement[]).map((p) => p.nodeId))).toEqual(new Set(['a', 'b', 'c']));
  });

  it('says why a replicated replica stays pending when only older agents match', () => {
    const out = plan([{ name: 'web', spec: spec({ ...checked, replicas: 1 }), placements: [] }], [node('a', 2), node('b', 1)]);
    expect(out.get('web')).toEqual([
      {
        replicaId: 'web-1',
        nodeId: null,
        pendingReason: '0 of 2 matching nodes fit: 2 have agents of protocol 1 and 2 (health checks need an agent of protocol 3 or later)',
      },
    ]);
  });

  it('keeps a global replica pending on an older agent, with the reason, and places it on a newer one', () => {
    const out = plan([{ name: 'mon', spec: spec({ ...checked, mode: 'global' }), placements: [] }], [node('a', 2), node('b', 3)]);
    expect(out.get('mon')).toEqual([
      { replicaId: 'mon-1', nodeId: 'a', pendingReason: "health checks need an agent of protocol 3 or later; node's agent speaks 2" },
      { replicaId: 'mon-2', nodeId: 'b', pendingReason: null },
    ]);
  });

  it('moves replicas off an agent known to be too old once the spec gains a check', () => {
    const placements = [on('web-1', 'a'), on('web-2', 'b')];
    const out = plan([{ name: 'web', spec: spec({ ...checked, replicas: 2 }), placements }], [node('a', 2), node('b', 3)], {
      newReplicaId: () => 'web-3',
    });
    expect(out.get('web')).toEqual([on('web-2', 'b'), on('web-3', 'b')]);
  });

  it('leaves replicas on a node whose agent is away (version unknown) as for any node that is down', () => {
    const placements = [on('web-1', 'a'), on('web-2', 'b')];
    const services = [{ name: 'web', spec: spec({ ...checked, replicas: 2 }), placements }];
    expect(planPlacements(services, [node('a', null, 5_000), node('b', 3)], ids())).toEqual([]);
  });

  it('judges a settled service again when an agent of one of its nodes comes back older', () => {
    const memory = new SettledUsage();
    const services = [{ name: 'web', spec: spec({ ...checked, replicas: 2 }), placements: [on('web-1', 'a'), on('web-2', 'b')] }];
    const opts = { newReplicaId: () => 'web-3', settledUsage: memory };
    expect(planPlacements(services, [node('a', 3), node('b', 3)], opts)).toEqual([]);
    expect(memory.recounted).toEqual(['web']);
    expect(planPlacements(services, [node('a', 3), node('b', 3)], opts)).toEqual([]);
    expect(memory.recounted).toEqual([]);
    const changes = planPlacements(services, [node('a', 2), node('b', 3)], opts);
    expect(changes.map((c) => c.placements)).toEqual([[on('web-2', 'b'), on('web-3', 'b')]]);
  });
});

describe('placement by agent protocol is stable', () => {
  it.each([
    ['replicated', { ...checked, replicas: 3 }],
    ['global', { ...checked, mode: 'global' }],
  ])('changes nothing when run again on its own output (%s)', (_mode, input) => {
    const nodes = [node('a', 2), node('b', 3), node('c', null, 1_000), node('d', 1)];
    const opts = ids();
    let services: SchedService[] = [{ name: 'svc', spec: spec(input), placements: [on('svc-x', 'a'), on('svc-y', 'c')] }];
    for (let pass = 0; pass < 2; pass++) {
      const changes = planPlacements(services, nodes, opts);
      services = services.map((s) => ({ ...s, placements: changes.find((c) => c.service === s.name)?.placements ?? s.placements }));
    }
    expect(planPlacements(services, nodes, opts)).toEqual([]);
  });
});

describe('settled services and agent versions', () => {
  it('does not judge a settled service again when its agents reconnect with a version that reads its checks', () => {
    const memory = new SettledUsage();
    const services = [{ name: 'web', spec: spec({ ...checked, replicas: 2 }), placements: [on('web-1', 'a'), on('web-2', 'b')] }];
    const opts = { newReplicaId: () => 'web-3', settledUsage: memory };
    expect(planPlacements(services, [node('a', 3), node('b', 3)], opts)).toEqual([]);
    expect(memory.recounted).toEqual(['web']);
    // Away (version unknown), then back.
    expect(planPlacements(services, [node('a', null, 500), node('b', 3)], opts)).toEqual([]);
    expect(planPlacements(services, [node('a', 3), node('b', 3)], opts)).toEqual([]);
    expect(memory.recounted).toEqual([]);
  });
});
