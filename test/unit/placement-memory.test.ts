import { describe, expect, it } from 'vitest';
import { summarize, summaryOf } from '../../hub/scheduler/keep.js';
import { planPlacements } from '../../hub/scheduler/placement.js';
import { newPlan } from '../../hub/scheduler/service-plan.js';
import { SettledUsage } from '../../hub/scheduler/settled-usage.js';
import type { SchedNode, SchedService, ServicePlacementChange } from '../../hub/scheduler/types.js';
import { apply, options, svc } from '../helpers/placement-fixtures.js';
import { prng } from '../helpers/prng.js';

const GB = 1024 ** 3;
const LOST_AFTER_MS = 60_000;

interface NodeOpts {
  labels?: Record<string, string>;
  cpus?: number;
  downForMs?: number | null;
  unknown?: boolean;
}

/** Fresh objects every call, as the hub builds them for every pass. */
function node(id: string, o: NodeOpts = {}): SchedNode {
  const downForMs = o.downForMs ?? null;
  return {
    id,
    name: id,
    labels: { ...(o.labels ?? {}) },
    facts: o.unknown ? null : { hostname: id, arch: 'amd64', os: 'linux', cpus: o.cpus ?? 4, memoryBytes: 8 * GB },
    schedulable: downForMs === null && !o.unknown,
    downForMs,
  };
}

describe('settled usage kept between passes', () => {
  const nodeIds = Array.from({ length: 20 }, (_, i) => `n${String(i).padStart(2, '0')}`);
  const nodes = (o: Record<string, NodeOpts> = {}) => nodeIds.map((id) => node(id, o[id]));

  it('counts an unchanged settled service once, and again when its placements or one of its nodes change', () => {
    const memory = new SettledUsage();
    let services = [svc('big', { replicas: 200, resources: { cpus: 0.1 } }), svc('small', { replicas: 3, resources: { cpus: 1 } })];
    services = apply(services, planPlacements(services, nodes(), options(0, { settledUsage: memory })));

    // Settled now: the first pass that finds them so counts them.
    expect(planPlacements(services, nodes(), options(1, { settledUsage: memory }))).toEqual([]);
    expect([...memory.recounted].sort()).toEqual(['big', 'small']);

    // Nothing changed (new node objects, same values): nothing is counted again.
    expect(planPlacements(services, nodes(), options(2, { settledUsage: memory }))).toEqual([]);
    expect(memory.recounted).toEqual([]);

    // A scaled small service is judged; the big one is still not counted again.
    const scaled = services.map((s) => (s.name === 'small' ? svc('small', { replicas: 4, resources: { cpus: 1 } }, s.placements) : s));
    const changes = planPlacements(scaled, nodes(), options(3, { settledUsage: memory }));
    expect(changes).toEqual(planPlacements(scaled, nodes(), options(3)));
    expect(changes.map((c) => c.service)).toEqual(['small']);
    expect(memory.recounted).toEqual([]);
    services = apply(scaled, changes);

    // The same placements in a new array: counted again (the cache is keyed by the array).
    services = services.map((s) => ({ ...s, placements: [...s.placements] }));
    expect(planPlacements(services, nodes(), options(4, { settledUsage: memory }))).toEqual([]);
    expect([...memory.recounted].sort()).toEqual(['big', 'small']);

    // A node that holds a replica of big is relabelled: big has no constraints, so it stays counted.
    const smallNodes = new Set((services[1] as SchedService).placements.map((p) => p.nodeId));
    const bigNode = nodeIds.find((id) => !smallNodes.has(id)) as string;
    expect((services[0] as SchedService).placements.some((p) => p.nodeId === bigNode)).toBe(true);
    const relabelled = nodes({ [bigNode]: { labels: { zone: 'b' } } });
    expect(planPlacements(services, relabelled, options(5, { settledUsage: memory }))).toEqual([]);
    expect(memory.recounted).toEqual([]);

    // A constrained service is judged again when a label of one of its nodes changes; the
    // other stays counted.
    services = services.map((s) => (s.name === 'big' ? svc('big', { replicas: 200, resources: { cpus: 0.1 }, constraints: ['node.labels.zone != c'] }, s.placements) : s));
    expect(planPlacements(services, relabelled, options(6, { settledUsage: memory }))).toEqual([]);
    expect(memory.recounted).toEqual(['big']);
    expect(planPlacements(services, nodes(), options(7, { settledUsage: memory }))).toEqual([]);
    expect(memory.recounted).toEqual(['big']);
    expect(planPlacements(services, nodes(), options(8, { settledUsage: memory }))).toEqual([]);
    expect(memory.recounted).toEqual([]);
  });

  it('keeps counting services on a node that is down but not lost, and judges them when it is lost', () => {
    const memory = new SettledUsage();
    let services = [
      svc('big', { replicas: 200, resources: { cpus: 0.01 } }),
      svc('quick', { replicas: 40, lostAfterMs: 5_000 }),
      svc('waiter', { replicas: 40, onNodeLost: 'wait' }),
    ];
    services = apply(services, planPlacements(services, nodes(), options(0, { settledUsage: memory })));
    expect(planPlacements(services, nodes(), options(1, { settledUsage: memory }))).toEqual([]);
    expect(memory.recounted).toHaveLength(3);

    // n07 away a little longer every pass, as the hub reports it: nothing to decide, nothing counted again.
    for (let t = 1; t <= 4; t++) {
      const down = nodes({ n07: { downForMs: t * 1_000 } });
      expect(planPlacements(services, down, options(1 + t, { settledUsage: memory }))).toEqual([]);
      expect(memory.recounted).toEqual([]);
    }
    // Past quick's own lostAfterMs: only quick is judged (its replicas there move).
    let down = nodes({ n07: { downForMs: 6_000 } });
    let changes = planPlacements(services, down, options(6, { settledUsage: memory }));
    expect(changes).toEqual(planPlacements(services, down, options(6)));
    expect(changes.map((c) => c.service)).toEqual(['quick']);
    expect(memory.recounted).toEqual([]);
    services = apply(services, changes);

    // Past the default: big moves too; the service that waits stays counted, pass after pass.
    for (const [pass, downForMs] of [[7, LOST_AFTER_MS], [8, LOST_AFTER_MS + 1_000], [9, LOST_AFTER_MS + 2_000]] as const) {
      down = nodes({ n07: { downForMs } });
      changes = planPlacements(services, down, options(pass, { settledUsage: memory }));
      expect(changes).toEqual(planPlacements(services, down, options(pass)));
      expect(memory.recounted).not.toContain('waiter');
      services = apply(services, changes);
    }
  });

  it('sees a node lost since the last pass although the service itself did not change', () => {
    const memory = new SettledUsage();
    let services = [svc('web', { replicas: 40 })];
    services = apply(services, planPlacements(services, nodes(), options(0, { settledUsage: memory })));
    expect(planPlacements(services, nodes(), options(1, { settledUsage: memory }))).toEqual([]);

    const lost = nodes({ n03: { downForMs: LOST_AFTER_MS } });
    const withMemory = planPlacements(services, lost, options(2, { settledUsage: memory }));
    expect(withMemory).toEqual(planPlacements(services, lost, options(2)));
    const moved = (withMemory[0] as ServicePlacementChange).placements.filter((p) => p.movedFrom === 'n03');
    expect(moved).toHaveLength(2);
  });

  it('counts a name found settled twice once, the later one (names are unique in the store; usage must stay right if not)', () => {
    const memory = new SettledUsage();
    const twoOnN01 = [0, 1].map((i) => ({ replicaId: `a${i}`, nodeId: 'n01', pendingReason: null }));
    const threeOnN01 = [0, 1, 2].map((i) => ({ replicaId: `b${i}`, nodeId: 'n01', pendingReason: null }));
    const first = svc('web', { replicas: 2, resources: { cpus: 1 } }, twoOnN01);
    const second = svc('web', { replicas: 3, resources: { cpus: 1 } }, threeOnN01);
    memory.begin([first, second], nodes(), LOST_AFTER_MS);
    memory.add(newPlan(first), new Map([['n01', 2]]));
    memory.add(newPlan(second), new Map([['n01', 3]]));
    memory.end();
    expect(memory.usageOf('n01')).toMatchObject({ placementCount: 3, usedCpuMillis: 3000 });
    expect(memory.has(second)).toBe(true);
    expect(memory.has(first)).toBe(false);

    // Gone from the store: nothing of either stays reserved.
    memory.begin([], nodes(), LOST_AFTER_MS);
    memory.end();
    expect(memory.usageOf('n01')).toBeUndefined();
  });

  for (const seed of Array.from({ length: 40 }, (_, i) => i + 1).concat([118])) {
    it(`answers as a pass without it over random changes (seed ${seed})`, () => {
      const rand = prng(seed);
      const pick = <T>(xs: readonly T[]): T => xs[Math.floor(rand() * xs.length)] as T;
      const memory = new SettledUsage();

      const nodeOpts = new Map<string, NodeOpts>();
      for (let i = 0; i < 12; i++) {
        nodeOpts.set(`n${i}`, { labels: { zone: pick(['a', 'b']) }, cpus: pick([1, 2, 4]), unknown: rand() < 0.1 });
      }
      let nextNode = 12;
      const keptNodes = new Map<string, { opts: NodeOpts; node: SchedNode }>();
      const randomSpec = (): Record<string, unknown> => {
        const input: Record<string, unknown> = { replicas: Math.floor(rand() * 12) };
        if (rand() < 0.5) input.resources = { cpus: pick([0.5, 1, 2]) };
        if (rand() < 0.3) input.constraints = [`node.labels.zone == ${pick(['a', 'b'])}`];
        if (rand() < 0.2) input.ports = [{ containerPort: 80, hostPort: 8080 }];
        if (rand() < 0.2) input.onNodeLost = 'wait';
        if (rand() < 0.2) input.lostAfterMs = pick([5_000, 30_000]);
        return input;
      };
      let services: SchedService[] = [];
      for (let i = 0; i < 5; i++) services.push(svc(`s${i}`, randomSpec()));
      services.push(svc('g', { mode: 'global', resources: { cpus: 1 } }));

      for (let pass = 0; pass < 60; pass++) {
        // A few random changes, or none (a steady pass).
        const count = Math.floor(rand() * 3);
        for (let c = 0; c < count; c++) {
          const what = rand();
          const id = pick([...nodeOpts.keys()]);
          const o = nodeOpts.get(id) as NodeOpts;
          if (what < 0.2) nodeOpts.set(id, { ...o, downForMs: pick([0, 1_000, LOST_AFTER_MS, 2 * LOST_AFTER_MS]) });
          else if (what < 0.35) nodeOpts.set(id, { ...o, downForMs: null });
          else if (what < 0.45) nodeOpts.set(id, { ...o, labels: { zone: pick(['a', 'b']) } });
          else if (what < 0.5) nodeOpts.delete(id);
          else if (what < 0.55) nodeOpts.set(`n${nextNode++}`, { labels: { zone: pick(['a', 'b']) }, cpus: pick([2, 4]) });
          else if (what < 0.75) {
            const i = Math.floor(rand() * 5);
            services = services.map((s) => (s.name === `s${i}` ? svc(s.name, randomSpec(), s.placements) : s));
          } else if (what < 0.85) {
            // The same placements in a new array (a commit that rewrote the record).
            const i = Math.floor(rand() * services.length);
            services = services.map((s, j) => (j === i ? { ...s, placements: [...s.placements] } : s));
          } else if (what < 0.9 && services.length > 1) {
            services = services.filter((_, j) => j !== Math.floor(rand() * services.length));
          } else {
            // Names are unique in the store, as in the hub.
            services = [...services, svc(`t${pass}-${c}`, randomSpec())];
          }
        }
        // A node that is down stays down a little longer every pass, as the hub reports it,
        // crossing services' lostAfterMs one after another.
        for (const [id, o] of nodeOpts) {
          if (o.downForMs !== null && o.downForMs !== undefined) nodeOpts.set(id, { ...o, downForMs: o.downForMs + pick([0, 1_000, 4_000, 10_000]) });
        }
        // As the hub gives them (Nodes.forPlacement): a usable node unchanged since the last pass
        // is the same object, others are made fresh.
        const nodeList = [...nodeOpts].map(([id, o]) => {
          const kept = keptNodes.get(id);
          if (kept && kept.opts === o) return kept.node;
          const made = node(id, o);
          if (o.downForMs === null || o.downForMs === undefined) keptNodes.set(id, { opts: o, node: made });
          else keptNodes.delete(id);
          return made;
        });
        const running = (replicaId: string): boolean => replicaId.length % 2 === 0;
        const incremental = planPlacements(services, nodeList, options(pass, { settledUsage: memory, isRunning: running }));
        const scratch = planPlacements(services, nodeList, options(pass, { isRunning: running }));
        expect(incremental, `seed ${seed}, pass ${pass}`).toEqual(scratch);
        // What a pass remembers of each new list (counted while planning) is what the list says.
        for (const change of incremental) expect(summaryOf(change.placements), `seed ${seed}, pass ${pass}, ${change.service}`).toEqual(summarize(change.placements));
        services = apply(services, incremental);
      }
    });
  }
});
