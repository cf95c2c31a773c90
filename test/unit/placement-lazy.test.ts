import { expect, it } from 'vitest';
import { planPlacements, type PlacementOptions } from '../../hub/scheduler/placement.js';
import { SettledUsage } from '../../hub/scheduler/settled-usage.js';
import type { Placement, SchedNode, SchedService, ServicePlacementChange } from '../../hub/scheduler/types.js';
import { validateServiceSpec } from '../../hub/spec/service-spec.js';

/**
 * Node states are made when a stage first needs one: a pass that judges a replicated service but
 * places nothing new (a scale-down, a hand-over) must not build the whole fleet's.
 */

const GB = 1024 ** 3;

function node(id: string): SchedNode {
  return { id, name: id, labels: {}, facts: { hostname: id, arch: 'amd64', os: 'linux', cpus: 4, memoryBytes: 8 * GB }, schedulable: true, downForMs: null };
}

function svc(name: string, input: Record<string, unknown>, placements: readonly Placement[] = []): SchedService {
  const v = validateServiceSpec({ image: 'nginx:1', ...input });
  if (!v.ok) throw new Error(JSON.stringify(v.errors));
  return { name, spec: v.value, placements };
}

function apply(services: readonly SchedService[], changes: readonly ServicePlacementChange[]): SchedService[] {
  const byName = new Map(changes.map((c) => [c.service, c.placements]));
  return services.map((s) => ({ ...s, placements: byName.get(s.name) ?? s.placements }));
}

function options(pass: number, extra: Partial<PlacementOptions> = {}): PlacementOptions {
  let n = 0;
  return { newReplicaId: (s) => `${s}-${pass}-${++n}`, defaultLostAfterMs: 60_000, ...extra };
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
