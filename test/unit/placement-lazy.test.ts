import { expect, it } from 'vitest';
import { planPlacements } from '../../hub/scheduler/placement.js';
import { SettledUsage } from '../../hub/scheduler/settled-usage.js';
import type { SchedNode } from '../../hub/scheduler/types.js';
import { apply, options, svc } from '../helpers/placement-fixtures.js';

/**
 * Node states are made when a stage first needs one: a pass that judges a replicated service but
 * places nothing new (a scale-down, a hand-over) must not build the whole fleet's.
 */

const GB = 1024 ** 3;

function node(id: string): SchedNode {
  return { id, name: id, labels: {}, facts: { hostname: id, arch: 'amd64', os: 'linux', cpus: 4, memoryBytes: 8 * GB }, schedulable: true, downForMs: null };
}

/** Counts the node states a pass builds: each one asks for its settled usage once. */
class CountingUsage extends SettledUsage {
  lookups = 0;
  override usageOf(nodeId: string): ReturnType<SettledUsage['usageOf']> {
    this.lookups++;
    return super.usageOf(nodeId);
  }
}

it('builds the state of only the nodes it looks at when a replicated service places nothing new', () => {
  const memory = new CountingUsage();
  const many = Array.from({ length: 500 }, (_, i) => `m${String(i).padStart(3, '0')}`);
  const fleet = () => many.map((id) => node(id));
  let services = [svc('big', { replicas: 2000 }), svc('small', { replicas: 3 })];
  services = apply(services, planPlacements(services, fleet(), options(0, { settledUsage: memory })));
  expect(planPlacements(services, fleet(), options(1, { settledUsage: memory }))).toEqual([]);

  // small scales down by one: its 3 nodes are looked at, not the 500.
  services = services.map((s) => (s.name === 'small' ? svc('small', { replicas: 2 }, s.placements) : s));
  memory.lookups = 0;
  const changes = planPlacements(services, fleet(), options(2, { settledUsage: memory }));
  expect(changes).toEqual(planPlacements(services, fleet(), options(2)));
  expect(changes.map((c) => c.service)).toEqual(['small']);
  expect(memory.lookups).toBeLessThanOrEqual(3);
});
