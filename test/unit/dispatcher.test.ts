import { describe, expect, it } from 'vitest';
import { Dispatcher } from '../../hub/dispatcher.js';
import type { Placement } from '../../hub/scheduler/types.js';
import type { ServiceRecord, Store } from '../../hub/store/store.js';
import { validateServiceSpec, type NormalizedSpec } from '../../hub/spec/service-spec.js';
import { prng } from '../helpers/prng.js';

const NODES = ['n1', 'n2', 'n3', 'n4'];

function spec(command: string): NormalizedSpec {
  const v = validateServiceSpec({ image: 'nginx:1', command: [command] });
  if (!v.ok) throw new Error(JSON.stringify(v.errors));
  return v.value;
}

/** Only what the dispatcher reads when nothing is published. */
const noStore = { listServices: () => [], listNodes: () => [], getNode: () => undefined, subscribe: () => () => undefined } as unknown as Store;

const record = (name: string, s: NormalizedSpec, placements: Placement[]): ServiceRecord => ({
  name,
  spec: s,
  placements,
  revision: 1,
  createdAt: '',
  updatedAt: '',
});

/** Every node's target, as replica id -> spec hash. */
function targets(d: Dispatcher): Record<string, Record<string, string>> {
  const out: Record<string, Record<string, string>> = {};
  for (const n of NODES) out[n] = Object.fromEntries(d.targetOf(n).replicas.map((r) => [r.replicaId, r.specHash]));
  return out;
}

describe('Dispatcher: changes of a service', () => {
  it('ends with the targets a fresh index of the last records gives, over random changes', () => {
    const rand = prng(7);
    const pick = <T>(xs: readonly T[]): T => xs[Math.floor(rand() * xs.length)] as T;
    const specs = [spec('a'), spec('b')];
    for (let run = 0; run < 200; run++) {
      const live = new Dispatcher(noStore, () => true);
      let current: ServiceRecord | undefined;
      let seq = 0;
      for (let step = 0; step < 12; step++) {
        // Like a pass: keep most placements in order, move, pend or drop some, append new ones.
        let placements: Placement[] = (current?.placements ?? []).flatMap((p): Placement[] => {
          const r = rand();
          if (r < 0.1) return [];
          if (r < 0.2) return [{ ...p, nodeId: pick(NODES) }];
          if (r < 0.25) return [{ ...p, pendingReason: 'no node fits' }];
          if (r < 0.3) return [{ ...p, pendingReason: null, nodeId: pick(NODES) }];
          return [p];
        });
        for (let k = Math.floor(rand() * 3); k > 0; k--) placements.push({ replicaId: `r${++seq}`, nodeId: pick(NODES), pendingReason: null });
        if (rand() < 0.1) placements = [...placements].reverse();
        const next = rand() < 0.1 ? undefined : record('web', rand() < 0.2 ? pick(specs) : (current?.spec ?? specs[0]!), placements);
        if (current || next) live.serviceChanged('web', next);
        current = next;

        const fresh = new Dispatcher(noStore, () => true);
        if (current) fresh.serviceChanged('web', current);
        expect(targets(live), `run ${run} step ${step}`).toEqual(targets(fresh));
      }
    }
  });
});

describe('Dispatcher: replicas of an earlier revision', () => {
  const older = spec('old');
  const newer = spec('new');
  const withHistory = (placements: Placement[]): ServiceRecord => ({
    ...record('web', newer, placements),
    revision: 2,
    history: [{ revision: 1, acceptedAt: '', spec: older }],
  });

  it('sends a pinned replica its revision\'s container, and the current one once it moves on', () => {
    const d = new Dispatcher(noStore, () => true);
    const pinned: Placement = { replicaId: 'r1', nodeId: 'n1', pendingReason: null, revision: 1 };
    const current: Placement = { replicaId: 'r2', nodeId: 'n1', pendingReason: null };
    d.serviceChanged('web', withHistory([pinned, current]));
    const byId = () => Object.fromEntries(d.targetOf('n1').replicas.map((r) => [r.replicaId, r.container.command]));
    expect(byId()).toEqual({ r1: ['old'], r2: ['new'] });
    // A rolling update's step: the same replica, in the same place, now of the current revision.
    d.serviceChanged('web', withHistory([{ replicaId: 'r1', nodeId: 'n1', pendingReason: null }, current]));
    expect(byId()).toEqual({ r1: ['new'], r2: ['new'] });
    expect(d.specHashOfReplica('web', 'r1')).toBe(d.specHashOf('web'));
  });

  it('ends with the targets a fresh index gives, over random revision changes', () => {
    const rand = prng(11);
    for (let run = 0; run < 200; run++) {
      const live = new Dispatcher(noStore, () => true);
      let placements: Placement[] = [];
      for (let step = 0; step < 12; step++) {
        placements = placements.map((p) => {
          const r = rand();
          if (r < 0.3) return { ...p, revision: 1 };
          if (r < 0.6) {
            const { revision: _r, ...rest } = p;
            return rest;
          }
          if (r < 0.7) return { ...p, nodeId: NODES[Math.floor(rand() * NODES.length)]! };
          return p;
        });
        placements.push({ replicaId: `r${run}-${step}`, nodeId: NODES[step % NODES.length]!, pendingReason: null, ...(rand() < 0.5 ? { revision: 1 } : {}) });
        const next = withHistory(placements);
        live.serviceChanged('web', next);
        const fresh = new Dispatcher(noStore, () => true);
        fresh.serviceChanged('web', next);
        expect(targets(live), `run ${run} step ${step}`).toEqual(targets(fresh));
      }
    }
  });
});
