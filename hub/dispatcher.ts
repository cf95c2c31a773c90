import { containerSpecHash, containerSpecOf, valueRefsOf, type ContainerSpec, type ValueSource } from '../shared/container-spec.js';
import { PROTOCOL_VERSION, type AssignedReplica, type TargetFrame, type TargetValue } from '../shared/protocol.js';
import { diffPlacements } from './scheduler/placement-diff.js';
import type { Placement } from './scheduler/types.js';
import { specOfRevision } from './revisions.js';
import { encodeTargetFrame, targetHash, targetHashText, withText } from './target-frame.js';
import type { RecordChange, ServiceRecord, Store } from './store/store.js';

const NO_NODES: ReadonlySet<string> = new Set();

/** The first protocol version whose agents read a target's `purgeVolumes`. */
const PURGE_PROTOCOL_VERSION = 6;

/** Placed: a node that should run it now (pending replicas, even with a node, run nowhere). */
const placedOn = (p: Placement): boolean => p.nodeId !== null && p.pendingReason === null;
const nodeOfPlaced = (p: Placement): string | null => (placedOn(p) ? p.nodeId : null);

interface ServiceContainer {
  container: ContainerSpec;
  specHash: string;
  /** The configs and secrets the container names, each version once (most containers name none). */
  valueRefs: ValueRef[];
  /**
   * JSON.stringify of `container` and of its registry credentials ('' when none), made once per
   * spec: every replica of the service carries them, in each target's text and hash.
   */
  containerJson: string;
  authJson: string;
}

/**
 * The highest generation a node's hello is believed to have applied (a store restored from an
 * older copy): 2^40 takes a change a millisecond for 35 years, and leaves the node 2^53 - 2^40
 * generations to grow by exactly. A claim above it is forged.
 */
export const MAX_BELIEVED_GENERATION = 2 ** 40;

/** Sends a target to a connected node; false when the node has no live session. */
export type SendTarget = (nodeId: string, frame: TargetFrame) => boolean;

/** A replica is no longer assigned to a node (moved, removed, or its service deleted). */
export type OnReleased = (nodeId: string, replicaId: string) => void;

type ValueRef = { source: ValueSource; name: string; version: number };

/** A config's or secret's bytes at a version, as base64; undefined when the hub no longer holds it. */
export type ValueBytes = (source: ValueSource, name: string, version: number) => string | undefined;

/**
 * Turns placements into per-node targets and sends each node its whole target, with a generation
 * that grows whenever the target's content changes. It keeps an index node -> replicas so that a
 * change costs in proportion to the nodes it touches, not to the fleet.
 */
export class Dispatcher {
  /** nodeId -> replicaId -> service name */
  private readonly byNode = new Map<string, Map<string, string>>();
  private readonly services = new Map<string, ServiceContainer>();
  /**
   * Assigned replicas that run an earlier revision than their service's current one (a rolling
   * update has not reached them): replicaId -> revision. Only those: most replicas run the current one.
   */
  private readonly pinned = new Map<string, number>();
  /** Per service, the containers of earlier revisions that assigned replicas still run, made once each. */
  private readonly revisionContainers = new Map<string, Map<number, ServiceContainer>>();
  /** Per service, the record the index was built from (one per service in the store). */
  private readonly indexed = new Map<string, ServiceRecord>();
  /** Nodes whose target may have changed since the last publish. */
  private readonly dirtyNodes = new Set<string>();
  /**
   * Nodes whose agent applied a generation above what the store holds (a store restored from an
   * older copy): node -> that generation. Their next target goes out above it, or the agent would
   * ignore it as older than its own. An entry lives until that target is written (one per node at most).
   */
  private readonly behind = new Map<string, number>();
  /**
   * Nodes whose target write is in flight: their record in memory holds a generation the disk may
   * yet refuse, so none is handed out until it lands (publish sends it then). One entry per node.
   */
  private readonly writing = new Set<string>();
  /** (node, replica) pairs unassigned during one reassign; flat pairs, released at its end. */
  private readonly unassigned: string[] = [];
  /**
   * Per node, the replicas unassigned by a write still in flight (with how many such writes): the
   * node may still report on them until it lands, since a refused write gives them back and a node
   * reports a running replica again only when it changes. Bounded by what the node was assigned.
   */
  private readonly releasing = new Map<string, Map<string, number>>();

  /**
   * Deleted service -> the nodes whose record asks them to purge its volumes (NodeRecord.volumePurges),
   * so that the delete landing makes exactly those nodes' targets carry the purge. At most
   * MAX_VOLUME_PURGES entries per node.
   */
  private readonly purgeNodes = new Map<string, Set<string>>();

  constructor(
    private readonly store: Store,
    private readonly send: SendTarget,
    private readonly onReleased: OnReleased = () => undefined,
    private readonly valueBytes: ValueBytes = () => undefined,
    /** The protocol version the node's agent speaks while connected; absent or null: this hub's. */
    private readonly protocolOf: (nodeId: string) => number | null = () => null,
  ) {
    // Every change of a service record reaches the index from the store itself, the undo of a
    // refused write included: no writer pairs a write with a call here.
    store.subscribe((change) => {
      if (change.collection === 'services') this.serviceRecordChanged(change);
      else if (change.collection === 'nodes') this.nodePurgesChanged(change.key, change.before?.volumePurges, change.after?.volumePurges);
    });
  }

  /** A node record's purges changed (records are never edited in place: the same array is no change). */
  private nodePurgesChanged(nodeId: string, before: readonly string[] | undefined, after: readonly string[] | undefined): void {
    if (before === after) return;
    for (const name of before ?? []) {
      const nodes = this.purgeNodes.get(name);
      nodes?.delete(nodeId);
      if (nodes?.size === 0) this.purgeNodes.delete(name);
    }
    for (const name of after ?? []) {
      let nodes = this.purgeNodes.get(name);
      if (!nodes) this.purgeNodes.set(name, (nodes = new Set()));
      nodes.add(nodeId);
    }
    this.dirtyNodes.add(nodeId);
  }

  /** The nodes whose record lists a purge of the service's volumes (see NodeRecord.volumePurges). */
  nodesPurging(service: string): ReadonlySet<string> {
    return this.purgeNodes.get(service) ?? NO_NODES;
  }

  /**
   * The services whose volumes the node is to remove: those its record lists that exist no more.
   * A name whose service exists (created again, or a delete still being written) waits.
   */
  private purgesOf(nodeId: string): string[] {
    const listed = this.store.getNode(nodeId)?.volumePurges;
    return listed === undefined ? [] : listed.filter((name) => !this.indexed.has(name));
  }

  private serviceRecordChanged({ key, after, written }: RecordChange<'services', ServiceRecord>): void {
    if (after === undefined && written !== null) {
      // The index lets go of a deleted service's replicas (and their observed states) only once the
      // delete is on disk: a delete that fails must leave the service as it was, its replicas'
      // states included, and no target may drop them meanwhile. Its undo, if it fails, finds the
      // index where it was.
      written.then(
        () => this.resync(key),
        () => undefined,
      );
      return;
    }
    this.serviceChanged(key, after, written ?? undefined);
  }

  /** Whether the replica is part of the node's target. */
  isAssigned(nodeId: string, replicaId: string): boolean {
    return this.byNode.get(nodeId)?.has(replicaId) === true;
  }

  /**
   * The replicas a node may report on: those of its target, and those a write in flight takes from
   * it (a hello meanwhile must not lose their state should the write be refused).
   */
  mayReport(nodeId: string, replicaId: string): boolean {
    return this.isAssigned(nodeId, replicaId) || this.releasing.get(nodeId)?.has(replicaId) === true;
  }

  /** Builds the index from the store at start. */
  load(): void {
    for (const node of this.store.listNodes()) this.nodePurgesChanged(node.id, undefined, node.volumePurges);
    for (const service of this.store.listServices()) this.serviceChanged(service.name, service);
    this.dirtyNodes.clear();
    for (const node of this.store.listNodes()) this.dirtyNodes.add(node.id);
  }

  specHashOf(service: string): string | undefined {
    return this.services.get(service)?.specHash;
  }

  /**
   * Called for every change of a service record (spec or placements), with the record now in the
   * store (undefined: deleted). The index moves from the record it was last built from, whatever
   * happened in between, so it cannot drift from the store. `durable`: the write of the change;
   * the observed states of replicas it releases are dropped only once it lands, since a refused
   * change puts them back and a node reports a running replica again only when it changes.
   */
  serviceChanged(name: string, after: ServiceRecord | undefined, durable?: Promise<unknown>): void {
    const before = this.indexed.get(name);
    if (before === after) return;
    this.reassign(name, before, after);
    if (after) this.indexed.set(name, after);
    else this.indexed.delete(name);
    // A service gone (or back) starts (or stops) the purges nodes hold for its name.
    if (!before !== !after) for (const nodeId of this.purgeNodes.get(name) ?? []) this.dirtyNodes.add(nodeId);
    if (this.unassigned.length === 0) return;
    const released = this.unassigned.splice(0);
    if (!durable) return this.release(released);
    this.holdReleasing(released, 1);
    durable.then(
      () => {
        this.holdReleasing(released, -1);
        this.release(released);
      },
      () => this.holdReleasing(released, -1),
    );
  }

  private holdReleasing(pairs: readonly string[], delta: 1 | -1): void {
    for (let i = 0; i < pairs.length; i += 2) {
      const nodeId = pairs[i]!;
      const replicaId = pairs[i + 1]!;
      let replicas = this.releasing.get(nodeId);
      if (!replicas) this.releasing.set(nodeId, (replicas = new Map()));
      const count = (replicas.get(replicaId) ?? 0) + delta;
      if (count > 0) replicas.set(replicaId, count);
      else replicas.delete(replicaId);
      if (replicas.size === 0) this.releasing.delete(nodeId);
    }
  }

  /**
   * Makes the index match the store's record again, after the store undid a change (a failed
   * write): the undone change, and any planned on top of it meanwhile, go from the targets.
   */
  resync(name: string): void {
    this.serviceChanged(name, this.store.getService(name));
  }

  /** A spec change unassigns and assigns every replica again: only what stayed unassigned is released. */
  private release(pairs: readonly string[]): void {
    for (let i = 0; i < pairs.length; i += 2) {
      const nodeId = pairs[i]!;
      const replicaId = pairs[i + 1]!;
      if (!this.isAssigned(nodeId, replicaId)) this.onReleased(nodeId, replicaId);
    }
  }

  private reassign(name: string, before: ServiceRecord | undefined, after: ServiceRecord | undefined): void {
    const specChanged = !before || !after || before.spec !== after.spec;
    if (after && (specChanged || !this.services.has(name))) {
      this.services.set(name, serviceContainerOf(after.spec));
      // Earlier revisions' containers are made again from the new record's history when needed.
      this.revisionContainers.delete(name);
    } else if (!after) {
      this.services.delete(name);
      this.revisionContainers.delete(name);
    }
    const olds = before?.placements ?? [];
    const news = after?.placements ?? [];
    if (specChanged) {
      // Every replica's container changes: all of its nodes get a new target.
      for (const p of olds) if (placedOn(p)) this.unassign(p.replicaId, p.nodeId as string);
      for (const p of news) if (placedOn(p)) this.assign(p.replicaId, p.nodeId as string, name, p.revision);
      return;
    }
    // Same spec: only replicas that came, went or moved matter. A pass keeps placements in their
    // order (kept ones where they were, new ones appended), so the lists are walked in step and
    // only what differs is looked up: a failover in a 100,000-replica service costs a walk, not two maps.
    const gone = new Map<string, string>();
    const come = new Map<string, Placement>();
    diffPlacements(
      olds,
      news,
      (a, b) => nodeOfPlaced(a) === nodeOfPlaced(b) && a.revision === b.revision,
      (a) => {
        if (placedOn(a)) gone.set(a.replicaId, a.nodeId as string);
      },
      (b) => {
        if (placedOn(b)) come.set(b.replicaId, b);
      },
    );
    for (const [replicaId, nodeId] of gone) {
      const stays = come.get(replicaId);
      if (stays?.nodeId !== nodeId) this.unassign(replicaId, nodeId);
      else if (stays.revision === this.pinned.get(replicaId)) come.delete(replicaId);
    }
    // Assigning again where it was changes only the revision (a rolling update's step).
    for (const [replicaId, p] of come) this.assign(replicaId, p.nodeId as string, name, p.revision);
  }

  private assign(replicaId: string, nodeId: string, service: string, revision: number | undefined): void {
    let replicas = this.byNode.get(nodeId);
    if (!replicas) this.byNode.set(nodeId, (replicas = new Map()));
    replicas.set(replicaId, service);
    if (revision === undefined) this.pinned.delete(replicaId);
    else this.pinned.set(replicaId, revision);
    this.dirtyNodes.add(nodeId);
  }

  /**
   * The container a replica of `service` runs: the current spec's, or that of the earlier revision
   * it is pinned to (the current one should that revision no longer be kept: it cannot be sent).
   */
  private containerOf(service: string, replicaId: string): ServiceContainer | undefined {
    const current = this.services.get(service);
    // Outside updates nothing is pinned: one lookup per replica of every target saved.
    if (this.pinned.size === 0) return current;
    const revision = this.pinned.get(replicaId);
    if (revision === undefined || !current) return current;
    let byRevision = this.revisionContainers.get(service);
    let info = byRevision?.get(revision);
    if (info) return info;
    const record = this.indexed.get(service);
    const spec = record ? specOfRevision(record, revision) : undefined;
    if (!spec) return current;
    info = serviceContainerOf(spec);
    if (!byRevision) this.revisionContainers.set(service, (byRevision = new Map()));
    byRevision.set(revision, info);
    return info;
  }

  /** The spec hash the replica should run: its pinned revision's, or its service's current one. */
  specHashOfReplica(service: string, replicaId: string): string | undefined {
    return this.containerOf(service, replicaId)?.specHash;
  }

  /** The container the replica should run (its pinned revision's, or its service's current one), made once per revision. */
  expectedContainerOf(service: string, replicaId: string): Readonly<Pick<ServiceContainer, 'specHash' | 'container'>> | undefined {
    return this.containerOf(service, replicaId);
  }

  private unassign(replicaId: string, nodeId: string): void {
    const replicas = this.byNode.get(nodeId);
    replicas?.delete(replicaId);
    // An empty map per node would cost memory on every idle node of a large fleet.
    if (replicas?.size === 0) this.byNode.delete(nodeId);
    this.pinned.delete(replicaId);
    this.dirtyNodes.add(nodeId);
    this.unassigned.push(nodeId, replicaId);
  }

  /**
   * The node's whole desired state, in a stable order. Its hash covers the values it names: a
   * replica's spec hash includes each version, and a version's bytes never change.
   */
  targetOf(nodeId: string): { replicas: AssignedReplica[]; hash: string; valueRefs: ValueRef[]; purgeVolumes: string[] } {
    const replicas: AssignedReplica[] = [];
    // Gathered here, where each container is at hand: a fleet that uses no values pays nothing more.
    const valueRefs: ValueRef[] = [];
    for (const [replicaId, service] of this.byNode.get(nodeId) ?? []) {
      const info = this.containerOf(service, replicaId);
      if (!info) continue;
      replicas.push({ replicaId, service, specHash: info.specHash, container: info.container });
      for (const ref of info.valueRefs) valueRefs.push(ref);
    }
    replicas.sort((a, b) => (a.replicaId < b.replicaId ? -1 : a.replicaId > b.replicaId ? 1 : 0));
    // Credentials are outside the spec hash but must still reach the agent when they change.
    // One update of the whole text: the same digest as an update per piece, at a fraction of the cost.
    const purgeVolumes = this.purgesOf(nodeId);
    let text = targetHashText(replicas, (r) => this.containerOf(r.service, r.replicaId)?.authJson ?? '');
    // Only a node with purges hashes more: every other target keeps the hash its record holds.
    if (purgeVolumes.length > 0) text += `\0purge\0${purgeVolumes.join('\0')}`;
    const hash = targetHash(text);
    return { replicas, hash, valueRefs, purgeVolumes };
  }

  /**
   * The configs and secrets the replicas name, with their bytes: only what this node's own
   * replicas use, so a node never receives a secret none of its replicas names. A version the hub
   * no longer holds is left out (the agent then reports why it cannot make the container).
   */
  private valuesOf(valueRefs: readonly ValueRef[]): TargetValue[] {
    if (valueRefs.length === 0) return [];
    const refs = new Map<string, ValueRef>();
    for (const ref of valueRefs) refs.set(`${ref.source}\0${ref.name}\0${ref.version}`, ref);
    const values: TargetValue[] = [];
    for (const ref of [...refs.values()].sort(byRef)) {
      const data = this.valueBytes(ref.source, ref.name, ref.version);
      if (data !== undefined) values.push({ ...ref, data });
    }
    return values;
  }

  /**
   * A target frame of these replicas, with the values they name and the purges the node is to
   * make when there are any. Purges go only to agents that read them (protocol 6): an older one
   * would refuse the whole target, and never made a volume to purge.
   */
  private frameOf(
    nodeId: string,
    generation: number,
    { replicas, valueRefs, purgeVolumes }: { replicas: AssignedReplica[]; valueRefs: readonly ValueRef[]; purgeVolumes: string[] },
  ): TargetFrame {
    const values = this.valuesOf(valueRefs);
    const frame: TargetFrame = { type: 'target', generation, replicas };
    if (values.length > 0) frame.values = values;
    if (purgeVolumes.length > 0 && (this.protocolOf(nodeId) ?? PROTOCOL_VERSION) >= PURGE_PROTOCOL_VERSION) frame.purgeVolumes = purgeVolumes;
    return frame;
  }

  /** The service's encodings of a replica's container, if it is still the service's container. */
  private encodedContainer(r: AssignedReplica): ServiceContainer | undefined {
    const info = this.containerOf(r.service, r.replicaId);
    return info?.container === r.container ? info : undefined;
  }

  /**
   * The frame, with its text made from each service's container text (see frameText): the same
   * bytes as encoding it whole. A replica whose service changed since it was taken (publish waits
   * for writes) is encoded from its own container.
   */
  private encoded(frame: TargetFrame): TargetFrame {
    const text = encodeTargetFrame(frame.generation, frame.replicas, (r) => this.encodedContainer(r)?.containerJson ?? JSON.stringify(r.container), frame.values, frame.purgeVolumes);
    return withText(frame, text);
  }

  /**
   * For every node whose target changed: bumps its generation, makes that durable, then sends.
   * Durable first, so that a hub restarted after a crash never hands out an older generation.
   * A node whose write failed stays dirty (the store undid the bump) and the call rejects, so that
   * the loop retries it; the nodes whose writes landed get their targets all the same.
   */
  async publish(): Promise<number> {
    if (this.dirtyNodes.size === 0) return 0;
    const nodes = [...this.dirtyNodes];
    this.dirtyNodes.clear();
    const changed: Array<{ nodeId: string; frame: TargetFrame; applied: number | undefined }> = [];
    const writes: Array<Promise<void>> = [];
    for (const nodeId of nodes) {
      const node = this.store.getNode(nodeId);
      if (!node) {
        this.behind.delete(nodeId);
        continue;
      }
      const target = this.targetOf(nodeId);
      const { hash } = target;
      const applied = this.behind.get(nodeId);
      if (hash === node.targetHash && applied === undefined) continue;
      // A failed write leaves the record as the disk has it (lazy changes of other fields made
      // meanwhile included), so the retry sees the old hash and bumps again.
      const generation = Math.max(node.generation, applied ?? 0) + 1;
      writes.push(this.store.putNode({ ...node, generation, targetHash: hash }));
      this.writing.add(nodeId);
      changed.push({ nodeId, frame: this.frameOf(nodeId, generation, target), applied });
    }
    const outcomes = await Promise.allSettled(writes);
    let sent = 0;
    let failure: unknown = null;
    for (let i = 0; i < changed.length; i++) {
      const { nodeId, frame, applied } = changed[i]!;
      const outcome = outcomes[i]!;
      this.writing.delete(nodeId);
      if (outcome.status === 'rejected') {
        failure ??= outcome.reason;
        this.dirtyNodes.add(nodeId);
        continue;
      }
      // A hello during the write may have told of a later generation: that one is still to pass.
      if (this.behind.get(nodeId) === applied) this.behind.delete(nodeId);
      // Encoded only now: the texts of a large pass are not all held while its writes land.
      this.send(nodeId, this.encoded(frame));
      sent++;
    }
    if (failure !== null) throw failure;
    return sent;
  }

  /**
   * The current target of one node (sent after its hello), or null when publish() is to send it
   * with a new generation: when the target changed, or when the node applied a generation above
   * the store's (`appliedGeneration`, from its hello), which only a store restored from an older
   * copy shows. The agent ignores a target older than what it applied, so the next one must go
   * out above it; believed up to MAX_BELIEVED_GENERATION. Null too while the
   * node's target write is in flight: should it fail, the generation it carries would go out
   * again later with other content; publish sends it once it lands.
   */
  currentTarget(nodeId: string, appliedGeneration = 0): TargetFrame | null {
    const node = this.store.getNode(nodeId);
    if (!node) return null;
    if (appliedGeneration > node.generation && appliedGeneration <= MAX_BELIEVED_GENERATION) {
      this.behind.set(nodeId, appliedGeneration);
      this.dirtyNodes.add(nodeId);
      return null;
    }
    if (this.writing.has(nodeId)) return null;
    const target = this.targetOf(nodeId);
    // A target that changed but is not yet published is sent by publish(), with its new generation.
    if (target.hash !== node.targetHash) {
      this.dirtyNodes.add(nodeId);
      return null;
    }
    return this.encoded(this.frameOf(nodeId, node.generation, target));
  }
}

function serviceContainerOf(spec: ContainerSpec): ServiceContainer {
  const container = containerSpecOf(spec);
  return {
    container,
    specHash: containerSpecHash(container),
    valueRefs: valueRefsOf(container),
    containerJson: JSON.stringify(container),
    authJson: container.registryAuth ? JSON.stringify(container.registryAuth) : '',
  };
}

function byRef(a: ValueRef, b: ValueRef): number {
  if (a.source !== b.source) return a.source < b.source ? -1 : 1;
  if (a.name !== b.name) return a.name < b.name ? -1 : 1;
  return a.version - b.version;
}
