import { describe, it, expect } from 'vitest';
import { planPlacements, type PlacementOptions } from '../../hub/scheduler/placement.js';
import { MinHeap } from '../../hub/scheduler/min-heap.js';
import type { Placement, SchedNode, SchedService, ServicePlacementChange } from '../../hub/scheduler/types.js';
import { matchesAll } from '../../hub/spec/constraints.js';
import { parsedConstraints, validateServiceSpec, type NormalizedSpec } from '../../hub/spec/service-spec.js';
import { prng } from '../helpers/prng.js';

const MB = 1024 * 1024;
const GB = 1024 * MB;

// ---------------------------------------------------------------------------------------------
// Builders

interface NodeOpts {
  labels?: Record<string, string>;
  arch?: string;
  cpus?: number;
  memoryBytes?: number;
  /** No facts reported yet. */
  unknown?: boolean;
  schedulable?: boolean;
  /** Unreachable for this long (not schedulable then). */
  downForMs?: number;
}

function node(id: string, o: NodeOpts = {}): SchedNode {
  return {
    id,
    name: `name-${id}`,
    labels: o.labels ?? {},
    facts: o.unknown
      ? null
      : { hostname: `host-${id}`, arch: o.arch ?? 'amd64', os: 'linux', cpus: o.cpus ?? 4, memoryBytes: o.memoryBytes ?? 8 * GB },
    schedulable: o.downForMs === undefined ? (o.schedulable ?? true) : false,
    downForMs: o.downForMs ?? null,
  };
}

/** A spec the way the hub stores it: through the real validator, so defaults are the real ones. */
function spec(input: Record<string, unknown>): NormalizedSpec {
  const v = validateServiceSpec({ image: 'nginx:1', ...input });
  if (!v.ok) throw new Error(JSON.stringify(v.errors));
  return v.value;
}

function svc(name: string, input: Record<string, unknown>, placements: Placement[] = []): SchedService {
  return { name, spec: spec(input), placements };
}

const on = (replicaId: string, nodeId: string): Placement => ({ replicaId, nodeId, pendingReason: null });
const pend = (replicaId: string, pendingReason: string, nodeId: string | null = null): Placement => ({
  replicaId,
  nodeId,
  pendingReason,
});

/** Ids `<service>-1`, `<service>-2`, ... from one counter, so every id of a test is unique. */
function ids(): PlacementOptions {
  let n = 0;
  return { newReplicaId: (service) => `${service}-${++n}` };
}

function apply(services: readonly SchedService[], changes: readonly ServicePlacementChange[]): SchedService[] {
  const byName = new Map(changes.map((c) => [c.service, c.placements]));
  return services.map((s) => ({ ...s, placements: byName.get(s.name) ?? s.placements }));
}

/** One scheduling pass, applied. Also checks the pass is a fixed point: a second one changes nothing. */
function step(services: readonly SchedService[], nodes: readonly SchedNode[], opts: PlacementOptions = ids()) {
  const changes = planPlacements(services, nodes, opts);
  const after = apply(services, changes);
  expect(planPlacements(after, nodes, opts)).toEqual([]);
  const byName = new Map(after.map((s) => [s.name, s]));
  return { changes, after, of: (name: string) => (byName.get(name) as SchedService).placements };
}

function perNode(placements: readonly Placement[]): Record<string, number> {
  const counts: Record<string, number> = {};
  for (const p of placements) if (p.nodeId !== null && p.pendingReason === null) counts[p.nodeId] = (counts[p.nodeId] ?? 0) + 1;
  return counts;
}

const running = (placements: readonly Placement[]) => placements.filter((p) => p.nodeId !== null && p.pendingReason === null);
const pendingOf = (placements: readonly Placement[]) => placements.filter((p) => p.pendingReason !== null);

// ---------------------------------------------------------------------------------------------

describe('MinHeap', () => {
  it('pops in order, with items given up front and pushed later', () => {
    const heap = new MinHeap<number>((a, b) => a - b, [5, 3, 9, 1, 7]);
    heap.push(4);
    heap.push(0);
    const out: number[] = [];
    for (let x = heap.pop(); x !== undefined; x = heap.pop()) out.push(x);
    expect(out).toEqual([0, 1, 3, 4, 5, 7, 9]);
    expect(heap.size).toBe(0);
    expect(heap.peek()).toBeUndefined();
  });
});

describe('planPlacements: constraints', () => {
  const nodes = [
    node('n1', { labels: { zone: 'eu-1' } }),
    node('n2', { labels: { zone: 'eu-1' }, arch: 'arm64' }),
    node('n3', { labels: { zone: 'us-1' } }),
    node('n4', { arch: 'arm64' }), // no zone label at all
  ];
  const table: Array<{ constraints: string[]; allowed: string[] }> = [
    { constraints: ['node.labels.zone == eu-1'], allowed: ['n1', 'n2'] },
    { constraints: ['node.labels.zone != eu-1'], allowed: ['n3', 'n4'] }, // a missing label is "not equal"
    { constraints: ['node.arch == arm64'], allowed: ['n2', 'n4'] },
    { constraints: ['node.arch != arm64', 'node.labels.zone == eu-1'], allowed: ['n1'] },
    { constraints: ['node.id == n3'], allowed: ['n3'] },
    { constraints: [], allowed: ['n1', 'n2', 'n3', 'n4'] },
  ];
  for (const { constraints, allowed } of table) {
    it(`[${constraints.join(', ')}] places only on ${allowed.join(', ')}`, () => {
      const { of } = step([svc('web', { replicas: 8, constraints })], nodes);
      const placements = of('web');
      expect(placements).toHaveLength(8);
      expect(pendingOf(placements)).toEqual([]);
      expect(Object.keys(perNode(placements)).sort()).toEqual(allowed);
    });
  }

  it('a constraint no node matches leaves replicas pending with the constraint in the reason', () => {
    const { of } = step([svc('web', { replicas: 2, constraints: ['node.labels.gpu == yes'] })], nodes);
    expect(of('web')).toEqual([
      pend('web-1', 'no node matches constraints [node.labels.gpu == yes]'),
      pend('web-2', 'no node matches constraints [node.labels.gpu == yes]'),
    ]);
  });

  it('replaces placements on nodes that no longer match, each kept until its replacement serves', () => {
    const relabelled = nodes.map((n) => (n.id === 'n1' ? { ...n, labels: { zone: 'us-1' } } : n));
    const services = [svc('web', { replicas: 2, constraints: ['node.labels.zone == eu-1'] }, [on('a', 'n1'), on('b', 'n2')])];
    const { of } = step(services, relabelled);
    expect(of('web')).toEqual([on('b', 'n2'), { ...on('web-1', 'n2'), movedFrom: 'n1' }, { ...on('a', 'n1'), replacedBy: 'web-1' }]);
    const served = planPlacements([svc('web', { replicas: 2, constraints: ['node.labels.zone == eu-1'] }, [...of('web')])], relabelled, { ...ids(), isRunning: (id) => id === 'web-1' });
    expect(served[0]?.placements).toEqual([on('b', 'n2'), { ...on('web-1', 'n2'), movedFrom: 'n1' }]);
  });
});

describe('planPlacements: resources', () => {
  const table: Array<{
    name: string;
    nodes: SchedNode[];
    resources: Record<string, number>;
    replicas: number;
    placed: number;
    reason?: string;
  }> = [
    {
      name: 'cpus',
      nodes: [node('n1', { cpus: 2 })],
      resources: { cpus: 0.5 },
      replicas: 5,
      placed: 4,
      reason: '0 of 1 matching node fits: 1 lacks cpu (need 0.5 cpus)',
    },
    {
      name: 'fractional cpus add up exactly',
      nodes: [node('n1', { cpus: 1 })],
      resources: { cpus: 0.1 },
      replicas: 10,
      placed: 10,
    },
    {
      name: 'memory',
      nodes: [node('n1', { memoryBytes: 256 * MB }), node('n2', { memoryBytes: 100 * MB })],
      resources: { memoryMB: 64 },
      replicas: 7,
      placed: 5,
      reason: '0 of 2 matching nodes fit: 2 lack memory (need 64 MB)',
    },
    {
      name: 'null facts: unknown capacity takes no resource-hungry replica',
      nodes: [node('n1', { unknown: true })],
      resources: { memoryMB: 64 },
      replicas: 1,
      placed: 0,
      reason: '0 of 1 matching node fits: 1 has not reported capacity yet',
    },
    {
      name: 'null facts: resource-free replicas fit',
      nodes: [node('n1', { unknown: true })],
      resources: {},
      replicas: 3,
      placed: 3,
    },
  ];
  for (const t of table) {
    it(t.name, () => {
      const { of } = step([svc('web', { replicas: t.replicas, resources: t.resources })], t.nodes);
      expect(running(of('web'))).toHaveLength(t.placed);
      const pending = pendingOf(of('web'));
      expect(pending).toHaveLength(t.replicas - t.placed);
      for (const p of pending) expect(p).toMatchObject({ nodeId: null, pendingReason: t.reason });
    });
  }

  it("counts every service's placements, pending-with-node included, and places in name order", () => {
    const nodes = [node('n1', { memoryBytes: 1 * GB }), node('n2', { memoryBytes: 1 * GB })];
    const services = [
      // The pending global replica on n1 holds its 512 MB; only the new replicas compete.
      svc('agent', { mode: 'global', resources: { memoryMB: 512 } }, [on('g1', 'n1'), on('g2', 'n2')]),
      svc('b', { replicas: 1, resources: { memoryMB: 512 } }),
      svc('a', { replicas: 1, resources: { memoryMB: 512 } }),
    ];
    const { of } = step(services, nodes);
    expect(of('a')).toEqual([on('a-1', 'n1')]);
    expect(of('b')).toEqual([on('b-2', 'n2')]);
  });

  it('keeps existing placements on an over-committed node, but places nothing more there', () => {
    const nodes = [node('n1', { memoryBytes: 100 * MB }), node('n2', { memoryBytes: 1 * GB })];
    const services = [svc('web', { replicas: 4, resources: { memoryMB: 64 } }, [on('a', 'n1'), on('b', 'n1')])];
    const { of } = step(services, nodes);
    expect(of('web')).toEqual([on('a', 'n1'), on('b', 'n1'), on('web-1', 'n2'), on('web-2', 'n2')]);
  });
});

describe('planPlacements: host ports', () => {
  it('two replicas needing the same host port never share a node', () => {
    const nodes = [node('n1'), node('n2')];
    const { of } = step([svc('web', { replicas: 3, ports: [{ containerPort: 80, hostPort: 8080 }] })], nodes);
    expect(perNode(of('web'))).toEqual({ n1: 1, n2: 1 });
    expect(pendingOf(of('web'))).toEqual([pend('web-3', '0 of 2 matching nodes fit: 2 have host port tcp/8080 taken')]);
  });

  it('a host port taken by another service rules the node out', () => {
    const nodes = [node('n1'), node('n2')];
    const services = [
      svc('a', { replicas: 1, ports: [{ containerPort: 80, hostPort: 80 }] }, [on('a1', 'n1')]),
      svc('b', { replicas: 1, ports: [{ containerPort: 8080, hostPort: 80 }] }),
    ];
    // n1 would win the tie on node id; the port sends b to n2.
    const { of } = step(services, nodes);
    expect(of('b')).toEqual([on('b-1', 'n2')]);
  });

  it('across services placed in the same pass', () => {
    const nodes = [node('n1'), node('n2'), node('n3')];
    const port = [{ containerPort: 53, hostPort: 53, protocol: 'udp' }];
    const services = [svc('b', { replicas: 2, ports: port }), svc('a', { replicas: 2, ports: port })];
    const { of } = step(services, nodes);
    expect(of('a')).toEqual([on('a-1', 'n1'), on('a-2', 'n2')]);
    expect(of('b')).toEqual([on('b-3', 'n3'), pend('b-4', '0 of 3 matching nodes fit: 3 have host port udp/53 taken')]);
  });

  it('the same number on another protocol, or no host port at all, does not conflict', () => {
    const nodes = [node('n1')];
    const services = [
      svc('a', { replicas: 1, ports: [{ containerPort: 53, hostPort: 53, protocol: 'tcp' }] }),
      svc('b', { replicas: 1, ports: [{ containerPort: 53, hostPort: 53, protocol: 'udp' }] }),
      svc('c', { replicas: 3, ports: [{ containerPort: 53 }] }),
    ];
    const { of } = step(services, nodes);
    for (const name of ['a', 'b', 'c']) expect(pendingOf(of(name))).toEqual([]);
  });
});

describe('planPlacements: spread', () => {
  it('6 replicas on 3 nodes are 2/2/2; a node added later moves nothing', () => {
    const nodes = [node('n1'), node('n2'), node('n3')];
    const opts = ids();
    const first = step([svc('web', { replicas: 6 })], nodes, opts);
    expect(perNode(first.of('web'))).toEqual({ n1: 2, n2: 2, n3: 2 });

    const withN4 = [...nodes, node('n4')];
    expect(planPlacements(first.after, withN4, opts)).toEqual([]);

    // Scaling up then fills the new node first.
    const scaled = first.after.map((s) => ({ ...s, spec: { ...s.spec, replicas: 8 } }));
    const second = step(scaled, withN4, opts);
    expect(perNode(second.of('web'))).toEqual({ n1: 2, n2: 2, n3: 2, n4: 2 });
    expect(second.of('web').slice(0, 6)).toEqual(first.of('web'));
  });

  it('ties go to the node with fewest placements overall, then to the lowest node id', () => {
    const nodes = [node('n1'), node('n2'), node('n3')];
    const services = [svc('a', { replicas: 1 }, [on('a1', 'n1')]), svc('b', { replicas: 2 })];
    const { of } = step(services, nodes);
    expect(of('b')).toEqual([on('b-1', 'n2'), on('b-2', 'n3')]);
  });

  it('does not place on nodes that are not schedulable', () => {
    const nodes = [node('n1', { schedulable: false }), node('n2')];
    const { of } = step([svc('web', { replicas: 2 })], nodes);
    expect(perNode(of('web'))).toEqual({ n2: 2 });
  });
});

describe('planPlacements: scale up and down', () => {
  const nodes = [node('n1'), node('n2'), node('n3', { schedulable: false })];
  const existing = [
    on('r1', 'n1'),
    on('r2', 'n1'),
    on('r3', 'n1'),
    on('r4', 'n2'),
    pend('p1', 'no ready node'),
    on('r5', 'n2'),
    on('r6', 'n3'),
  ];

  it('removes pending first, then replicas on unschedulable nodes, then from the most crowded node (ties: the newest)', () => {
    const table: Array<{ replicas: number; kept: string[] }> = [
      { replicas: 7, kept: ['r1', 'r2', 'r3', 'r4', 'p1', 'r5', 'r6'] },
      { replicas: 6, kept: ['r1', 'r2', 'r3', 'r4', 'r5', 'r6'] },
      { replicas: 5, kept: ['r1', 'r2', 'r3', 'r4', 'r5'] },
      { replicas: 4, kept: ['r1', 'r2', 'r4', 'r5'] },
      { replicas: 3, kept: ['r1', 'r2', 'r4'] },
      { replicas: 2, kept: ['r1', 'r4'] },
      { replicas: 0, kept: [] },
    ];
    for (const { replicas, kept } of table) {
      const { of } = step([svc('web', { replicas }, existing)], nodes);
      const placements = of('web');
      if (replicas === 7) {
        // Nothing removed; the pending one is placed on the emptier node.
        expect(placements.map((p) => p.replicaId)).toEqual(kept);
        expect(placements[4]).toEqual(on('p1', 'n2'));
      } else {
        expect(placements).toEqual(existing.filter((p) => kept.includes(p.replicaId)));
      }
    }
  });

  it('keeps replicas on an unschedulable node and replaces those on removed nodes', () => {
    const services = [svc('web', { replicas: 3 }, [on('a', 'n1'), on('b', 'gone'), on('c', 'n3')])];
    const { of } = step(services, nodes);
    expect(of('web')).toEqual([on('a', 'n1'), on('c', 'n3'), on('web-1', 'n2')]);
  });

  it('a pending replica keeps its id; its reason changes only when the text does', () => {
    const services = [svc('web', { replicas: 1 }, [pend('p', 'no ready node')])];
    expect(planPlacements(services, [], ids())).toEqual([]);
    const downNodes = [node('n1', { schedulable: false })];
    expect(planPlacements(services, downNodes, ids())).toEqual([
      { service: 'web', placements: [pend('p', 'no ready node (1 node is not ready)')] },
    ]);
    expect(planPlacements(services, [node('n1')], ids())).toEqual([{ service: 'web', placements: [on('p', 'n1')] }]);
  });
});

describe('planPlacements: global mode', () => {
  const g = (placements: Placement[] = [], extra: Record<string, unknown> = {}) =>
    svc('agent', { mode: 'global', constraints: ['node.labels.edge == yes'], ...extra }, placements);
  const edge = { edge: 'yes' };

  it('one replica per matching node; new ones only on schedulable nodes', () => {
    const nodes = [node('n1', { labels: edge }), node('n2'), node('n3', { labels: edge }), node('n4', { labels: edge, schedulable: false })];
    const { of } = step([g()], nodes);
    expect(of('agent')).toEqual([on('agent-1', 'n1'), on('agent-2', 'n3')]);
  });

  it('follows nodes joining, leaving, changing labels; an unschedulable node keeps its replica', () => {
    const before = [on('a1', 'n1'), on('a2', 'n2'), on('a3', 'n3'), on('a4', 'n4')];
    const nodes = [
      node('n1', { labels: edge }), // unchanged
      node('n2'), // label removed
      // n3 left
      node('n4', { labels: edge, schedulable: false }), // down: keeps its replica
      node('n5', { labels: edge }), // joined
    ];
    const { of } = step([g(before)], nodes);
    expect(of('agent')).toEqual([on('a1', 'n1'), on('a4', 'n4'), on('agent-1', 'n5')]);
  });

  it('a node short of resources or with the port taken gets a pending replica of its own, placed later under the same id', () => {
    const nodes = [node('n1', { labels: edge, memoryBytes: 1 * GB }), node('n2', { labels: edge })];
    const hog = (replicas: number) =>
      svc('hog', { replicas, resources: { memoryMB: 768 }, constraints: ['node.id == n1'] }, replicas ? [on('h1', 'n1')] : []);
    const web = svc('web', { replicas: 1, ports: [{ containerPort: 80, hostPort: 80 }], constraints: ['node.id == n2'] }, [on('w1', 'n2')]);
    const agent = (placements: Placement[] = []) => g(placements, { resources: { memoryMB: 512 }, ports: [{ containerPort: 80, hostPort: 80 }] });

    const first = step([agent(), hog(1), web], nodes);
    expect(first.of('agent')).toEqual([
      pend('agent-1', 'node lacks memory (need 512 MB)', 'n1'),
      pend('agent-2', 'host port tcp/80 taken on node', 'n2'),
    ]);

    // The hog goes away and the web service is scaled to zero: same ids, now placed.
    const later = [agent(first.of('agent') as Placement[]), hog(0), svc('web', { replicas: 0 }, [on('w1', 'n2')])];
    const second = step(later, nodes);
    expect(second.of('agent')).toEqual([on('agent-1', 'n1'), on('agent-2', 'n2')]);
  });

  it('two pending global replicas competing for one node: the first by name gets it', () => {
    const nodes = [node('n1', { memoryBytes: 1 * GB })];
    const x = (name: string, placements: Placement[]) => svc(name, { mode: 'global', resources: { memoryMB: 600 } }, placements);
    const services = [x('x-b', [pend('b1', 'node lacks memory (need 600 MB)', 'n1')]), x('x-a', [pend('a1', 'node lacks memory (need 600 MB)', 'n1')])];
    const { of } = step(services, nodes);
    expect(of('x-a')).toEqual([on('a1', 'n1')]);
    expect(of('x-b')).toEqual([pend('b1', 'node lacks memory (need 600 MB)', 'n1')]);
  });

  it('a pending replica on a node that went down keeps its reason', () => {
    const nodes = [node('n1', { labels: edge, schedulable: false })];
    const services = [g([pend('a1', 'node lacks memory (need 512 MB)', 'n1')])];
    expect(planPlacements(services, nodes, ids())).toEqual([]);
  });
});

describe('planPlacements: pending reasons', () => {
  const table: Array<{ name: string; nodes: SchedNode[]; input: Record<string, unknown>; others?: SchedService[]; reason: string }> = [
    { name: 'no nodes at all', nodes: [], input: {}, reason: 'no ready node' },
    {
      name: 'matching nodes all down',
      nodes: [node('n1', { schedulable: false, labels: { zone: 'eu-1' } }), node('n2', { schedulable: false })],
      input: { constraints: ['node.labels.zone == eu-1'] },
      reason: 'no ready node matches constraints [node.labels.zone == eu-1] (1 matching node is not ready)',
    },
    {
      name: 'constraints',
      nodes: [node('n1')],
      input: { constraints: ['node.labels.zone == eu-1'] },
      reason: 'no node matches constraints [node.labels.zone == eu-1]',
    },
    {
      name: 'breakdown',
      nodes: [node('n1', { memoryBytes: 32 * MB }), node('n2', { memoryBytes: 32 * MB }), node('n3'), node('n4', { schedulable: false })],
      input: { resources: { memoryMB: 64 }, ports: [{ containerPort: 80, hostPort: 18080 }] },
      others: [svc('other', { replicas: 1, ports: [{ containerPort: 1, hostPort: 18080 }] }, [on('o1', 'n3')])],
      reason: '0 of 4 matching nodes fit: 2 lack memory (need 64 MB), 1 has host port tcp/18080 taken, 1 is not ready',
    },
    {
      name: 'cpu and unknown capacity',
      nodes: [node('n1', { cpus: 1 }), node('n2', { unknown: true })],
      input: { resources: { cpus: 2 } },
      reason: '0 of 2 matching nodes fit: 1 has not reported capacity yet, 1 lacks cpu (need 2 cpus)',
    },
  ];
  for (const t of table) {
    it(t.name, () => {
      const { of } = step([svc('web', { replicas: 1, ...t.input }), ...(t.others ?? [])], t.nodes);
      expect(of('web')).toEqual([pend('web-1', t.reason)]);
    });
  }
});

describe('planPlacements: determinism and no-ops', () => {
  it('gives the same answer whatever the order of its input', () => {
    const nodes = [node('n1', { labels: { zone: 'a' } }), node('n2', { labels: { zone: 'b' } }), node('n3', { cpus: 1 }), node('n4')];
    const services = [
      svc('web', { replicas: 5, resources: { cpus: 1 } }),
      svc('db', { replicas: 2, constraints: ['node.labels.zone != b'], ports: [{ containerPort: 5432, hostPort: 5432 }] }),
      svc('mon', { mode: 'global' }),
      svc('cache', { replicas: 3, resources: { memoryMB: 1024 } }, [on('c1', 'n2')]),
    ];
    const a = planPlacements(services, nodes, ids());
    const b = planPlacements([...services].reverse(), [...nodes].reverse(), ids());
    expect(b).toEqual(a);
    expect(a.map((c) => c.service)).toEqual(['cache', 'db', 'mon', 'web']);
  });

  it('returns [] when nothing changes', () => {
    const nodes = [node('n1'), node('n2')];
    const services = [
      svc('web', { replicas: 2 }, [on('w1', 'n1'), on('w2', 'n2')]),
      svc('mon', { mode: 'global' }, [on('m1', 'n2'), on('m2', 'n1')]),
      svc('off', { replicas: 0 }),
    ];
    expect(planPlacements(services, nodes, ids())).toEqual([]);
  });

  it('drops a replica id that appears twice and refuses an id generator that repeats one', () => {
    const nodes = [node('n1')];
    const services = [svc('a', { replicas: 1 }, [on('x', 'n1')]), svc('b', { replicas: 1 }, [on('x', 'n1')])];
    // Duplicates are found when every service is judged (the hub's first pass after its start).
    const changes = planPlacements(services, nodes, { ...ids(), skipSettled: false });
    expect(changes).toEqual([{ service: 'b', placements: [on('b-1', 'n1')] }]);
    expect(() => planPlacements([svc('a', { replicas: 2 }, [on('a-1', 'n1')])], nodes, ids())).toThrow(/already in use/);
  });

  it('checks a new id against the list of its service when a pass trusts that list and sees none of its ids', () => {
    const nodes = [node('n1'), node('n2')];
    // The planner's own output is trusted to hold no id twice: the next pass does not add its
    // ids to the seen ones, so a repeated id must be caught against the list itself.
    const first = planPlacements([svc('web', { replicas: 2 })], nodes, ids());
    const placed = first[0]!.placements;
    const grown = [svc('web', { replicas: 3 }, placed)];
    const repeat = placed[0]!.replicaId;
    expect(() => planPlacements(grown, nodes, { newReplicaId: () => repeat })).toThrow(/already in use/);
    // A fresh id goes through, and the result is trusted in turn.
    const next = planPlacements(grown, nodes, { newReplicaId: (s) => `${s}-fresh` });
    expect(next[0]!.placements.map((p) => p.replicaId)).toEqual([...placed.map((p) => p.replicaId), 'web-fresh']);
    expect(() => planPlacements([svc('web', { replicas: 4 }, next[0]!.placements)], nodes, { newReplicaId: (s) => `${s}-fresh` })).toThrow(/already in use/);
  });

  it('checks new ids against every list a service had, and never against ids made for a list planned from the same one', () => {
    const nodes = [node('n1'), node('n2'), node('n3')];
    let list = planPlacements([svc('web', { replicas: 2 })], nodes, ids())[0]!.placements;
    const first = list.map((p) => p.replicaId);
    // Three passes in a row, each growing the service by one from the last one's list.
    for (const step of ['a', 'b', 'c']) {
      list = planPlacements([svc('web', { replicas: list.length + 1 }, list)], nodes, { newReplicaId: (s) => `${s}-${step}` })[0]!.placements;
    }
    const grown = [svc('web', { replicas: list.length + 1 }, list)];
    // Ids made passes ago, and the ones the list started with, are still caught.
    for (const repeat of ['web-a', 'web-c', ...first]) {
      expect(() => planPlacements(grown, nodes, { newReplicaId: () => repeat })).toThrow(/already in use/);
    }
    // The same list planned twice: the id made the first time is not held against the second
    // (the first plan may never be committed, and the list stays the service's).
    const base = [svc('web', { replicas: list.length + 1 }, list)];
    const once = planPlacements(base, nodes, { newReplicaId: (s) => `${s}-d` });
    const again = planPlacements(base, nodes, { newReplicaId: (s) => `${s}-d` });
    expect(again).toEqual(once);
  });

  it('switching a service from global to replicated keeps what it can', () => {
    const nodes = [node('n1'), node('n2')];
    const services = [svc('web', { replicas: 2 }, [on('g1', 'n1'), pend('g2', 'node lacks memory (need 64 MB)', 'n2')])];
    const { of } = step(services, nodes);
    expect(of('web')).toEqual([on('g1', 'n1'), on('g2', 'n2')]);
  });
});

// ---------------------------------------------------------------------------------------------
// Property-style: random fleets and services through several rounds of change


function checkInvariants(services: readonly SchedService[], nodes: readonly SchedNode[], ampleCapacity: boolean): void {
  const nodesById = new Map(nodes.map((n) => [n.id, n]));
  const seen = new Set<string>();
  const usedCpus = new Map<string, number>();
  const usedMemoryBytes = new Map<string, number>();
  const hostPorts = new Map<string, Set<string>>();
  for (const s of services) {
    const byNode = new Set<string>();
    for (const p of s.placements) {
      expect(seen.has(p.replicaId), `replica id ${p.replicaId} twice`).toBe(false);
      seen.add(p.replicaId);
      if (p.nodeId !== null) expect(nodesById.has(p.nodeId), `${p.replicaId} on removed node`).toBe(true);
      if (s.spec.mode === 'replicated' && p.pendingReason !== null) expect(p.nodeId).toBeNull();
      if (s.spec.mode === 'global') {
        expect(p.nodeId).not.toBeNull();
        expect(byNode.has(p.nodeId as string), `two ${s.name} replicas on ${p.nodeId}`).toBe(false);
        byNode.add(p.nodeId as string);
      }
      if (p.nodeId === null || p.pendingReason !== null) continue;
      const id = p.nodeId;
      usedCpus.set(id, (usedCpus.get(id) ?? 0) + (s.spec.resources.cpus ?? 0));
      usedMemoryBytes.set(id, (usedMemoryBytes.get(id) ?? 0) + (s.spec.resources.memoryMB ?? 0) * MB);
      const ports = hostPorts.get(id) ?? new Set<string>();
      for (const port of s.spec.ports) {
        if (port.hostPort === null) continue;
        const key = `${port.protocol}/${port.hostPort}`;
        expect(ports.has(key), `host port ${key} twice on ${id}`).toBe(false);
        ports.add(key);
      }
      hostPorts.set(id, ports);
    }
    if (s.spec.mode === 'replicated') {
      // Replicas handing over (off a node they no longer match) wait for a replacement in the list.
      const handingOver = s.placements.filter((p) => p.replacedBy);
      for (const p of handingOver) expect(s.placements.some((q) => q.replicaId === p.replacedBy)).toBe(true);
      expect(s.placements.length - handingOver.length).toBe(s.spec.replicas);
      const constraints = parsedConstraints(s.spec);
      const somewhere = nodes.some((n) => n.schedulable && matchesAll(n, constraints));
      if (ampleCapacity && somewhere) expect(pendingOf(s.placements)).toEqual([]);
    }
  }
  for (const n of nodes) {
    if (!n.facts) {
      expect(usedCpus.get(n.id) ?? 0).toBe(0);
      expect(usedMemoryBytes.get(n.id) ?? 0).toBe(0);
      continue;
    }
    expect(usedCpus.get(n.id) ?? 0).toBeLessThanOrEqual(n.facts.cpus + 1e-9);
    expect(usedMemoryBytes.get(n.id) ?? 0).toBeLessThanOrEqual(n.facts.memoryBytes);
  }
}

function randomRun(seed: number, ampleCapacity: boolean): void {
  const rand = prng(seed);
  const int = (lo: number, hi: number) => lo + Math.floor(rand() * (hi - lo + 1));
  const pick = <T>(xs: readonly T[]): T => xs[Math.floor(rand() * xs.length)] as T;
  let nodeSeq = 0;
  const randomNode = (): SchedNode =>
    node(`node-${String(++nodeSeq).padStart(3, '0')}`, {
      labels: rand() < 0.8 ? { zone: pick(['a', 'b', 'c']) } : {},
      arch: pick(['amd64', 'arm64']),
      cpus: ampleCapacity ? 1024 : int(1, 4),
      memoryBytes: ampleCapacity ? 1024 * GB : int(1, 4) * 512 * MB,
      unknown: !ampleCapacity && rand() < 0.1,
      schedulable: rand() < 0.85,
    });
  const randomService = (name: string): SchedService => {
    const global = rand() < 0.25;
    const input: Record<string, unknown> = { mode: global ? 'global' : 'replicated' };
    if (!global) input.replicas = int(0, 12);
    if (rand() < 0.3) input.constraints = [pick(['node.labels.zone == a', 'node.labels.zone != b', 'node.arch == arm64', 'node.arch != arm64'])];
    if (!ampleCapacity) {
      const resources: Record<string, number> = {};
      if (rand() < 0.5) resources.cpus = pick([0.25, 0.5, 1, 1.5]);
      if (rand() < 0.5) resources.memoryMB = pick([64, 256, 512, 1024]);
      input.resources = resources;
      if (rand() < 0.4) input.ports = [{ containerPort: 80, hostPort: pick([80, 443, 53]), protocol: pick(['tcp', 'udp']) }];
    }
    return svc(name, input);
  };

  let nodes = Array.from({ length: int(1, 10) }, randomNode);
  let services = Array.from({ length: int(1, 6) }, (_, i) => randomService(`svc-${i}`));
  const opts = ids();
  for (let round = 0; round < 8; round++) {
    // Settled services are skipped, not judged: the answer must be the one judging everything gives.
    let n = 0;
    const sameIds = (): PlacementOptions => ({ newReplicaId: (s) => `${s}-r${round}-${++n}`, defaultLostAfterMs: 60_000 });
    const input = structuredClone(services);
    const shortcut = planPlacements(services, nodes, sameIds());
    // The answer may share the input's placement objects, so the input must never change.
    expect(services, `seed ${seed} round ${round}: the input changed`).toEqual(input);
    n = 0;
    expect(shortcut, `seed ${seed} round ${round}: skipping settled services changed the answer`).toEqual(
      planPlacements(services, nodes, { ...sameIds(), skipSettled: false }),
    );
    services = apply(services, planPlacements(services, nodes, opts));
    checkInvariants(services, nodes, ampleCapacity);
    expect(planPlacements(services, nodes, opts), `seed ${seed} round ${round} not idempotent`).toEqual([]);

    // Change the world a little. Facts and resources stay fixed, so capacity checks stay meaningful.
    for (let k = int(1, 3); k > 0; k--) {
      const what = int(0, 4);
      if (what === 0) nodes = [...nodes, randomNode()];
      else if (what === 1 && nodes.length > 1) nodes = nodes.filter((n) => n !== pick(nodes));
      else if (what === 2 && nodes.length > 0) {
        const victim = pick(nodes);
        nodes = nodes.map((n) => (n === victim ? { ...n, labels: rand() < 0.7 ? { zone: pick(['a', 'b', 'c']) } : {} } : n));
      } else if (what === 3 && nodes.length > 0) {
        const victim = pick(nodes);
        // Down for a while, possibly past the 60 s lostAfter; or back.
        const downForMs = victim.schedulable ? pick([1_000, 60_000, 120_000]) : null;
        nodes = nodes.map((n) => (n === victim ? { ...n, schedulable: downForMs === null, downForMs } : n));
      } else {
        const victim = pick(services);
        services = services.map((s) =>
          s === victim && s.spec.mode === 'replicated' ? { ...s, spec: { ...s.spec, replicas: int(0, 12) } } : s,
        );
      }
    }
  }
}

describe('planPlacements: random fleets (property-style)', () => {
  it('keeps its invariants under tight capacity', () => {
    for (let seed = 1; seed <= 200; seed++) randomRun(seed, false);
  });

  it('places everything when capacity is ample', () => {
    for (let seed = 1001; seed <= 1100; seed++) randomRun(seed, true);
  });
});

describe('planPlacements: scale', () => {
  it('places 100,000 replicas over 10,000 nodes evenly', () => {
    const nodes = Array.from({ length: 10_000 }, (_, i) => node(`n${String(i).padStart(5, '0')}`, { cpus: 64, memoryBytes: 256 * GB }));
    const services = [svc('big', { replicas: 100_000, resources: { cpus: 0.1, memoryMB: 64 } })];
    let n = 0;
    const changes = planPlacements(services, nodes, { newReplicaId: () => `r${++n}` });
    expect(changes).toHaveLength(1);
    const placements = (changes[0] as ServicePlacementChange).placements;
    expect(placements).toHaveLength(100_000);
    expect(pendingOf(placements)).toHaveLength(0);
    const counts = Object.values(perNode(placements));
    expect(counts).toHaveLength(10_000);
    expect(Math.max(...counts) - Math.min(...counts)).toBeLessThanOrEqual(1);
  });
});

describe('planPlacements: the revision a replica runs', () => {
  const at = (p: Placement, revision: number): Placement => ({ ...p, revision });

  it('stays with a replicated replica through a hand-over and a pending spell', () => {
    const nodes = [node('n1'), node('n2', { downForMs: 24 * 3600_000 }), node('n3')];
    const services = [svc('web', { replicas: 3 }, [at(on('web-a', 'n1'), 3), at(on('web-b', 'n2'), 3), at(pend('web-c', 'no room'), 3)])];
    const { of } = step(services, nodes);
    const placements = of('web');
    expect(placements.find((p) => p.replicaId === 'web-a')?.revision).toBe(3);
    // Placed at last: it runs the revision it was given, until an update reaches it.
    expect(placements.find((p) => p.replicaId === 'web-c')).toMatchObject({ revision: 3, pendingReason: null });
    expect(placements.find((p) => p.replicaId === 'web-c')?.nodeId).not.toBeNull();
    // The lost node's replica is handed over: it keeps its revision while it drains; its
    // replacement is placed anew and runs the current spec.
    const drained = placements.find((p) => p.replicaId === 'web-b');
    expect(drained?.revision).toBe(3);
    expect(placements.find((p) => p.replicaId === drained?.replacedBy)?.revision).toBeUndefined();
  });

  it('stays with a global replica', () => {
    const { of } = step([svc('agent', { mode: 'global' }, [at(on('agent-a', 'n1'), 2)])], [node('n1')]);
    expect(of('agent')).toEqual([at(on('agent-a', 'n1'), 2)]);
  });

  it('is a change when it is all that changed', () => {
    const before = [svc('web', { replicas: 1 }, [on('web-a', 'n1')])];
    expect(planPlacements(before, [node('n1')], ids())).toEqual([]);
    // keep() reuses a settled list as it is; a copied one must carry the field to compare equal.
    const pinned = [svc('web', { replicas: 1 }, [at(on('web-a', 'n1'), 1)])];
    expect(planPlacements(pinned, [node('n1')], { ...ids(), skipSettled: false })).toEqual([]);
  });
});
