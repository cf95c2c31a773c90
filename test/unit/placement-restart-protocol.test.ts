/**
 * Agents of protocol 3 and older refuse a container carrying a restart policy (their schema is
 * closed): placement keeps such services on agents known to speak protocol 4, and a settled
 * service notices an agent that comes back older, even after a spell away (version unknown).
 */
import { describe, expect, it } from 'vitest';
import { planPlacements } from '../../hub/scheduler/placement.js';
import { SettledUsage } from '../../hub/scheduler/settled-usage.js';
import type { Placement } from '../../hub/scheduler/types.js';
import type { NormalizedSpec } from '../../hub/spec/service-spec.js';
import { versionedNode } from '../helpers/sched-node.js';
import { normalize } from '../helpers/spec-validation.js';

const node = versionedNode;

const spec = (input: Record<string, unknown>): NormalizedSpec => normalize({ image: 'nginx:1', ...input });

const restarting = { restart: { policy: 'always' } };
const on = (replicaId: string, nodeId: string): Placement => ({ replicaId, nodeId, pendingReason: null });

describe('placement of replicas with a restart policy', () => {
  it('places them only on agents of protocol 4, and says why the others do not fit', () => {
    let n = 0;
    const newReplicaId = (s: string) => `${s}-${++n}`;
    const replicated = [{ name: 'web', spec: spec({ ...restarting, replicas: 3 }), placements: [] }];
    expect(planPlacements(replicated, [node('a', 3), node('b', 4), node('c', 2)], { newReplicaId })[0]!.placements.map((p) => p.nodeId)).toEqual(['b', 'b', 'b']);
    const pinned = [{ name: 'pinned', spec: spec({ ...restarting, constraints: ['node.name != name-b'] }), placements: [] }];
    expect(planPlacements(pinned, [node('a', 3), node('b', 4), node('c', 2)], { newReplicaId })[0]!.placements[0]).toMatchObject({
      nodeId: null,
      pendingReason: '0 of 2 matching nodes fit: 2 have agents of protocol 2 and 3 (restart policies need an agent of protocol 4 or later)',
    });
  });

  it('moves a settled service off an agent that comes back older after a spell away', () => {
    const memory = new SettledUsage();
    const services = [{ name: 'web', spec: spec({ ...restarting, replicas: 2 }), placements: [on('web-1', 'a'), on('web-2', 'b')] }];
    const opts = { newReplicaId: () => 'web-3', settledUsage: memory };
    expect(planPlacements(services, [node('a', 4), node('b', 4)], opts)).toEqual([]);
    // Away (version unknown): nothing moves, nothing is judged again.
    expect(planPlacements(services, [node('a', null, 500), node('b', 4)], opts)).toEqual([]);
    expect(memory.recounted).toEqual([]);
    // Back with its own version: still nothing to judge again.
    expect(planPlacements(services, [node('a', 4), node('b', 4)], opts)).toEqual([]);
    expect(memory.recounted).toEqual([]);
    expect(planPlacements(services, [node('a', null, 500), node('b', 4)], opts)).toEqual([]);
    // Back older: its replica moves.
    const changes = planPlacements(services, [node('a', 3), node('b', 4)], opts);
    expect(changes.map((c) => c.placements)).toEqual([[on('web-2', 'b'), on('web-3', 'b')]]);
  });
});
