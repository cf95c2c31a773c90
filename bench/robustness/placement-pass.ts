#!/usr/bin/env node
/**
 * What one scheduling pass costs at fleet scale, with nothing else running: the pure planner on
 * 10,000 nodes, one service of 100,000 replicas and a few small ones. Times a pass that places
 * everything from nothing, a pass with nothing changed (the hub's resync and most triggers), a
 * pass where one small service changed its replica count (an API write), a pass that judges every
 * service in full (the hub's first pass), passes with 1 % of the nodes down but not yet lost (each
 * pass reports them down a second longer, as the hub does: nothing moves, and the settled services
 * on them should not be counted again), and a pass with 10 % of the nodes lost (their replicas
 * move), then the passes of the failover that follows: while the replacements start (the lost
 * replicas handing over) and once they run (the hand-overs end). Node objects and replica ids
 * are made as the hub makes them. Like the hub, no settled-usage cache is
 * given to the passes unless `--settled-usage` says so.
 *
 *   node dist/bench/robustness/placement-pass.js [--nodes 10000] [--replicas 100000] [--repeat 9] [--settled-usage]
 *
 * Prints one JSON line: the median milliseconds of each kind of pass, the least of the steady and
 * small-change ones (and how many services each changed, to show the passes did what they claim;
 * for the down-not-lost passes, how many services they counted again).
 */
import { parseArgs } from 'node:util';
import { planPlacements, type PlacementOptions } from '../../hub/scheduler/placement.js';
import { SettledUsage } from '../../hub/scheduler/settled-usage.js';
import type { SchedNode, SchedService, ServicePlacementChange } from '../../hub/scheduler/types.js';
import { validateServiceSpec, type NormalizedSpec } from '../../hub/spec/service-spec.js';
import { newReplicaId } from '../../hub/replica-id.js';

const { values } = parseArgs({
  options: {
    nodes: { type: 'string', default: '10000' },
    replicas: { type: 'string', default: '100000' },
    repeat: { type: 'string', default: '9' },
    'settled-usage': { type: 'boolean', default: false },
  },
});
const NODES = Math.min(50_000, Math.max(10, Number(values.nodes)));
const REPLICAS = Math.min(500_000, Math.max(10, Number(values.replicas)));
const REPEAT = Math.min(50, Math.max(1, Number(values.repeat)));
const SMALL_SERVICES = 5;
const LOST_AFTER_MS = 60_000;
const GB = 1024 ** 3;

function spec(input: Record<string, unknown>): NormalizedSpec {
  const v = validateServiceSpec({ image: 'busybox:1', ...input });
  if (!v.ok) throw new Error(JSON.stringify(v.errors));
  return v.value;
}

/** The object of each usable node, kept from pass to pass as the hub keeps it (Nodes.forPlacement). */
const usable = new Map<number, SchedNode>();

/**
 * The nodes of a pass as the hub gives them: a usable node is the same object every pass (its
 * record unchanged), a down one is made fresh (its away-time grows). `downForMsByIndex`: the
 * nodes that are down, and for how long.
 */
function nodes(downForMsByIndex: ReadonlyMap<number, number> = new Map()): SchedNode[] {
  const out: SchedNode[] = [];
  for (let i = 0; i < NODES; i++) {
    const downForMs = downForMsByIndex.get(i) ?? null;
    const kept = downForMs === null ? usable.get(i) : undefined;
    if (kept) {
      out.push(kept);
      continue;
    }
    const id = `node-${String(i).padStart(5, '0')}`;
    const node: SchedNode = {
      id,
      name: id,
      labels: { site: `site-${i % 40}` },
      facts: { hostname: id, arch: 'arm64', os: 'linux', cpus: 4, memoryBytes: 4 * GB },
      schedulable: downForMs === null,
      downForMs,
    };
    if (downForMs === null) usable.set(i, node);
    out.push(node);
  }
  return out;
}

const settledUsage = values['settled-usage'] ? new SettledUsage() : undefined;
const options = (skipSettled = true, isRunning: (replicaId: string) => boolean = () => false): PlacementOptions => ({
  newReplicaId,
  defaultLostAfterMs: LOST_AFTER_MS,
  isRunning,
  skipSettled,
  ...(settledUsage ? { settledUsage } : {}),
});

function apply(services: readonly SchedService[], changes: readonly ServicePlacementChange[]): SchedService[] {
  const byName = new Map(changes.map((c) => [c.service, c.placements]));
  return services.map((s) => ({ ...s, placements: byName.get(s.name) ?? s.placements }));
}

function timed(services: readonly SchedService[], nodeList: SchedNode[], opts: PlacementOptions) {
  const startMs = performance.now();
  const changes = planPlacements(services, nodeList, opts);
  return { ms: performance.now() - startMs, changes };
}

const round = (ms: number): number => Math.round(ms * 100) / 100;
const median = (xs: number[]): number => round([...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)] as number);
/** On a shared machine the least is the steadiest estimate of what a pass itself costs. */
const least = (xs: number[]): number => round(Math.min(...xs));

let services: SchedService[] = [
  { name: 'big', spec: spec({ replicas: REPLICAS, resources: { cpus: 0.01, memoryMB: 8 } }), placements: [] },
];
for (let i = 0; i < SMALL_SERVICES; i++) {
  const input = i === 0 ? { replicas: 3, ports: [{ containerPort: 80, hostPort: 8080 }] } : { replicas: 3, resources: { memoryMB: 64 } };
  services.push({ name: `small-${i}`, spec: spec(input), placements: [] });
}

const initial = timed(services, nodes(), options());
services = apply(services, initial.changes);

const steadyMs: number[] = [];
let steadyChanges = 0;
for (let r = 0; r < REPEAT; r++) {
  const pass = timed(services, nodes(), options());
  steadyMs.push(pass.ms);
  steadyChanges += pass.changes.length;
}

// One small service scaled up and back down, alternately: each pass sees a real change.
const smallMs: number[] = [];
let smallChanges = 0;
for (let r = 0; r < REPEAT; r++) {
  const target = services[1] as SchedService;
  const changed = { ...target, spec: { ...target.spec, replicas: r % 2 === 0 ? 4 : 3 } };
  const input = services.map((s) => (s === target ? changed : s));
  const pass = timed(input, nodes(), options());
  smallMs.push(pass.ms);
  smallChanges += pass.changes.length;
  services = apply(input, pass.changes);
}

// Every hundredth node away, a second longer each pass, never as long as LOST_AFTER_MS. A steady
// pass first, so that the small service changed last is counted before the timed passes.
timed(services, nodes(), options());
const downMs: number[] = [];
let downChanges = 0;
let downRecounted = 0;
for (let r = 0; r < REPEAT; r++) {
  const down = new Map<number, number>();
  for (let i = 5; i < NODES; i += 100) down.set(i, (r + 1) * 1_000);
  const pass = timed(services, nodes(down), options());
  downMs.push(pass.ms);
  downChanges += pass.changes.length;
  downRecounted += settledUsage?.recounted.length ?? 0;
}

const judgeAllMs: number[] = [];
for (let r = 0; r < Math.min(REPEAT, 3); r++) judgeAllMs.push(timed(services, nodes(), options(false)).ms);

// Every tenth node lost: the same input each time, so each pass moves the same 10 %.
const lost = new Map<number, number>();
for (let i = 0; i < NODES; i += 10) lost.set(i, 2 * LOST_AFTER_MS);
const lostMs: number[] = [];
let lostOutcome: ServicePlacementChange[] = [];
let lostMoved = 0;
for (let r = 0; r < Math.min(REPEAT, 3); r++) {
  const pass = timed(services, nodes(lost), options());
  lostMs.push(pass.ms);
  lostMoved = pass.changes.reduce((n, c) => n + c.placements.filter((p) => p.replacedBy).length, 0);
  if (r === 0) lostOutcome = pass.changes;
}
// The failover goes on from the first lost pass: replacements placed, the lost ones handing over.
services = apply(services, lostOutcome);
const handingOverMs: number[] = [];
let handingOverChanges = 0;
for (let r = 0; r < Math.min(REPEAT, 3); r++) {
  const pass = timed(services, nodes(lost), options());
  handingOverMs.push(pass.ms);
  handingOverChanges += pass.changes.length;
}
// Every replacement runs: the hand-overs end and the lost replicas go.
const handoverEndMs: number[] = [];
let handedOver = 0;
for (let r = 0; r < Math.min(REPEAT, 3); r++) {
  const pass = timed(services, nodes(lost), options(true, () => true));
  handoverEndMs.push(pass.ms);
  handedOver = services.reduce((n, s) => n + s.placements.filter((p) => p.replacedBy).length, 0) - pass.changes.reduce((n, c) => n + c.placements.filter((p) => p.replacedBy).length, 0);
}

console.log(
  JSON.stringify({
    nodes: NODES,
    replicas: REPLICAS,
    smallServices: SMALL_SERVICES,
    repeat: REPEAT,
    initialMs: Math.round(initial.ms),
    steadyMedianMs: median(steadyMs),
    steadyMinMs: least(steadyMs),
    steadyChanges,
    smallChangeMedianMs: median(smallMs),
    smallChangeMinMs: least(smallMs),
    smallChanges,
    downNotLostMedianMs: median(downMs),
    downNotLostMinMs: least(downMs),
    downNotLostChanges: downChanges,
    downNotLostRecounted: downRecounted,
    judgeAllMedianMs: median(judgeAllMs),
    lost10PercentMedianMs: median(lostMs),
    lostReplicasMoved: lostMoved,
    handingOverMedianMs: median(handingOverMs),
    handingOverChanges,
    handoverEndMedianMs: median(handoverEndMs),
    handoversEnded: handedOver,
    settledUsage: settledUsage !== undefined,
  }),
);
