/**
 * The nodes: joining and their names and labels (through the node directory), their hellos,
 * status and conditions frames, which of their reports the hub accepts, and the views of them for
 * the routes and for placement.
 */
import type { Clock } from '../shared/clock.js';
import type { Logger } from '../shared/logger.js';
import { CloseCode, type HelloFrame, type NodeConditions, type ReplicaReport } from '../shared/protocol.js';
import type { AgentGateway } from './agents/gateway.js';
import { CredentialRotations, type RotationOutcome } from './credential-rotation.js';
import type { Dispatcher } from './dispatcher.js';
import type { FailureDetector, NodeState } from './failure-detector.js';
import type { Handovers } from './handovers.js';
import { JoinTokens, type IssuedJoinToken } from './join-tokens.js';
import type { NodeStats } from './hub-stats.js';
import type { NodeChangeLog } from './node-change-log.js';
import { diskWarning, type ConditionName, type ConditionTransition, type NodeConditionsTable } from './node-conditions.js';
import { NodeDirectory, type NodeChange } from './node-directory.js';
import { NodeScheduling, schedulingOf, type NodeSchedulingState } from './node-scheduling.js';
import type { ObservedState } from './observed-state.js';
import { RateLimitedLog } from './rate-limited-log.js';
import { serviceOfReplicaId } from './replica-id.js';
import { minProtocolVersionOf } from './scheduler/feasibility.js';
import { isSticky } from './scheduler/service-plan.js';
import type { SchedNode } from './scheduler/types.js';
import type { NodeRecord, Store } from './store/store.js';
import { nodeView } from './views.js';
import { nodeRevisionOf } from './node-revision.js';
import { checkRevision, type RevisionCondition } from './revision-match.js';
import { nodeMatches, type Selector } from './selector.js';
import { SortedKeys, type KeyPage } from './sorted-keys.js';

/** At most one log line per this interval about refused replica reports. */
const REFUSAL_LOG_INTERVAL_MS = 10_000;

export interface NodesDeps {
  store: Store;
  clock: Clock;
  logger: Logger;
  observed: ObservedState;
  conditions: NodeConditionsTable;
  detector: FailureDetector;
  gateway: Pick<AgentGateway, 'send' | 'disconnect' | 'applied' | 'protocolVersion' | 'nodeRemoved' | 'holdUpgrades'>;
  dispatcher: Pick<Dispatcher, 'mayReport' | 'currentTarget' | 'targetOf'>;
  handovers: Pick<Handovers, 'reported'>;
  nodeLog: NodeChangeLog;
  /** A node's target or placement inputs changed: the next pass publishes or places. */
  markDirty: () => void;
}

/** What became of one replica of a removed node. */
export interface RemovedReplica {
  service: string;
  replicaId: string;
  /**
   * `placed_anew`: the scheduler places it on another node per its service's rules (a sticky one
   * starts there without the data of its volumes, which stays on the removed device); `gone`: a
   * global service's replica, which runs one per node.
   */
  outcome: 'placed_anew' | 'gone';
  /** A sticky replica (named volumes): its volumes' data stays on the removed device. */
  volumeDataLeftBehind: boolean;
}

export class Nodes implements NodeStats {
  /** Made, listed and revoked by the operator; each join uses one (see join-tokens.ts). */
  readonly joinTokens: JoinTokens;
  /** Joining, and nodes' names and labels. */
  private readonly directory: NodeDirectory;
  /** Cordon, drain, uncordon. */
  private readonly scheduling: NodeScheduling;
  /** Reports about replicas that were not the reporting node's to report on (see acceptedReports). */
  refusedReports = 0;
  /** Of those, the ones sent while the node had not yet applied its newest target (likely just stale). */
  refusedReportsBeforeAck = 0;
  private readonly refusalLog: RateLimitedLog;
  /** What the scheduler saw of each usable node at the last pass, by its record (see forPlacement). */
  private readonly usableViews = new WeakMap<NodeRecord, SchedNode>();
  /** Fresh credentials over nodes' connections. */
  private readonly rotations: CredentialRotations;
  /** Node ids in order, for pages of the list. */
  private readonly order: SortedKeys;

  constructor(private readonly deps: NodesDeps) {
    this.joinTokens = new JoinTokens({ store: deps.store, logger: deps.logger });
    this.directory = new NodeDirectory(deps.store, deps.logger, () => deps.markDirty(), this.joinTokens);
    this.scheduling = new NodeScheduling(deps.store, deps.logger, () => deps.markDirty());
    this.rotations = new CredentialRotations({ store: deps.store, logger: deps.logger, gateway: deps.gateway });
    this.refusalLog = new RateLimitedLog((obj, msg) => deps.logger.warn(obj, msg), { intervalMs: REFUSAL_LOG_INTERVAL_MS });
    this.order = SortedKeys.following(deps.store, 'nodes', function* () {
      for (const node of deps.store.listNodes()) yield node.id;
    }).keys;
  }

  // ---- joining, names and labels -----------------------------------------------------------

  /** A join token; nodes that join with it get `labels` (over any label of the same key the device asks for). */
  createJoinToken(ttlSeconds: number, labels: Record<string, string> = {}): Promise<IssuedJoinToken> {
    return this.joinTokens.create({ ttlMs: ttlSeconds * 1000, labels });
  }

  /** Throws JoinTokenRefusedError or NodeNameTakenError (see NodeDirectory.join). */
  join(joinToken: string, name: string, labels: Record<string, string>): Promise<{ nodeId: string; credential: string }> {
    return this.directory.join(joinToken, name, labels);
  }

  /** `ifRevision`: refused (RevisionMismatchError) unless the node is at it; checked as the change reads the node. */
  update(id: string, change: NodeChange, ifRevision?: RevisionCondition): Promise<NodeRecord | undefined> {
    this.checkRevision(id, ifRevision);
    return this.directory.update(id, change);
  }

  /** Cordons, drains or reactivates the node (see node-scheduling.ts); undefined for an unknown node. */
  setScheduling(id: string, state: NodeSchedulingState, ifRevision?: RevisionCondition): Promise<NodeRecord | undefined> {
    this.checkRevision(id, ifRevision);
    return this.scheduling.set(id, state);
  }

  /**
   * Throws when the node is not at the revision asked for. The change that follows reads the
   * record in the same turn (nothing is awaited between), so no other write lands in between.
   */
  private checkRevision(id: string, ifRevision: RevisionCondition | undefined): void {
    if (ifRevision === undefined) return;
    const node = this.deps.store.getNode(id);
    // An unknown node is the change's own 404.
    if (node) checkRevision(ifRevision, nodeRevisionOf(node), `node ${id}`);
  }

  /**
   * Removes the node for good: its record (and with it its credential's digest) goes first, durably,
   * and only then is its connection closed (nodeRemoved) and the next pass told: a hub that dies
   * in between has removed the node all the same. Its replicas are placed anew by their services'
   * rules, as for a node that is gone. Undefined for an unknown node.
   */
  async remove(id: string): Promise<{ node: { id: string; name: string }; replicas: RemovedReplica[] } | undefined> {
    const { store, dispatcher, gateway, observed, conditions, nodeLog, logger, clock } = this.deps;
    const node = store.getNode(id);
    if (!node) return undefined;
    const replicas: RemovedReplica[] = dispatcher.targetOf(id).replicas.map(({ service, replicaId }) => {
      const spec = store.getService(service)?.spec;
      return { service, replicaId, outcome: spec?.mode === 'global' ? 'gone' : 'placed_anew', volumeDataLeftBehind: spec !== undefined && isSticky(spec) };
    });
    await store.deleteNode(id);
    gateway.nodeRemoved(id, 'node removed by the operator: join again with a new join token');
    this.rotations.forget(id);
    // What the node said of its replicas and of itself no longer holds.
    observed.replaceNode(id, [], clock.nowMs());
    conditions.forget(id);
    nodeLog.forget(id);
    this.deps.detector.forget(id);
    logger.warn({ nodeId: id, name: node.name, replicas: replicas.length }, 'node removed by the operator; its credential is refused from now on and its replicas are placed anew');
    this.deps.markDirty();
    return { node: { id, name: node.name }, replicas };
  }

  /** Stops what runs on timers of its own (the hub is closing). */
  close(): void {
    this.directory.close();
  }

  /** A fresh credential for the node, over its connection (see credential-rotation.ts). */
  rotateCredential(id: string): Promise<RotationOutcome> {
    return this.rotations.rotate(id);
  }

  /** The node's agent stored the credential of `rotation`. */
  credentialSaved(nodeId: string, rotation: string): void {
    this.rotations.saved(nodeId, rotation);
  }

  // ---- views -------------------------------------------------------------------------------

  get(id: string): NodeRecord | undefined {
    return this.deps.store.getNode(id);
  }

  list(): Iterable<NodeRecord> {
    return this.deps.store.listNodes();
  }

  /** One page of node views by id, after `after`, of the nodes that match (see SortedKeys.page). */
  page(q: { after: string | null; limit: number; selector: Selector; states: ReadonlySet<NodeState> | null }): KeyPage<ReturnType<Nodes['view']>> {
    const nowMs = this.deps.clock.nowMs();
    return this.order.page(q.after, q.limit, (id) => {
      const node = this.deps.store.getNode(id);
      if (!node || !nodeMatches(node, q.selector)) return undefined;
      if (q.states && !q.states.has(this.deps.detector.state(id, nowMs))) return undefined;
      return this.view(node);
    });
  }

  view(node: NodeRecord) {
    const { detector, gateway, conditions, clock, dispatcher } = this.deps;
    const scheduling = schedulingOf(node);
    return {
      ...nodeView(node, detector, gateway.applied(node.id), conditions.get(node.id), clock.nowMs()),
      /** Send it back in If-Match to change the node only if no one else changed it meanwhile. */
      revision: nodeRevisionOf(node),
      /** The operator's hold: `cordoned` takes no new replicas, `draining` also moves them all off. */
      scheduling,
      /**
       * While draining: the replicas still in the node's target (those not yet moved, and those
       * waiting for their replacements to serve); 0 once the drain is done. Null otherwise.
       */
      drain: scheduling === 'draining' ? { replicasLeft: dispatcher.targetOf(node.id).replicas.length } : null,
    };
  }

  /** The nodes as placement sees them. */
  forPlacement(): SchedNode[] {
    const now = this.deps.clock.nowMs();
    const out: SchedNode[] = [];
    for (const node of this.deps.store.listNodes()) {
      // Away or its engine unavailable: either way the node takes no new work, and its replicas
      // move once that lasts lostAfter (the same path for both).
      const downForMs = this.deps.detector.unusableForMs(node.id, now);
      // Known while the node is connected; a node not seen since the hub started, or away, is
      // unknown (and not schedulable): its hello says it before anything new goes there.
      const protocolVersion = this.deps.gateway.protocolVersion(node.id);
      // A usable node whose record is unchanged is the same object as at the last pass: most of a
      // fleet, every pass, and the scheduler's settled-usage cache then sees at once that it is
      // unchanged. Records are never edited in place, so the record's identity stands for its
      // fields; the agent's protocol is not in the record (a reconnect may change it), so it is compared.
      const kept = downForMs === null ? this.usableViews.get(node) : undefined;
      if (kept && kept.protocolVersion === protocolVersion) {
        out.push(kept);
        continue;
      }
      const view: SchedNode = {
        id: node.id,
        name: node.name,
        labels: node.labels,
        facts: node.facts,
        // A cordoned or draining node takes no new replicas (and a draining one loses its own).
        schedulable: downForMs === null && node.facts !== null && node.scheduling === undefined,
        ...(node.scheduling ? { scheduling: node.scheduling } : {}),
        downForMs,
        protocolVersion,
      };
      if (downForMs === null) this.usableViews.set(node, view);
      out.push(view);
    }
    return out;
  }

  conditionCounts(): Record<ConditionName, number> {
    const nodeIds = (function* (nodes: Iterable<NodeRecord>) {
      for (const node of nodes) yield node.id;
    })(this.deps.store.listNodes());
    return this.deps.conditions.counts(nodeIds);
  }

  get observedReplicas(): number {
    return this.deps.observed.size;
  }

  // ---- agents' frames ----------------------------------------------------------------------

  hello(nodeId: string, hello: HelloFrame): void {
    const { store, conditions, nodeLog, gateway, observed, dispatcher, clock } = this.deps;
    const node = store.getNode(nodeId);
    if (!node) {
      // Removed while this connection waited for its hello: the hello made its liveness anew.
      gateway.disconnect(nodeId, CloseCode.nodeRemoved, 'node no longer exists');
      conditions.forget(nodeId);
      nodeLog.forget(nodeId);
      this.deps.detector.forget(nodeId);
      return;
    }
    observed.replaceNode(nodeId, this.acceptedReports(nodeId, hello.replicas), clock.nowMs());
    this.directory.hello(node, hello);
    // A node ahead of the store (one restored from an older copy): the next pass sends above it.
    const target = dispatcher.currentTarget(nodeId, hello.appliedGeneration);
    // Its target changed and is not yet published: the next pass sends it with a new generation.
    if (!target) return this.deps.markDirty();
    // An agent that came back older than its target (a health check or a restart policy it cannot
    // read) would refuse it whole: the next pass moves those replicas off it and publishes what it can run.
    if (target.replicas.some((r) => hello.protocolVersion < minProtocolVersionOf(r.container))) {
      return this.deps.markDirty();
    }
    gateway.send(nodeId, target);
  }

  status(nodeId: string, sent: ReplicaReport[]): void {
    const reports = this.acceptedReports(nodeId, sent);
    this.deps.observed.apply(nodeId, reports, this.deps.clock.nowMs());
    this.deps.handovers.reported(reports);
  }

  /**
   * A node's conditions, replaced whole. The engine's changes are logged as state changes (the
   * detector hears of them next); the others here, one line per change, never per frame.
   */
  conditionsReported(nodeId: string, conditions: NodeConditions | null): void {
    for (const t of this.deps.conditions.report(nodeId, conditions, this.deps.clock.nowMs())) this.logConditionChange(nodeId, t, conditions);
  }

  private logConditionChange(nodeId: string, t: ConditionTransition, c: NodeConditions | null): void {
    const { nodeLog } = this.deps;
    switch (t.condition) {
      case 'engine_unavailable':
        return;
      case 'target_cache_stale':
        if (t.active) nodeLog.line('warn', nodeId, { error: c?.targetCache.error ?? null }, 'node could not cache its target: after a reboot without the hub it would run an older one');
        else nodeLog.line('info', nodeId, {}, 'node cached its target again');
        return;
      case 'data_disk_low':
      case 'engine_disk_low': {
        const label = t.condition === 'data_disk_low' ? 'data disk' : 'engine disk';
        const disk = t.condition === 'data_disk_low' ? c?.dataDisk : c?.engineDisk;
        if (t.active && disk) nodeLog.line('warn', nodeId, { path: disk.path, freeBytes: disk.freeBytes, totalBytes: disk.totalBytes }, `node ${diskWarning(label, disk)}`);
        else nodeLog.line('info', nodeId, {}, `node ${label} no longer low`);
        return;
      }
    }
  }

  /**
   * The reports a node may make: about the replicas assigned to it, each under its own service,
   * nothing else. A report about another node's replica (forged, or from a device that missed a
   * move) would mislead the hub about that node, one under another service would have its replica
   * judged against that service's spec, and reports about unknown replicas would grow its memory
   * without bound.
   * 'removed' of an unassigned replica is the normal end of a move and counts as nothing. Refusals
   * from a node that has not yet applied its newest target are routine (it reports on what it ran
   * before the move reached it, or while part of its target still pulls) and are counted apart, so
   * that the rest can be alerted on.
   */
  private acceptedReports(nodeId: string, reports: readonly ReplicaReport[]): ReplicaReport[] {
    let refused = 0;
    const accepted = reports.filter((r) => {
      if (this.deps.dispatcher.mayReport(nodeId, r.replicaId) && serviceOfReplicaId(r.replicaId) === r.service) return true;
      if (r.state !== 'removed') refused++;
      return false;
    });
    if (refused === 0) return accepted;
    this.refusedReports += refused;
    // A partial ack (replicas still pulling) has not applied the whole target either.
    const applied = this.deps.gateway.applied(nodeId);
    const upToDate = applied !== null && applied.generation === this.deps.store.getNode(nodeId)?.generation && !applied.pending;
    if (!upToDate) {
      this.refusedReportsBeforeAck += refused;
      return accepted;
    }
    this.refusalLog.log({ nodeId, refused, refusedTotal: this.refusedReports }, 'refused reports about replicas not assigned to the reporting node');
    return accepted;
  }
}
