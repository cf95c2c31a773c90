/**
 * What building and encoding every node's target frame costs: NODES nodes with REPLICAS_PER_NODE
 * replicas each of one service (a realistic container spec). The way targets were made before
 * (the frame encoded whole with JSON.stringify, the target hash updated once per replica) against
 * the Dispatcher's (the service's container text made once, the frame's text built by
 * concatenation, the hash updated once per node), in the same run, ROUNDS rounds alternating.
 * Both ways build the same replicas and sort them; every frame's bytes and hash are checked equal.
 * In memory only; stops by itself.
 *
 *   node dist/bench/robustness/target-frames.js
 *
 * Prints one JSON line: per way, each round's time for all NODES frames in ms and the median,
 * and the same split into hashing and encoding alone (over replicas built once).
 */
import { createHash } from 'node:crypto';
import { performance } from 'node:perf_hooks';
import { encodeFrame } from '../../shared/codec.js';
import { containerSpecHash, containerSpecOf, type ContainerSpec } from '../../shared/container-spec.js';
import type { AssignedReplica, TargetFrame } from '../../shared/protocol.js';
import { Dispatcher } from '../../hub/dispatcher.js';
import { newReplicaId } from '../../hub/replica-id.js';
import type { Placement } from '../../hub/scheduler/types.js';
import { validateServiceSpec } from '../../hub/spec/service-spec.js';
import type { NodeRecord, Store } from '../../hub/store/store.js';
import { encodeTargetFrame, targetHashText } from '../../hub/target-frame.js';

const NODES = 10_000;
const REPLICAS_PER_NODE = 10;
const ROUNDS = 5;
const SERVICE = 'telemetry';

const validated = validateServiceSpec({
  image: 'registry.example.com/edge/telemetry-collector:4.2.1',
  command: ['/usr/bin/collector', '--config', '/etc/collector/config.yaml', '--log-level', 'info'],
  env: { SITE: 'plant-7', UPLINK: 'mqtts://broker.example.com:8883', SAMPLE_INTERVAL_MS: '500', TZ: 'Europe/Berlin' },
  ports: [{ containerPort: 9100, hostPort: 9100 }],
  resources: { cpus: 0.25, memoryMB: 128 },
  labels: { 'tether.io/team': 'sensors', 'tether.io/tier': 'edge', 'com.example.owner': 'plant-ops' },
  registryAuth: { username: 'edge-pull', password: 'pull-token-0123456789abcdef', serveraddress: 'registry.example.com' },
});
if (!validated.ok) throw new Error(JSON.stringify(validated.errors));
const spec = validated.value;

const nodeIds = Array.from({ length: NODES }, (_, i) => `node-${String(i).padStart(5, '0')}`);
const placements: Placement[] = [];
for (const nodeId of nodeIds) for (let k = 0; k < REPLICAS_PER_NODE; k++) placements.push({ replicaId: newReplicaId(SERVICE), nodeId, pendingReason: null } as Placement);

// ---- before: as the Dispatcher made targets until each service's container text was kept --------

const container: ContainerSpec = containerSpecOf(spec);
const oldServices = new Map([[SERVICE, { container, specHash: containerSpecHash(container) }]]);
const oldByNode = new Map<string, Map<string, string>>();
for (const p of placements) {
  let replicas = oldByNode.get(p.nodeId!);
  if (!replicas) oldByNode.set(p.nodeId!, (replicas = new Map()));
  replicas.set(p.replicaId, SERVICE);
}

function oldReplicas(nodeId: string): AssignedReplica[] {
  const replicas: AssignedReplica[] = [];
  for (const [replicaId, service] of oldByNode.get(nodeId) ?? []) {
    const info = oldServices.get(service);
    if (!info) continue;
    replicas.push({ replicaId, service, specHash: info.specHash, container: info.container });
  }
  replicas.sort((a, b) => (a.replicaId < b.replicaId ? -1 : a.replicaId > b.replicaId ? 1 : 0));
  return replicas;
}

function oldHash(replicas: readonly AssignedReplica[]): string {
  const h = createHash('sha256');
  for (const r of replicas) {
    h.update(`${r.replicaId}\0${r.specHash}\0`);
    if (r.container.registryAuth) h.update(JSON.stringify(r.container.registryAuth));
  }
  return h.digest('hex').slice(0, 32);
}

function oldTarget(nodeId: string, generation: number): { hash: string; text: string } {
  const replicas = oldReplicas(nodeId);
  const hash = oldHash(replicas);
  const frame: TargetFrame = { type: 'target', generation, replicas };
  return { hash, text: JSON.stringify(frame) };
}

// ---- after: the Dispatcher itself, through what a hello gets (targetOf, then the frame's text) ----

const nodes = new Map<string, NodeRecord>();
const store = {
  listServices: () => [],
  listNodes: () => [],
  getNode: (id: string) => nodes.get(id),
  subscribe: () => () => undefined,
} as unknown as Store;
const dispatcher = new Dispatcher(store, () => true);
dispatcher.serviceChanged(SERVICE, { name: SERVICE, spec, placements, revision: 1, createdAt: '', updatedAt: '' });

const GENERATION = 3;
let bytesPerFrame = 0;
for (const id of nodeIds) {
  const { hash } = dispatcher.targetOf(id);
  nodes.set(id, { id, name: id, labels: {}, credentialHash: '', advertiseAddress: null, facts: null, generation: GENERATION, targetHash: hash, joinedAt: '' });
  // The same bytes and the same hash (the stored one), or the comparison means nothing.
  const frame = dispatcher.currentTarget(id);
  const old = oldTarget(id, GENERATION);
  if (!frame || encodeFrame(frame) !== old.text || hash !== old.hash) throw new Error(`node ${id}: the two ways disagree`);
  bytesPerFrame = old.text.length;
}

function newTarget(nodeId: string): string {
  return encodeFrame(dispatcher.currentTarget(nodeId)!);
}

// ---- the split: hashing alone and encoding alone, over replicas built once ----------------------

const built = nodeIds.map((id) => oldReplicas(id));
const authJson = JSON.stringify(container.registryAuth);
const containerJson = JSON.stringify(container);

const median = (xs: number[]): number => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
const round1 = (ms: number): number => Math.round(ms * 10) / 10;

function time(fn: () => void): number {
  const start = performance.now();
  fn();
  return performance.now() - start;
}

const results = { old: [] as number[], new: [] as number[], oldHash: [] as number[], newHash: [] as number[], oldEncode: [] as number[], newEncode: [] as number[] };
let sink = 0;
for (let round = 0; round < ROUNDS; round++) {
  // Alternating which goes first, so that neither always runs on a warmer heap.
  const order = round % 2 === 0 ? (['old', 'new'] as const) : (['new', 'old'] as const);
  for (const way of order) {
    if (way === 'old') {
      results.old.push(time(() => nodeIds.forEach((id) => (sink += oldTarget(id, GENERATION).text.length))));
      results.oldHash.push(time(() => built.forEach((r) => (sink += oldHash(r).length))));
      results.oldEncode.push(time(() => built.forEach((replicas) => (sink += JSON.stringify({ type: 'target', generation: GENERATION, replicas }).length))));
    } else {
      results.new.push(time(() => nodeIds.forEach((id) => (sink += newTarget(id).length))));
      results.newHash.push(
        time(() =>
          built.forEach(
            (r) =>
              (sink += createHash('sha256')
                .update(targetHashText(r, () => authJson))
                .digest('hex')
                .slice(0, 32).length),
          ),
        ),
      );
      results.newEncode.push(time(() => built.forEach((replicas) => (sink += encodeTargetFrame(GENERATION, replicas, () => containerJson).length))));
    }
  }
}

// Every result was used, so none of the work could be left out.
if (sink === 0) throw new Error('no frame was made');
const summary = (xs: number[]) => ({ medianMs: round1(median(xs)), roundsMs: xs.map(round1) });
console.log(
  JSON.stringify({
    bench: 'target-frames',
    nodes: NODES,
    replicasPerNode: REPLICAS_PER_NODE,
    bytesPerFrame,
    rounds: ROUNDS,
    buildHashEncode: { old: summary(results.old), new: summary(results.new), speedup: round1(median(results.old) / median(results.new)) },
    hashOnly: { old: summary(results.oldHash), new: summary(results.newHash) },
    encodeOnly: { old: summary(results.oldEncode), new: summary(results.newEncode) },
  }),
);
