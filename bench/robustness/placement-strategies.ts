#!/usr/bin/env node
/**
 * What each placement strategy costs at fleet scale: the pure planner placing one service of
 * 100,000 replicas over 10,000 nodes from nothing, with `spread` (the default), `binpack`,
 * `spreadBy` over a label of 40 values, and both; then, for each, the pass after every tenth node
 * is lost (its replicas move). The strategies are run in turn, round after round, so that a busy
 * moment of a shared machine hits them alike. Node objects and replica ids are made as the hub
 * makes them.
 *
 *   node dist/bench/robustness/placement-strategies.js [--nodes 10000] [--replicas 100000] [--rounds 5]
 *
 * Prints one JSON line: per strategy, the median and least milliseconds of the first placement
 * and of the lost-node pass, and what they did (replicas placed, replicas moved, and the spread:
 * the fewest and most replicas per label value and per used node).
 */
import { parseArgs } from 'node:util';
import { planPlacements, type PlacementOptions } from '../../hub/scheduler/placement.js';
import type { Placement, SchedNode, SchedService, ServicePlacementChange } from '../../hub/scheduler/types.js';
import { validateServiceSpec, type NormalizedSpec } from '../../hub/spec/service-spec.js';
import { newReplicaId } from '../../hub/replica-id.js';

const { values } = parseArgs({
  options: {
    nodes: { type: 'string', default: '10000' },
    replicas: { type: 'string', default: '100000' },
    rounds: { type: 'string', default: '5' },
  },
});
const NODES = Math.min(50_000, Math.max(10, Number(values.nodes)));
const REPLICAS = Math.min(500_000, Math.max(10, Number(values.replicas)));
const ROUNDS = Math.min(20, Math.max(1, Number(values.rounds)));
const SITES = 40;
const LOST_AFTER_MS = 60_000;
const GB = 1024 ** 3;

function spec(input: Record<string, unknown>): NormalizedSpec {
  const v = validateServiceSpec({ image: 'busybox:1', ...input });
  if (!v.ok) throw new Error(JSON.stringify(v.errors));
  return v.value;
}

function nodes(lost: boolean): SchedNode[] {
  const out: SchedNode[] = [];
  for (let i = 0; i < NODES; i++) {
    const id = `node-${String(i).padStart(5, '0')}`;
    const down = lost && i % 10 === 0;
    out.push({
      id,
      name: id,
      labels: { site: `site-${i % SITES}` },
      facts: { hostname: id, arch: 'arm64', os: 'linux', cpus: 4, memoryBytes: 4 * GB },
      schedulable: !down,
      downForMs: down ? 2 * LOST_AFTER_MS : null,
    });
  }
  return out;
}

const STRATEGIES: Record<string, Record<string, unknown>> = {
  spread: {},
  binpack: { strategy: 'binpack' },
  spreadBy: { spreadBy: 'node.labels.site' },
  spreadByBinpack: { spreadBy: 'node.labels.site', strategy: 'binpack' },
};

const options = (): PlacementOptions => ({ newReplicaId, defaultLostAfterMs: LOST_AFTER_MS });

function timed(services: readonly SchedService[], nodeList: SchedNode[]): { ms: number; changes: ServicePlacementChange[] } {
  const startMs = performance.now();
  const changes = planPlacements(services, nodeList, options());
  return { ms: performance.now() - startMs, changes };
}

/** The fewest and most replicas per label value and per node holding any. */
function spreadOf(placements: readonly Placement[], nodeList: readonly SchedNode[]) {
  const site = new Map(nodeList.map((n) => [n.id, n.labels.site as string]));
  const perNode = new Map<string, number>();
  const perSite = new Map<string, number>();
  let placed = 0;
  for (const p of placements) {
    if (p.nodeId === null || p.pendingReason !== null || p.replacedBy) continue;
    placed++;
    perNode.set(p.nodeId, (perNode.get(p.nodeId) ?? 0) + 1);
    const s = site.get(p.nodeId) as string;
    perSite.set(s, (perSite.get(s) ?? 0) + 1);
  }
  const range = (m: Map<string, number>) => [Math.min(...m.values()), Math.max(...m.values())];
  return { placed, nodesUsed: perNode.size, perNode: range(perNode), perSite: range(perSite) };
}

const round = (ms: number): number => Math.round(ms * 100) / 100;
const median = (xs: number[]): number => round([...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)] as number);
const least = (xs: number[]): number => round(Math.min(...xs));

const healthy = nodes(false);
const lostTenth = nodes(true);
const timings = new Map(Object.keys(STRATEGIES).map((name) => [name, { initialMs: [] as number[], lostMs: [] as number[] }]));
const outcome: Record<string, unknown> = {};
for (let r = 0; r < ROUNDS; r++) {
  for (const [name, input] of Object.entries(STRATEGIES)) {
    const fresh: SchedService[] = [{ name: 'big', spec: spec({ replicas: REPLICAS, resources: { cpus: 0.01, memoryMB: 8 }, ...input }), placements: [] }];
    const initial = timed(fresh, healthy);
    const placed = fresh.map((s) => ({ ...s, placements: initial.changes[0]?.placements ?? [] }));
    const lost = timed(placed, lostTenth);
    const t = timings.get(name) as { initialMs: number[]; lostMs: number[] };
    t.initialMs.push(initial.ms);
    t.lostMs.push(lost.ms);
    if (r === 0) {
      const after = lost.changes[0]?.placements ?? [];
      outcome[name] = {
        initial: spreadOf(placed[0]?.placements ?? [], healthy),
        moved: after.filter((p) => p.replacedBy).length,
        afterLoss: spreadOf(after, lostTenth),
      };
    }
  }
}

const results: Record<string, unknown> = {};
for (const [name, t] of timings) {
  results[name] = {
    initialMedianMs: median(t.initialMs),
    initialMinMs: least(t.initialMs),
    lost10PercentMedianMs: median(t.lostMs),
    lost10PercentMinMs: least(t.lostMs),
    ...(outcome[name] as object),
  };
}
console.log(JSON.stringify({ nodes: NODES, replicas: REPLICAS, sites: SITES, rounds: ROUNDS, ...results }));
