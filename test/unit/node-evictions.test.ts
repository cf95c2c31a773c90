/**
 * Replicas leaving a node that is still up: drained by its operator, or no longer matching its
 * service's constraints. Each hands over as a lost node's replica does (its replacement is placed
 * elsewhere; it stays until the replacement serves), so many of a service's at once as its update
 * settings' parallelism allows. And the order in which a scale-down removes replicas.
 */
import { beforeEach, describe, expect, it } from 'vitest';
import { planPlacements, type PlacementOptions } from '../../hub/scheduler/placement.js';
import { SettledUsage } from '../../hub/scheduler/settled-usage.js';
import type { Placement, SchedNode, SchedService } from '../../hub/scheduler/types.js';
import { validateServiceSpec } from '../../hub/spec/service-spec.js';
import { prng } from '../helpers/prng.js';

interface NodeOpts {
  scheduling?: 'cordoned' | 'draining';
  labels?: Record<string, string>;
  downForMs?: number;
}

function node(id: string, o: NodeOpts = {}): SchedNode {
  return {
    id,
    name: id,
    labels: o.labels ?? {},
    facts: { hostname: id, arch: 'x64', os: 'linux', cpus: 4, memoryBytes: 8 * 1024 ** 3 },
    schedulable: o.scheduling === undefined && o.downForMs === undefined,
    downForMs: o.downForMs ?? null,
    ...(o.scheduling ? { scheduling: o.scheduling } : {}),
  };
}

function svc(placements: readonly Placement[], input: Record<string, unknown> = {}, name = 'web'): SchedService {
  const replicas = input.mode === 'global' ? {} : { replicas: placements.filter((p) => !p.replacedBy).length };
  const v = validateServiceSpec({ image: 'x', ...replicas, ...input });
  if (!v.ok) throw new Error(JSON.stringify(v.errors));
  return { name, spec: v.value, placements };
}

/** New ids count up through a test's passes: web.new1, web.new2, ... */
let made = 0;
beforeEach(() => {
  made = 0;
});

/** `serving`: replicas whose agents report them serving; `failing`: failed or unhealthy ones. */
function options(serving: readonly string[] = [], failing: readonly string[] = []): PlacementOptions {
  return {
    newReplicaId: (s) => `${s}.new${++made}`,
    defaultLostAfterMs: 60_000,
    isRunning: (id) => serving.includes(id),
    isUnhealthy: (id) => failing.includes(id),
  };
}

const on = (replicaId: string, nodeId: string): Placement => ({ replicaId, nodeId, pendingReason: null });

/** One pass: the service's new placements (the old ones when unchanged). */
function pass(service: SchedService, nodes: readonly SchedNode[], opts = options()): Placement[] {
  const [change] = planPlacements([service], nodes, opts);
  return change ? change.placements : [...service.placements];
}

/** A pass, checked to be a fixed point under the same replica states. */
function step(service: SchedService, nodes: readonly SchedNode[], opts = options()): Placement[] {
  const after = pass(service, nodes, opts);
  expect(planPlacements([{ ...service, placements: after }], nodes, opts)).toEqual([]);
  return after;
}

const handingOver = (ps: readonly Placement[]) => ps.filter((p) => p.replacedBy).map((p) => p.replicaId).sort();
const nodesOf = (ps: readonly Placement[]) => ps.filter((p) => !p.replacedBy).map((p) => p.nodeId);

describe('a drained node', () => {
  const three = [on('web.a', 'n1'), on('web.b', 'n1'), on('web.c', 'n2')];
  const drained = [node('n1', { scheduling: 'draining' }), node('n2'), node('n3')];

  it('hands its replicas over one at a time by default: each stays until its replacement serves', () => {
    const first = step(svc(three), drained);
    expect(handingOver(first)).toEqual(['web.a']);
    const replacement = first.find((p) => p.movedFrom === 'n1') as Placement;
    expect(replacement).toEqual({ replicaId: 'web.new1', nodeId: 'n3', pendingReason: null, movedFrom: 'n1' });
    expect(first.find((p) => p.replicaId === 'web.a')).toEqual({ ...on('web.a', 'n1'), replacedBy: 'web.new1' });
    // web.b waits on the drained node, still counted and in its target.
    expect(first.find((p) => p.replicaId === 'web.b')).toEqual(on('web.b', 'n1'));

    // The replacement serves: web.a goes, and web.b is next.
    const second = step(svc(first, { replicas: 3 }), drained, options(['web.new1']));
    expect(second.map((p) => p.replicaId)).not.toContain('web.a');
    expect(handingOver(second)).toEqual(['web.b']);

    const third = step(svc(second, { replicas: 3 }), drained, options(['web.new1', 'web.new2']));
    expect(handingOver(third)).toEqual([]);
    expect(nodesOf(third)).not.toContain('n1');
    expect(third).toHaveLength(3);
  });

  it('moves as many at once as the update parallelism', () => {
    const four = [on('web.a', 'n1'), on('web.b', 'n1'), on('web.c', 'n1'), on('web.d', 'n2')];
    const after = step(svc(four, { update: { parallelism: 2 } }), drained);
    expect(handingOver(after)).toEqual(['web.a', 'web.b']);
    // One of them served: one more starts; the other still counts against the two.
    const next = step(svc(after, { replicas: 4, update: { parallelism: 2 } }), drained, options(['web.new1']));
    expect(handingOver(next)).toEqual(['web.b', 'web.c']);
  });

  it('moves everything of a lost node at once, whatever the parallelism', () => {
    const lost = [node('n1', { downForMs: 60_000 }), node('n2'), node('n3')];
    expect(handingOver(step(svc(three), lost))).toEqual(['web.a', 'web.b']);
  });

  it('stops the drain when uncordoned: a replica not yet moved stays, and a move not yet served is called off', () => {
    const first = step(svc(three), drained);
    const back = [node('n1'), node('n2'), node('n3')];
    expect(step(svc(first, { replicas: 3 }), back)).toEqual([on('web.b', 'n1'), on('web.c', 'n2'), on('web.a', 'n1')]);
    // Cordoned rather than active: the same, and nothing new goes to n1.
    const cordoned = [node('n1', { scheduling: 'cordoned' }), node('n2'), node('n3')];
    expect(step(svc(first, { replicas: 3 }), cordoned).filter((p) => p.nodeId === 'n1').map((p) => p.replicaId).sort()).toEqual(['web.a', 'web.b']);
  });

  it('a move whose replacement already serves completes after an uncordon', () => {
    const first = step(svc(three), drained);
    const after = step(svc(first, { replicas: 3 }), [node('n1'), node('n2'), node('n3')], options(['web.new1']));
    expect(after.map((p) => p.replicaId).sort()).toEqual(['web.b', 'web.c', 'web.new1']);
  });

  it('never places a replacement on a drained or cordoned node', () => {
    const only = [node('n1', { scheduling: 'draining' }), node('n2', { scheduling: 'cordoned' })];
    const after = step(svc([on('web.a', 'n1')]), only);
    expect(after.find((p) => p.movedFrom === 'n1')).toMatchObject({ nodeId: null });
    expect(after.find((p) => p.replicaId === 'web.a')).toMatchObject({ nodeId: 'n1', replacedBy: 'web.new1' });
  });

  it('is seen by a pass that keeps settled services between passes', () => {
    const memory = new SettledUsage();
    const up = [node('n1'), node('n2'), node('n3')];
    const service = svc(three);
    expect(planPlacements([service], up, { ...options(), settledUsage: memory })).toEqual([]);
    const [change] = planPlacements([service], drained, { ...options(), settledUsage: memory });
    expect(handingOver(change?.placements ?? [])).toEqual(['web.a']);
  });

  it('a global service leaves it at once and is not replaced elsewhere; a cordoned node keeps its replica', () => {
    const placements = [on('agent.a', 'n1'), on('agent.b', 'n2'), on('agent.c', 'n3')];
    const nodes = [node('n1', { scheduling: 'draining' }), node('n2', { scheduling: 'cordoned' }), node('n3')];
    expect(step(svc(placements, { mode: 'global' }, 'agent'), nodes)).toEqual([on('agent.b', 'n2'), on('agent.c', 'n3')]);
    // No new global replica on a node held by its operator; one once it is active again.
    const none = step(svc([], { mode: 'global' }, 'agent'), nodes);
    expect(none.map((p) => p.nodeId)).toEqual(['n3']);
  });
});

describe('a hand-over on a live node that is no move', () => {
  it('stays until its replacement serves (a rolling update, start-first), even on an active node', () => {
    const nodes = [node('n1'), node('n2')];
    // What a start-first batch leaves: the old replica handing over to one placed anywhere.
    const batch = [{ ...on('web.a', 'n1'), revision: 1, replacedBy: 'web.b' }, on('web.b', 'n2')];
    expect(step(svc(batch, { replicas: 1 }), nodes)).toEqual([on('web.b', 'n2'), batch[0]]);
    expect(step(svc(batch, { replicas: 1 }), nodes, options(['web.b']))).toEqual([on('web.b', 'n2')]);
  });
});

describe('a cordoned node', () => {
  it('keeps what runs there and takes nothing new', () => {
    const nodes = [node('n1', { scheduling: 'cordoned' }), node('n2')];
    const service = svc([on('web.a', 'n1')], { replicas: 3 });
    const after = step(service, nodes);
    expect(after.map((p) => p.nodeId)).toEqual(['n1', 'n2', 'n2']);
  });
});

describe('pending reasons', () => {
  it('say a node takes no new replicas because of its operator, not that it is not ready', () => {
    const after = step(svc([], { replicas: 1 }), [node('n1', { scheduling: 'cordoned' }), node('n2', { scheduling: 'draining' })]);
    expect(after[0]?.pendingReason).toBe('no node takes new replicas (2 nodes are cordoned or draining)');
    const mixed = step(svc([], { replicas: 1, ports: [{ containerPort: 80, hostPort: 80 }] }), [
      node('n1', { scheduling: 'cordoned' }),
      node('n2', { downForMs: 1000 }),
      node('n3'),
    ]);
    expect(mixed[0]?.nodeId).toBe('n3');
  });
});

describe('a node that no longer matches', () => {
  const zoned = (zone: string) => node('n1', { labels: { zone } });
  const spec = { constraints: ['node.labels.zone == a'] };
  const placements = [on('web.a', 'n1'), on('web.b', 'n1')];

  it('hands its replicas over, one at a time by default, each kept until its replacement serves', () => {
    const nodes = [zoned('b'), node('n2', { labels: { zone: 'a' } })];
    const first = step(svc(placements, spec), nodes);
    expect(handingOver(first)).toEqual(['web.a']);
    expect(first.find((p) => p.replicaId === 'web.new1')).toMatchObject({ nodeId: 'n2', movedFrom: 'n1' });
    const second = step(svc(first, { ...spec, replicas: 2 }), nodes, options(['web.new1']));
    expect(handingOver(second)).toEqual(['web.b']);
    expect(second.map((p) => p.replicaId)).not.toContain('web.a');
  });

  it('keeps them when it matches again before the replacement serves', () => {
    const first = step(svc(placements, spec), [zoned('b'), node('n2', { labels: { zone: 'a' } })]);
    const back = step(svc(first, { ...spec, replicas: 2 }), [zoned('a'), node('n2', { labels: { zone: 'a' } })]);
    expect(back.map((p) => p.replicaId).sort()).toEqual(['web.a', 'web.b']);
    expect(handingOver(back)).toEqual([]);
  });
});

describe('scale-down order', () => {
  // n1 crowded, n2 even, n3 down, n4 cordoned; ids say nothing of age: list order does.
  const nodes = [node('n1'), node('n2'), node('n3', { downForMs: 1000 }), node('n4', { scheduling: 'cordoned' })];
  const existing = [
    on('web.z1', 'n1'), // oldest
    on('web.y2', 'n2'),
    on('web.x3', 'n1'),
    on('web.w4', 'n3'), // on a down node
    { replicaId: 'web.v5', nodeId: null, pendingReason: 'no room' }, // pending
    on('web.u6', 'n4'), // on a cordoned node
    on('web.t7', 'n2'), // unhealthy
    on('web.s8', 'n1'),
    on('web.r9', 'n2'), // newest
  ];
  const failing = ['web.t7'];
  const table: Array<{ replicas: number; removed: string[]; why: string }> = [
    { replicas: 8, removed: ['web.v5'], why: 'pending first' },
    { replicas: 7, removed: ['web.v5', 'web.w4'], why: 'then on a node that is down' },
    { replicas: 6, removed: ['web.v5', 'web.w4', 'web.t7'], why: 'then failing or unhealthy' },
    { replicas: 5, removed: ['web.v5', 'web.w4', 'web.t7', 'web.u6'], why: 'then on a node that takes no new replicas' },
    // n1 has 3 (z1, x3, s8), n2 has 2 (y2, r9): the most crowded first, its newest.
    { replicas: 4, removed: ['web.v5', 'web.w4', 'web.t7', 'web.u6', 'web.s8'], why: 'then the newest of the most crowded node' },
    // 2 each: the newest of them all, r9, though its id sorts lowest.
    { replicas: 3, removed: ['web.v5', 'web.w4', 'web.t7', 'web.u6', 'web.s8', 'web.r9'], why: 'equally crowded: the newest' },
    { replicas: 2, removed: ['web.v5', 'web.w4', 'web.t7', 'web.u6', 'web.s8', 'web.r9', 'web.x3'], why: 'then again the most crowded' },
  ];
  for (const { replicas, removed, why } of table) {
    it(`to ${replicas}: ${why}`, () => {
      const after = step(svc(existing, { replicas }), nodes, options([], failing));
      const gone = existing.map((p) => p.replicaId).filter((id) => !after.some((p) => p.replicaId === id));
      expect(gone.sort()).toEqual([...removed].sort());
      expect(after).toHaveLength(replicas);
    });
  }

  it('a replacement just placed counts as newer than the replicas before it', () => {
    const lost = [node('n1', { downForMs: 60_000 }), node('n2'), node('n3')];
    const moved = step(svc([on('web.x', 'n1'), on('web.y', 'n2'), on('web.z', 'n3')]), lost);
    // n2 holds web.y and the replacement (whose id sorts lower): the replacement is the newer, and
    // with it gone its original has nothing to hand over to.
    expect(moved.find((p) => p.movedFrom === 'n1')).toMatchObject({ replicaId: 'web.new1', nodeId: 'n2' });
    expect(step(svc(moved, { replicas: 2 }), lost)).toEqual([on('web.y', 'n2'), on('web.z', 'n3')]);
  });
});

describe('cordons, drains and relabels over random passes', () => {
  for (let seed = 1; seed <= 30; seed++) {
    it(`answer the same with the settled usage kept between passes, and place nothing new on a held node (seed ${seed})`, () => {
      const rand = prng(seed);
      const pick = <T>(xs: readonly T[]): T => xs[Math.floor(rand() * xs.length)] as T;
      const memory = new SettledUsage();
      const opts = new Map<string, NodeOpts>();
      for (let i = 0; i < 8; i++) opts.set(`n${i}`, { labels: { zone: pick(['a', 'b']) } });
      const randomSpec = (): Record<string, unknown> => ({
        replicas: Math.floor(rand() * 9),
        update: { parallelism: pick([1, 2, 3]) },
        ...(rand() < 0.4 ? { constraints: [`node.labels.zone == ${pick(['a', 'b'])}`] } : {}),
      });
      let services: SchedService[] = [0, 1, 2, 3].map((i) => svc([], randomSpec(), `s${i}`));
      services.push(svc([], { mode: 'global' }, 'g'));
      // A usable node unchanged since the last pass is the same object, as the hub gives it.
      const made = new Map<string, { o: NodeOpts; node: SchedNode }>();
      let n = 0;
      for (let pass = 0; pass < 50; pass++) {
        for (let c = Math.floor(rand() * 3); c > 0; c--) {
          const id = pick([...opts.keys()]);
          const o = opts.get(id) as NodeOpts;
          const what = rand();
          if (what < 0.35) opts.set(id, { ...o, scheduling: pick([undefined, 'cordoned', 'draining'] as const) });
          else if (what < 0.55) opts.set(id, { ...o, labels: { zone: pick(['a', 'b']) } });
          else if (what < 0.7) opts.set(id, { ...o, downForMs: o.downForMs === undefined ? pick([1_000, 60_000]) : undefined });
          else {
            const i = Math.floor(rand() * 4);
            services = services.map((s) => (s.name === `s${i}` ? svc(s.placements, randomSpec(), s.name) : s));
          }
        }
        const nodes = [...opts].map(([id, o]) => {
          const kept = made.get(id);
          if (kept && kept.o === o) return kept.node;
          const fresh = node(id, o);
          if (o.downForMs === undefined) made.set(id, { o, node: fresh });
          else made.delete(id);
          return fresh;
        });
        const serving = (id: string) => id.length % 2 === 0;
        const base = (): PlacementOptions => ({ ...options(), newReplicaId: (s) => `${s}.p${pass}-${++n}`, isRunning: serving });
        const start = n;
        const incremental = planPlacements(services, nodes, { ...base(), settledUsage: memory });
        n = start;
        const scratch = planPlacements(services, nodes, base());
        expect(incremental, `seed ${seed}, pass ${pass}`).toEqual(scratch);
        const before = new Map(services.map((s) => [s.name, new Set(s.placements.map((p) => `${p.replicaId}@${p.nodeId}`))]));
        const byName = new Map(incremental.map((ch) => [ch.service, ch.placements]));
        services = services.map((s) => ({ ...s, placements: byName.get(s.name) ?? s.placements }));
        const held = new Set(nodes.filter((x) => x.scheduling !== undefined).map((x) => x.id));
        for (const s of services) {
          for (const p of s.placements) {
            if (p.nodeId === null || p.pendingReason !== null || !held.has(p.nodeId)) continue;
            expect(before.get(s.name)?.has(`${p.replicaId}@${p.nodeId}`), `seed ${seed}, pass ${pass}: ${p.replicaId} new on held ${p.nodeId}`).toBe(true);
          }
        }
      }
    });
  }
});
