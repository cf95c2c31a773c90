import type { Clock } from '../shared/clock.js';
import { AGENT_RECONNECT_CAP_MS, CloseCode, type HelloFrame, type NodeConditions, type ReplicaReport } from '../shared/protocol.js';
import { AgentGateway } from './agents/gateway.js';
import { Dispatcher } from './dispatcher.js';
import { FailureDetector, type NodeState } from './failure-detector.js';
import { DEFAULT_DISRUPTION_SHARE } from './fleet-disruption.js';
import { diskWarning, NodeConditionsTable, type ConditionTransition } from './node-conditions.js';
import { ObservedState } from './observed-state.js';
import { NodeDirectory } from './node-directory.js';
import { NodeLogBudget } from './node-log-budget.js';
import { RateLimitedLog } from './rate-limited-log.js';
import { HubReconcileLoop } from './reconcile-loop.js';
import type { SchedNode } from './scheduler/types.js';
import type { NodeRecord, ServiceRecord, Store } from './store/store.js';
import { Services } from './services.js';
import { nodeView } from './views.js';
import type { Logger } from '../shared/logger.js';

export interface HubConfig {
  heartbeatIntervalMs: number;
  /** Silence after which a connected node is unreachable. */
  heartbeatGraceMs: number;
  /** Time away after which a node is lost and its replicas move (services may set their own). */
  lostAfterMs: number;
  /** After a hub start, time nodes get to reconnect before their absence starts to count. */
  startupGraceMs: number;
  /** Agent handshakes (upgrade to hello) in progress at once; more are told to come back later. */
  maxPendingHandshakes: number;
  /** Of those, at most this many from one remote address (IPv6: one /64); null: three quarters of the pool. */
  maxPendingHandshakesPerAddress: number | null;
  resyncIntervalMs: number;
  /** More than this share of the nodes away at once holds lost declarations (see fleet-disruption.ts). */
  disruptionShare: number;
}

export const DEFAULT_HUB_CONFIG: HubConfig = {
  heartbeatIntervalMs: 5_000,
  heartbeatGraceMs: 15_000,
  lostAfterMs: 60_000,
  // By the agents' reconnect backoff cap, every live agent has tried again.
  startupGraceMs: AGENT_RECONNECT_CAP_MS,
  maxPendingHandshakes: 256,
  maxPendingHandshakesPerAddress: null,
  resyncIntervalMs: 30_000,
  disruptionShare: DEFAULT_DISRUPTION_SHARE,
};

/** How long the end of a hand-over may wait for others before the pass that records it. */
const HANDOVER_PASS_WITHIN_MS = 1000;

/** At most one log line per this interval about refused replica reports. */
const REFUSAL_LOG_INTERVAL_MS = 10_000;

/** At most one log line per this interval about the hub's own stalls. */
const STALL_LOG_INTERVAL_MS = 10_000;

/**
 * Lines about one node's changes (state, conditions) per minute at most: enough for a few real
 * changes with their reasons, however fast a device flaps or reconnects.
 */
const NODE_LOG_LINES_PER_MINUTE = 20;

/**
 * The hub's core, without HTTP: durable state (store), soft state (liveness, observed replicas),
 * the reconcile loop and the agent gateway. HTTP routes call its methods.
 */
export class Hub {
  readonly observed = new ObservedState();
  /** What each node last said of its engine, target cache and disks (soft state). */
  readonly conditions = new NodeConditionsTable();
  readonly detector: FailureDetector;
  /** Joining, and nodes' names and labels. */
  readonly nodes: NodeDirectory;
  readonly dispatcher: Dispatcher;
  readonly loop: HubReconcileLoop;
  readonly gateway: AgentGateway;
  /** Service commands and views. */
  readonly services: Services;
  private sweepTimer: NodeJS.Timeout | null = null;
  /** Lines about nodes' changes, per node (see NODE_LOG_LINES_PER_MINUTE). */
  private readonly nodeLog = new NodeLogBudget({ linesPerWindow: NODE_LOG_LINES_PER_MINUTE, windowMs: 60_000 });

  constructor(
    readonly store: Store,
    readonly config: HubConfig,
    private readonly clock: Clock,
    private readonly logger: Logger,
  ) {
    this.nodes = new NodeDirectory(store, logger, () => this.loop.markDirty());
    const stallLog = new RateLimitedLog((obj, msg) => logger.warn(obj, msg), { intervalMs: STALL_LOG_INTERVAL_MS });
    this.refusalLog = new RateLimitedLog((obj, msg) => logger.warn(obj, msg), { intervalMs: REFUSAL_LOG_INTERVAL_MS });
    this.detector = new FailureDetector({
      clock,
      heartbeatGraceMs: config.heartbeatGraceMs,
      lostAfterMs: config.lostAfterMs,
      startupGraceMs: config.startupGraceMs,
      disruptionShare: config.disruptionShare,
      onStateChange: (nodeId, state, previous) => {
        this.logStateChange(nodeId, state, previous);
        this.rememberLost(nodeId, state);
        if (state === 'lost') this.loop.markDirty();
        else this.loop.nodesChanged();
      },
      onDisruptionChange: (d) => {
        if (d) logger.warn({ awayNodes: d.awayNodes, countedNodes: d.countedNodes }, 'most of the fleet is away at once: no node is declared lost until it is back (fleet disruption)');
        else logger.info({}, 'fleet disruption over: nodes still away count from now');
      },
      // A hub slow all the time notices a small stall every sweep or so: a line now and then is enough.
      onStall: (stallMs) => stallLog.log({ stallMs }, 'the hub did not run for a while (paused or blocked); that time is not held against any node'),
    });
    this.dispatcher = new Dispatcher(
      store,
      (nodeId, frame) => this.gateway.send(nodeId, frame),
      (nodeId, replicaId) => this.observed.forget(nodeId, replicaId),
    );
    this.loop = new HubReconcileLoop({
      store,
      dispatcher: this.dispatcher,
      schedNodes: () => this.schedNodes(),
      defaultLostAfterMs: config.lostAfterMs,
      isRunning: (replicaId) => this.isRunning(replicaId),
      afterPass: (services) => this.trackHandovers(services),
      logger,
      resyncIntervalMs: config.resyncIntervalMs,
    });
    this.gateway = new AgentGateway({
      store,
      clock,
      detector: this.detector,
      logger,
      heartbeatIntervalMs: config.heartbeatIntervalMs,
      maxPendingHandshakes: config.maxPendingHandshakes,
      ...(config.maxPendingHandshakesPerAddress === null ? {} : { maxPendingHandshakesPerAddress: config.maxPendingHandshakesPerAddress }),
      handlers: {
        onConditions: (nodeId, conditions) => this.onConditions(nodeId, conditions),
        onHello: (nodeId, hello) => this.onHello(nodeId, hello),
        onStatus: (nodeId, reports) => this.onStatus(nodeId, reports),
        onDisconnect: () => undefined,
      },
    });
    this.services = new Services({
      store,
      dispatcher: this.dispatcher,
      observed: this.observed,
      detector: this.detector,
      clock,
      logger,
      markDirty: () => this.loop.markDirty(),
      deleted: (name) => this.handoverReplacements.delete(name),
    });
  }

  start(): void {
    const wallNowMs = Date.now();
    for (const node of this.store.listNodes()) {
      if (node.lostSince) this.detector.restoreLost(node.id, wallNowMs - Date.parse(node.lostSince) + this.config.lostAfterMs);
    }
    this.dispatcher.load();
    this.loop.start();
    // Judging liveness on a timer is O(nodes) per sweep (about a millisecond for 10,000 nodes),
    // never work per message. Every 250 ms (or a quarter of a short grace) keeps the delay in
    // noticing a silent or lost node small next to the grace and to the failover target.
    // The detector's stall detection knows this pace: one value for both.
    this.sweepTimer = setInterval(() => this.sweep(), this.detector.sweepIntervalMs);
    this.sweepTimer.unref();
  }

  async close(): Promise<void> {
    if (this.sweepTimer) clearInterval(this.sweepTimer);
    await this.gateway.close();
    await this.loop.stop();
    await this.store.close();
  }

  // ---- nodes -------------------------------------------------------------------------------

  /**
   * Lost-ness outlives a hub restart (see FailureDetector.restoreLost). Written lazily: it changes
   * once per node failure, and a hub killed before the write only treats the node as away again.
   */
  private rememberLost(nodeId: string, state: NodeState): void {
    const node = this.store.getNode(nodeId);
    if (!node) return;
    const lostSince = state === 'lost' ? (node.lostSince ?? new Date().toISOString()) : state === 'ready' ? null : (node.lostSince ?? null);
    if (lostSince === (node.lostSince ?? null)) return;
    void this.store.putNode({ ...node, lostSince }, { lazy: true }).catch((err: unknown) => this.logger.error({ err, nodeId }, 'could not store that the node is lost'));
  }

  /**
   * A line about a change of the node, out of its budget; `suppressed` counts its lines dropped
   * before this one.
   */
  private logNode(level: 'info' | 'warn', nodeId: string, obj: object, msg: string): void {
    const suppressed = this.nodeLog.take(nodeId);
    if (suppressed === null) return;
    this.logger[level]({ nodeId, ...obj, ...(suppressed > 0 ? { suppressed } : {}) }, msg);
  }

  /** One line per change of a node's state; an engine outage's lines say so, and say why. */
  private logStateChange(nodeId: string, state: NodeState, previous: NodeState | null): void {
    if (state === 'not_ready') {
      const error = this.conditions.get(nodeId)?.conditions.engine.error ?? null;
      this.logNode('warn', nodeId, { error, previous }, 'node not ready: its container engine is unavailable; no new replicas go there, and its replicas move if that lasts lostAfter');
    } else if (state === 'ready' && previous === 'not_ready') {
      this.logNode('info', nodeId, {}, 'node ready: its container engine is available again');
    } else if (state === 'ready') {
      this.logNode('info', nodeId, {}, 'node ready');
    } else if (state === 'lost') {
      // Outside the budget: it comes at most once per lostAfter, and matters most.
      this.logger.warn({ nodeId }, 'node lost');
    } else {
      this.logNode('warn', nodeId, {}, `node ${state}`);
    }
  }

  /**
   * A node's conditions, replaced whole. The engine's changes are logged as state changes (the
   * detector hears of them next); the others here, one line per change, never per frame.
   */
  private onConditions(nodeId: string, conditions: NodeConditions | null): void {
    for (const t of this.conditions.report(nodeId, conditions, this.clock.nowMs())) this.logConditionChange(nodeId, t, conditions);
  }

  private logConditionChange(nodeId: string, t: ConditionTransition, c: NodeConditions | null): void {
    switch (t.condition) {
      case 'engine_unavailable':
        return;
      case 'target_cache_stale':
        if (t.active) this.logNode('warn', nodeId, { error: c?.targetCache.error ?? null }, 'node could not cache its target: after a reboot without the hub it would run an older one');
        else this.logNode('info', nodeId, {}, 'node cached its target again');
        return;
      case 'data_disk_low':
      case 'engine_disk_low': {
        const label = t.condition === 'data_disk_low' ? 'data disk' : 'engine disk';
        const disk = t.condition === 'data_disk_low' ? c?.dataDisk : c?.engineDisk;
        if (t.active && disk) this.logNode('warn', nodeId, { path: disk.path, freeBytes: disk.freeBytes, totalBytes: disk.totalBytes }, `node ${diskWarning(label, disk)}`);
        else this.logNode('info', nodeId, {}, `node ${label} no longer low`);
        return;
      }
    }
  }

  /** Drops silent connections, and runs the scheduler when a node crosses a lost threshold. */
  sweep(): void {
    const thresholds = new Set([this.config.lostAfterMs]);
    for (const s of this.store.listServices()) if (s.spec.lostAfterMs !== null) thresholds.add(s.spec.lostAfterMs);
    const nodeIds = (function* (nodes: Iterable<NodeRecord>) {
      for (const n of nodes) yield n.id;
    })(this.store.listNodes());
    const { silent, crossedThreshold } = this.detector.sweep(nodeIds, [...thresholds]);
    for (const nodeId of silent) {
      this.logger.warn({ nodeId, graceMs: this.config.heartbeatGraceMs }, 'node silent past its grace period; dropping its connection');
      this.gateway.disconnect(nodeId, CloseCode.heartbeatTimeout, 'no heartbeat within the grace period');
    }
    if (crossedThreshold) this.loop.markDirty();
  }

  private schedNodes(): SchedNode[] {
    const now = this.clock.nowMs();
    const out: SchedNode[] = [];
    for (const node of this.store.listNodes()) {
      // Away or its engine unavailable: either way the node takes no new work, and its replicas
      // move once that lasts lostAfter (the same path for both).
      const downForMs = this.detector.unusableForMs(node.id, now);
      out.push({
        id: node.id,
        name: node.name,
        labels: node.labels,
        facts: node.facts,
        schedulable: downForMs === null && node.facts !== null,
        downForMs,
      });
    }
    return out;
  }

  /** Whether the replica's agent reports it running its service's current spec. */
  private isRunning(replicaId: string): boolean {
    const seen = this.observed.get(replicaId);
    return (
      seen !== undefined &&
      seen.report.state === 'running' &&
      seen.report.specHash === this.dispatcher.specHashOf(seen.report.service) &&
      this.detector.state(seen.nodeId) === 'ready'
    );
  }

  /**
   * Per service, the replacements whose predecessors wait for them: their first `running` report
   * ends a hand-over. Updated from the services a pass changed, so a pass costs nothing here for
   * the services it left alone.
   */
  private readonly handoverReplacements = new Map<string, Set<string>>();

  private trackHandovers(changed: readonly ServiceRecord[]): void {
    for (const s of changed) {
      const waiting = new Set<string>();
      for (const p of s.placements) if (p.replacedBy) waiting.add(p.replacedBy);
      if (waiting.size > 0) this.handoverReplacements.set(s.name, waiting);
      else this.handoverReplacements.delete(s.name);
    }
  }

  nodeView(node: NodeRecord) {
    return nodeView(node, this.detector, this.gateway.applied(node.id), this.conditions.get(node.id), this.clock.nowMs());
  }

  /** Reports about replicas that were not the reporting node's to report on (see acceptedReports). */
  refusedReports = 0;
  /** Of those, the ones sent while the node had not yet applied its newest target (likely just stale). */
  refusedReportsBeforeAck = 0;
  private readonly refusalLog: RateLimitedLog;

  /**
   * The reports a node may make: about the replicas assigned to it, nothing else. A report about
   * another node's replica (forged, or from a device that missed a move) would mislead the hub
   * about that node, and reports about unknown replicas would grow its memory without bound.
   * 'removed' of an unassigned replica is the normal end of a move and counts as nothing. Refusals
   * from a node that has not yet applied its newest target are routine (it reports on what it ran
   * before the move reached it, or while part of its target still pulls) and are counted apart, so
   * that the rest can be alerted on.
   */
  private acceptedReports(nodeId: string, reports: readonly ReplicaReport[]): ReplicaReport[] {
    let refused = 0;
    const accepted = reports.filter((r) => {
      if (this.dispatcher.isAssigned(nodeId, r.replicaId)) return true;
      if (r.state !== 'removed') refused++;
      return false;
    });
    if (refused === 0) return accepted;
    this.refusedReports += refused;
    // A partial ack (replicas still pulling) has not applied the whole target either.
    const applied = this.gateway.applied(nodeId);
    const upToDate = applied !== null && applied.generation === this.store.getNode(nodeId)?.generation && !applied.pending;
    if (!upToDate) {
      this.refusedReportsBeforeAck += refused;
      return accepted;
    }
    this.refusalLog.log({ nodeId, refused, refusedTotal: this.refusedReports }, 'refused reports about replicas not assigned to the reporting node');
    return accepted;
  }

  private onHello(nodeId: string, hello: HelloFrame): void {
    const node = this.store.getNode(nodeId);
    if (!node) {
      this.conditions.forget(nodeId);
      this.nodeLog.forget(nodeId);
      return this.gateway.disconnect(nodeId, CloseCode.nodeRemoved, 'node no longer exists');
    }
    this.observed.replaceNode(nodeId, this.acceptedReports(nodeId, hello.replicas), this.clock.nowMs());
    this.nodes.hello(node, hello);
    // A node ahead of the store (one restored from an older copy): the next pass sends above it.
    const target = this.dispatcher.currentTarget(nodeId, hello.appliedGeneration);
    if (target) this.gateway.send(nodeId, target);
    // Its target changed and is not yet published: the next pass sends it with a new generation.
    else this.loop.markDirty();
  }

  private onStatus(nodeId: string, sent: ReplicaReport[]): void {
    const reports = this.acceptedReports(nodeId, sent);
    this.observed.apply(nodeId, reports, this.clock.nowMs());
    if (this.handoverReplacements.size === 0) return;
    for (const r of reports) {
      if (r.state === 'running' && this.handoverReplacements.get(r.service)?.has(r.replicaId)) {
        // Ending a hand-over only drops the replica a lost node no longer runs: not urgent, and
        // during a failover thousands end within seconds, so they share a pass.
        this.loop.markDirty(HANDOVER_PASS_WITHIN_MS);
        return;
      }
    }
  }
}
