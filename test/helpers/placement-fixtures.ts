/** Services and passes for the scheduler's tests that compare passes with and without its caches. */
import type { PlacementOptions } from '../../hub/scheduler/placement.js';
import type { Placement, SchedService, ServicePlacementChange } from '../../hub/scheduler/types.js';
import { validateServiceSpec } from '../../hub/spec/service-spec.js';

export function svc(name: string, input: Record<string, unknown>, placements: readonly Placement[] = []): SchedService {
  const v = validateServiceSpec({ image: 'nginx:1', ...input });
  if (!v.ok) throw new Error(JSON.stringify(v.errors));
  return { name, spec: v.value, placements };
}

/** The services with a pass's changes committed, as the hub's loop commits them. */
export function apply(services: readonly SchedService[], changes: readonly ServicePlacementChange[]): SchedService[] {
  const byName = new Map(changes.map((c) => [c.service, c.placements]));
  return services.map((s) => ({ ...s, placements: byName.get(s.name) ?? s.placements }));
}

/** The same ids for the same calls: a pass with a cache and one without must name replicas alike. */
export function options(pass: number, extra: Partial<PlacementOptions> = {}): PlacementOptions {
  let n = 0;
  return { newReplicaId: (s) => `${s}-${pass}-${++n}`, defaultLostAfterMs: 60_000, ...extra };
}
