/**
 * Placement strategies and spreadBy: where new replicas of a replicated service go. `binpack`
 * fills the node with least room left first; `spreadBy` spreads over a label's values first,
 * then by the strategy within a value.
 */
import { describe, expect, it } from 'vitest';
import { planPlacements, type PlacementOptions } from '../../hub/scheduler/placement.js';
import type { Placement, SchedNode, SchedService } from '../../hub/scheduler/types.js';
import { apply, svc } from '../helpers/placement-fixtures.js';
import { prng } from '../helpers/prng.js';

const MB = 1024 * 1024;
const GB = 1024 * MB;

interface NodeOpts {
  labels?: Record<string, string>;
  cpus?: number;
  memoryBytes?: number;
  schedulable?: boolean;
  downForMs?: number;
}

function node(id: string, o: NodeOpts = {}): SchedNode {
  return {
    id,
    name: id,
    labels: o.labels ?? {},
    facts: { hostname: id, arch: 'amd64', os: 'linux', cpus: o.cpus ?? 4, memoryBytes: o.memoryBytes ?? 8 * GB },
    schedulable: o.downForMs === undefined ? (o.schedulable ?? true) : false,
    downForMs: o.downForMs ?? null,
  };
}

const zoned = (id: string, zone: string | null, o: NodeOpts = {}): SchedNode =>
  node(id, { ...o, labels: zone === null ? {} : { zone } });

const on = (replicaId: string, nodeId: string): Placement => ({ replicaId, nodeId, pendingReason: null });

function ids(): PlacementOptions {
  let n = 0;
  return { newReplicaId: (service) => `${service}-${++n}`, defaultLostAfterMs: 60_000 };
}

/** One pass, applied; a second pass must change nothing. */
function step(services: readonly SchedService[], nodes: readonly SchedNode[], opts: PlacementOptions = ids()) {
  const after = apply(services, planPlacements(services, nodes, opts));
  expect(planPlacements(after, nodes, opts)).toEqual([]);
  const byName = new Map(after.map((s) => [s.name, s]));
  return { after, of: (name: string) => (byName.get(name) as SchedService).placements };
}

const placed = (placements: readonly Placement[]) => placements.filter((p) => p.nodeId !== null && p.pendingReason === null && !p.replacedBy);

function perNode(placements: readonly Placement[]): Record<string, number> {
  const counts: Record<string, number> = {};
  for (const p of placed(placements)) counts[p.nodeId as string] = (counts[p.nodeId as string] ?? 0) + 1;
  return counts;
}

/** Replicas per label value; nodes without the label count under "(none)". */
function perValue(placements: readonly Placement[], nodes: readonly SchedNode[], key = 'zone'): Record<string, number> {
  const labelOf = new Map(nodes.map((n) => [n.id, n.labels[key] ?? '(none)']));
  const counts: Record<string, number> = {};
  for (const p of placed(placements)) {
    const value = labelOf.get(p.nodeId as string) as string;
    counts[value] = (counts[value] ?? 0) + 1;
  }
  return counts;
}

// ---------------------------------------------------------------------------------------------

describe('strategy binpack', () => {
  const table: Array<{ name: string; nodes: SchedNode[]; others?: SchedService[]; input: Record<string, unknown>; expected: Record<string, number> }> = [
    {
      name: 'fills one node before the next, by cpus',
      nodes: [node('n1'), node('n2'), node('n3')],
      input: { replicas: 6, resources: { cpus: 1 } },
      expected: { n1: 4, n2: 2 },
    },
    {
      name: 'takes the node with least room left that still fits, skipping a fuller one that does not',
      nodes: [node('n1'), node('n2'), node('n3')],
      // n1 has 0.5 cpu free (too little for one), n2 has 2.25 (room for two), n3 all 4.
      others: [svc('base', { replicas: 3, resources: { cpus: 1.75 } }, [on('b1', 'n1'), on('b2', 'n1'), on('b3', 'n2')])],
      input: { replicas: 3, resources: { cpus: 1 } },
      expected: { n2: 2, n3: 1 },
    },
    {
      name: 'by memory: the smaller node first',
      nodes: [node('n1', { memoryBytes: 8 * GB }), node('n2', { memoryBytes: 2 * GB })],
      input: { replicas: 3, resources: { memoryMB: 1024 } },
      expected: { n1: 1, n2: 2 },
    },
    {
      name: 'with cpus and memory, the one that binds counts: fewest more replicas fit first',
      // n1: room for 8 by cpu but 4 by memory; n2: room for 2 by cpu, 32 by memory.
      nodes: [node('n1', { cpus: 4, memoryBytes: 1 * GB }), node('n2', { cpus: 1, memoryBytes: 8 * GB })],
      input: { replicas: 3, resources: { cpus: 0.5, memoryMB: 256 } },
      expected: { n1: 1, n2: 2 },
    },
    {
      name: 'without resources: the node with most replicas of all services first',
      nodes: [node('n1'), node('n2'), node('n3')],
      others: [svc('base', { replicas: 3 }, [on('b1', 'n1'), on('b2', 'n2'), on('b3', 'n2')])],
      input: { replicas: 5 },
      expected: { n2: 5 },
    },
    {
      name: 'without resources, a host port still takes one node each, busiest first',
      nodes: [node('n1'), node('n2'), node('n3')],
      others: [svc('base', { replicas: 3 }, [on('b1', 'n1'), on('b2', 'n2'), on('b3', 'n2')])],
      input: { replicas: 2, ports: [{ containerPort: 80, hostPort: 8080 }] },
      expected: { n2: 1, n1: 1 },
    },
    {
      name: 'ties go to the lowest node id',
      nodes: [node('n3'), node('n2'), node('n1')],
      input: { replicas: 4, resources: { cpus: 2 } },
      expected: { n1: 2, n2: 2 },
    },
  ];
  for (const t of table) {
    it(t.name, () => {
      const { of } = step([...(t.others ?? []), svc('web', { ...t.input, strategy: 'binpack' })], t.nodes);
      expect(perNode(of('web'))).toEqual(t.expected);
    });
  }

  it('spread, the default, spreads the same service evenly', () => {
    const nodes = [node('n1'), node('n2'), node('n3')];
    for (const strategy of [undefined, 'spread']) {
      const { of } = step([svc('web', { replicas: 6, resources: { cpus: 1 }, ...(strategy ? { strategy } : {}) })], nodes);
      expect(perNode(of('web'))).toEqual({ n1: 2, n2: 2, n3: 2 });
    }
  });

  it('scale-up keeps packing onto the node already in use', () => {
    const nodes = [node('n1'), node('n2'), node('n3')];
    const opts = ids();
    const first = step([svc('web', { replicas: 2, strategy: 'binpack', resources: { cpus: 1 } })], nodes, opts);
    expect(perNode(first.of('web'))).toEqual({ n1: 2 });
    const scaled = first.after.map((s) => ({ ...s, spec: { ...s.spec, replicas: 5 } }));
    const second = step(scaled, nodes, opts);
    expect(perNode(second.of('web'))).toEqual({ n1: 4, n2: 1 });
  });

  it('moves the replicas of a lost node to the fullest node that fits', () => {
    const nodes = [node('n1', { downForMs: 120_000 }), node('n2'), node('n3')];
    const services = [
      svc('base', { replicas: 1, resources: { cpus: 2 } }, [on('b1', 'n3')]),
      svc('web', { replicas: 2, strategy: 'binpack', resources: { cpus: 1 } }, [on('w1', 'n1'), on('w2', 'n1')]),
    ];
    const { of } = step(services, nodes);
    expect(perNode(of('web'))).toEqual({ n3: 2 });
  });
});

// ---------------------------------------------------------------------------------------------

describe('spreadBy', () => {
  const table: Array<{ name: string; nodes: SchedNode[]; input: Record<string, unknown>; perValue: Record<string, number>; perNode?: Record<string, number> }> = [
    {
      name: 'even over the values, whatever the number of nodes per value',
      nodes: [zoned('a1', 'a'), zoned('b1', 'b'), zoned('b2', 'b'), zoned('c1', 'c'), zoned('c2', 'c'), zoned('c3', 'c')],
      input: { replicas: 6 },
      perValue: { a: 2, b: 2, c: 2 },
      perNode: { a1: 2, b1: 1, b2: 1, c1: 1, c2: 1 },
    },
    {
      name: 'nodes without the label are one group of their own',
      nodes: [zoned('n1', 'a'), zoned('n2', 'b'), zoned('n3', null), zoned('n4', null)],
      input: { replicas: 6 },
      perValue: { a: 2, b: 2, '(none)': 2 },
      perNode: { n1: 2, n2: 2, n3: 1, n4: 1 },
    },
    {
      name: 'an extra replica goes to the first value in name order',
      nodes: [zoned('z1', 'c'), zoned('z2', 'b'), zoned('z3', 'a')],
      input: { replicas: 4 },
      perValue: { a: 2, b: 1, c: 1 },
    },
    {
      name: 'a value whose nodes are full takes what fits, the others share the rest evenly',
      nodes: [zoned('a1', 'a', { cpus: 1 }), zoned('b1', 'b'), zoned('c1', 'c')],
      input: { replicas: 7, resources: { cpus: 1 } },
      perValue: { a: 1, b: 3, c: 3 },
    },
    {
      name: 'only nodes that match the constraints count as values',
      nodes: [zoned('a1', 'a'), zoned('b1', 'b'), zoned('c1', 'c'), zoned('d1', 'd')],
      input: { replicas: 4, constraints: ['node.labels.zone in (a, c, d)'] },
      perValue: { a: 2, c: 1, d: 1 },
    },
    {
      name: 'binpack within a value',
      nodes: [zoned('a1', 'a'), zoned('a2', 'a'), zoned('b1', 'b'), zoned('b2', 'b')],
      input: { replicas: 4, strategy: 'binpack', resources: { cpus: 1 } },
      perValue: { a: 2, b: 2 },
      perNode: { a1: 2, b1: 2 },
    },
    {
      name: 'spreads over another label than zone',
      nodes: [node('n1', { labels: { rack: 'r1', zone: 'a' } }), node('n2', { labels: { rack: 'r1', zone: 'a' } }), node('n3', { labels: { rack: 'r2', zone: 'a' } })],
      input: { replicas: 4, spreadBy: 'node.labels.rack' },
      perValue: { a: 4 },
      perNode: { n1: 1, n2: 1, n3: 2 },
    },
  ];
  for (const t of table) {
    it(t.name, () => {
      const { of } = step([svc('web', { spreadBy: 'node.labels.zone', ...t.input })], t.nodes);
      expect(perValue(of('web'), t.nodes)).toEqual(t.perValue);
      if (t.perNode) expect(perNode(of('web'))).toEqual(t.perNode);
    });
  }

  it('scale-up fills the values with fewest replicas first', () => {
    const nodes = [zoned('a1', 'a'), zoned('a2', 'a'), zoned('a3', 'a'), zoned('b1', 'b')];
    // Placed before spreadBy was set: three in a, none in b.
    const services = [svc('web', { replicas: 5, spreadBy: 'node.labels.zone' }, [on('w1', 'a1'), on('w2', 'a2'), on('w3', 'a3')])];
    const { of } = step(services, nodes);
    expect(perValue(of('web'), nodes)).toEqual({ a: 3, b: 2 });
  });

  it('failover keeps the values even where plain spread would not', () => {
    const nodes = [zoned('a1', 'a'), zoned('a2', 'a'), zoned('b1', 'b'), zoned('b2', 'b'), zoned('b3', 'b'), zoned('b4', 'b')];
    const opts = ids();
    const first = step([svc('web', { replicas: 4, spreadBy: 'node.labels.zone' })], nodes, opts);
    expect(perNode(first.of('web'))).toEqual({ a1: 1, a2: 1, b1: 1, b2: 1 });

    const a1Lost = nodes.map((n) => (n.id === 'a1' ? zoned('a1', 'a', { downForMs: 120_000 }) : n));
    const spreadBy = step(first.after, a1Lost, opts);
    expect(perNode(spreadBy.of('web'))).toEqual({ a2: 2, b1: 1, b2: 1 });
    // Without spreadBy the replacement takes an empty node, in b.
    const plain = first.after.map((s) => {
      const spec = { ...s.spec };
      delete spec.spreadBy;
      return { ...s, spec };
    });
    expect(perNode(step(plain, a1Lost, opts).of('web'))).toEqual({ a2: 1, b1: 1, b2: 1, b3: 1 });
  });

  it('a global service places one replica on every matching node, spreadBy or not', () => {
    const nodes = [zoned('a1', 'a'), zoned('a2', 'a'), zoned('b1', 'b')];
    const { of } = step([svc('agent', { mode: 'global', spreadBy: 'node.labels.zone', strategy: 'binpack' })], nodes);
    expect(perNode(of('agent'))).toEqual({ a1: 1, a2: 1, b1: 1 });
  });
});

// ---------------------------------------------------------------------------------------------

/**
 * Whether one more replica of `cpus` fits on the node, given every replica placed on it. The test
 * computes this itself rather than asking the scheduler.
 */
function hasRoom(n: SchedNode, services: readonly SchedService[], cpus: number): boolean {
  if (!n.schedulable || !n.facts) return false;
  let used = 0;
  for (const s of services) for (const p of s.placements) if (p.nodeId === n.id && !p.pendingReason) used += s.spec.resources.cpus ?? 0;
  return used + cpus <= n.facts.cpus + 1e-9;
}

describe('spreadBy: random fleets (property-style)', () => {
  /**
   * After every pass: a value with room (a schedulable node that fits one more replica) is never
   * two or more replicas behind any other value; so when every value has room, no two values
   * differ by more than one. Passes: the first placement, scale-ups, nodes lost and coming back.
   */
  it('never leaves a value with room two replicas behind another', () => {
    for (let seed = 1; seed <= 300; seed++) {
      const rand = prng(seed);
      const int = (lo: number, hi: number) => lo + Math.floor(rand() * (hi - lo + 1));
      const zones = ['a', 'b', 'c', 'd', null].slice(0, int(2, 5));
      const cpus = [0.5, 1, 1.5][int(0, 2)] as number;
      let nodes = Array.from({ length: int(2, 12) }, (_, i) =>
        zoned(`n${String(i).padStart(2, '0')}`, zones[int(0, zones.length - 1)] as string | null, { cpus: int(1, 4) }),
      );
      const strategy = rand() < 0.5 ? 'binpack' : 'spread';
      // Another service takes some room first, unevenly.
      const others = svc('aaa', { replicas: int(0, 6), resources: { cpus: 1 } });
      let services = [others, svc('web', { replicas: int(1, 10), spreadBy: 'node.labels.zone', strategy, resources: { cpus } })];
      const opts = ids();
      for (let round = 0; round < 6; round++) {
        // Judging every service in full gives the same answer as skipping settled ones.
        let n = 0;
        const sameIds = (): PlacementOptions => ({ newReplicaId: (name) => `${name}-r${round}-${++n}`, defaultLostAfterMs: 60_000 });
        const shortcut = planPlacements(services, nodes, sameIds());
        n = 0;
        expect(shortcut, `seed ${seed} round ${round}`).toEqual(planPlacements(services, nodes, { ...sameIds(), skipSettled: false }));
        services = apply(services, planPlacements(services, nodes, opts));
        const web = services[1] as SchedService;
        const counts = perValue(web.placements, nodes);
        const values = [...new Set(nodes.map((n) => n.labels.zone ?? '(none)'))];
        const max = Math.max(...values.map((v) => counts[v] ?? 0));
        for (const v of values) {
          const roomy = nodes.some((n) => (n.labels.zone ?? '(none)') === v && hasRoom(n, services, cpus));
          if (roomy) expect(counts[v] ?? 0, `seed ${seed} round ${round}: value ${v} of ${JSON.stringify(counts)}`).toBeGreaterThanOrEqual(max - 1);
        }
        // Change the world: scale up, or lose a node for good. (Room that comes back, a node
        // returning or joining, is not a pass's to fill: placed replicas do not move to it.)
        if (rand() < 0.5) services = services.map((s) => (s.name === 'web' ? { ...s, spec: { ...s.spec, replicas: s.spec.replicas + int(1, 5) } } : s));
        else {
          const victim = nodes[int(0, nodes.length - 1)] as SchedNode;
          nodes = nodes.map((n) => (n === victim ? zoned(n.id, n.labels.zone ?? null, { cpus: n.facts?.cpus ?? 1, downForMs: 120_000 }) : n));
        }
      }
    }
  });
});

describe('strategies at scale', () => {
  const nodes = Array.from({ length: 10_000 }, (_, i) =>
    node(`n${String(i).padStart(5, '0')}`, { cpus: 64, memoryBytes: 256 * GB, labels: { zone: `z${i % 7}` } }),
  );
  const placeAll = (input: Record<string, unknown>): Placement[] => {
    let n = 0;
    const [change] = planPlacements([svc('big', { replicas: 100_000, resources: { cpus: 0.1, memoryMB: 64 }, ...input })], nodes, {
      newReplicaId: () => `r${++n}`,
    });
    return change?.placements ?? [];
  };

  it('spreadBy places 100,000 replicas over 10,000 nodes evenly per value, and per node within a value', () => {
    const placements = placeAll({ spreadBy: 'node.labels.zone' });
    expect(placed(placements)).toHaveLength(100_000);
    const values = Object.values(perValue(placements, nodes));
    expect(values).toHaveLength(7);
    expect(Math.max(...values) - Math.min(...values)).toBeLessThanOrEqual(1);
    const counts = perNode(placements);
    expect(Object.keys(counts)).toHaveLength(10_000);
    // Values come first: a value of fewer nodes has more replicas per node.
    for (let zone = 0; zone < 7; zone++) {
      const ofZone = nodes.filter((n) => n.labels.zone === `z${zone}`).map((n) => counts[n.id] as number);
      expect(Math.max(...ofZone) - Math.min(...ofZone)).toBeLessThanOrEqual(1);
    }
  });

  it('binpack fills nodes one by one: 100,000 replicas of 0.1 cpu take 157 nodes of 64 cpus', () => {
    const counts = Object.values(perNode(placeAll({ strategy: 'binpack' })));
    expect(counts).toHaveLength(Math.ceil(100_000 / 640));
    expect(counts.filter((c) => c === 640)).toHaveLength(156);
  });
});
