import type { Clock } from '../shared/clock.js';
import type { Logger } from '../shared/logger.js';
import { AGENT_RECONNECT_CAP_MS } from '../shared/protocol.js';
import { AgentGateway } from './agents/gateway.js';
import { AuthFailures, DEFAULT_AUTH_FAILURE_LIMITS, type AuthFailureLimits } from './auth/auth-failures.js';
import { Dispatcher } from './dispatcher.js';
import { wireEventSources } from './events/event-sources.js';
import { DEFAULT_EVENT_STREAM_LIMITS, EventStreams, type EventStreamLimits } from './events/event-streams.js';
import { FleetEvents } from './events/fleet-events.js';
import { LogRelay } from './logs/log-relay.js';
import type { FailureDetector } from './failure-detector.js';
import { DEFAULT_DISRUPTION_SHARE } from './fleet-disruption.js';
import { Handovers } from './handovers.js';
import type { HubStats } from './hub-stats.js';
import { Liveness } from './liveness.js';
import { NodeChangeLog } from './node-change-log.js';
import { NodeSlots } from './node-slots.js';
import { NodeConditionsTable } from './node-conditions.js';
import { Nodes } from './nodes.js';
import { ObservedState } from './observed-state.js';
import { HubReconcileLoop } from './reconcile-loop.js';
import { Rollouts } from './rollouts.js';
import type { ValueSealer } from './secrets/master-keyring.js';
import { NamedValues } from './secrets/named-values.js';
import { HubValues, serviceValueLimit, valueUsers } from './secrets/value-catalog.js';
import { pinnedToCurrent } from './spec/mounts.js';
import { ValueRollouts } from './value-rollouts.js';
import { Services } from './services.js';
import type { Store } from './store/store.js';

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
  /** Host paths (absolute, normalized) under which a spec's `binds` may mount; empty: none may. */
  allowedHostPaths: readonly string[];
  /**
   * Failed authentications per address (API tokens, join tokens, node credentials alike): past the
   * allowance slowed down, then refused for a while (see auth/auth-failures.ts). Loopback is not
   * exempt; tests that fail on purpose many times raise the allowance.
   */
  authFailures: AuthFailureLimits;
  /** GET /v1/events' Server-Sent Events clients: how many, how far behind, keep-alives (see events/event-streams.ts). */
  eventStreams: EventStreamLimits;
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
  allowedHostPaths: [],
  authFailures: DEFAULT_AUTH_FAILURE_LIMITS,
  eventStreams: DEFAULT_EVENT_STREAM_LIMITS,
};

/**
 * The hub's composition root, without HTTP: it builds the parts, wires them to each other, starts
 * and closes them. Each duty lives in the part named for it: liveness.ts (the sweep, node state
 * changes), nodes.ts (joining, agents' frames, node views), handovers.ts, services.ts (service
 * commands and views); the dispatcher sends targets, the reconcile loop places, the gateway holds
 * the agents' sockets. Routes get the duty objects; metrics get `stats`.
 */
export class Hub {
  /** What each node's agent last reported of its replicas (soft state). */
  readonly observed = new ObservedState();
  /** Slots for the per-node soft state: one id map for the conditions, the failure detector and the agents' sessions. */
  private readonly nodeSlots = new NodeSlots();
  /** What each node last said of its engine, target cache and disks (soft state). */
  readonly conditions = new NodeConditionsTable(this.nodeSlots);
  readonly liveness: Liveness;
  readonly detector: FailureDetector;
  readonly handovers: Handovers;
  /** Rolling updates: their steps, what wakes them, their automatic rollbacks. */
  readonly rollouts: Rollouts;
  readonly dispatcher: Dispatcher;
  readonly loop: HubReconcileLoop;
  readonly gateway: AgentGateway;
  /** Joining, agents' frames, node views. */
  readonly nodes: Nodes;
  /** Service commands and views. */
  readonly services: Services;
  /** Configs and secrets: named, versioned values (secrets sealed with the master key). */
  readonly configs: NamedValues<'config'>;
  readonly secrets: NamedValues<'secret'>;
  /** Both, as specs and targets see them: versions held, and values for the nodes that need them. */
  readonly values: HubValues;
  private readonly valueRollouts: ValueRollouts;
  /** Failed authentications per client address, of every kind: shared, so that one table bounds them all. */
  readonly authFailures: AuthFailures;
  /** What metrics read. */
  readonly stats: HubStats;
  /** What happened in the fleet (a bounded history), and the clients that follow it. */
  readonly events = new FleetEvents();
  readonly eventStreams: EventStreams;
  readonly logs: LogRelay;
  private readonly stopEventSources: () => void;
  private readonly nodeLog: NodeChangeLog;

  constructor(
    readonly store: Store,
    readonly config: HubConfig,
    clock: Clock,
    logger: Logger,
    sealer: ValueSealer,
  ) {
    const nodeLog = (this.nodeLog = new NodeChangeLog(logger));
    this.authFailures = new AuthFailures(
      config.authFailures,
      () => clock.nowMs(),
      ({ address, kind, failures, refuseForMs }) =>
        logger.warn({ address, kind, failures, refuseForMs }, 'too many failed authentications from this address: refusing its failures for a while'),
    );
    this.liveness = new Liveness({
      store,
      clock,
      logger,
      config,
      conditions: this.conditions,
      slots: this.nodeSlots,
      nodeLog,
      disconnect: (nodeId, code, reason) => this.gateway.disconnect(nodeId, code, reason),
      markDirty: () => this.loop.markDirty(),
      nodesChanged: () => this.loop.nodesChanged(),
    });
    this.detector = this.liveness.detector;
    this.dispatcher = new Dispatcher(
      store,
      (nodeId, frame) => this.gateway.send(nodeId, frame),
      (nodeId, replicaId) => this.observed.forget(nodeId, replicaId),
      (source, name, version) => this.values.base64Of(source, name, version),
      (nodeId) => this.gateway.protocolVersion(nodeId),
    );
    this.handovers = new Handovers({
      observed: this.observed,
      dispatcher: this.dispatcher,
      detector: this.detector,
      markDirty: (withinMs) => this.loop.markDirty(withinMs),
    });
    this.rollouts = new Rollouts({
      observed: this.observed,
      dispatcher: this.dispatcher,
      detector: this.detector,
      clock,
      markDirty: (withinMs) => this.loop.markDirty(withinMs),
      rollBack: (service, failedRevision, toRevision, reason) => {
        this.services.autoRollback(service, failedRevision, toRevision, reason).catch((err: unknown) => {
          // The update stays as it is (its record says it failed); the next report or resync tries again.
          logger.error({ err, service }, 'could not roll back a failed update');
        });
      },
    });
    this.loop = new HubReconcileLoop({
      store,
      dispatcher: this.dispatcher,
      schedNodes: () => this.nodes.forPlacement(),
      defaultLostAfterMs: config.lostAfterMs,
      isRunning: (replicaId) => this.handovers.isServing(replicaId),
      isUnhealthy: (replicaId) => this.handovers.isFailing(replicaId),
      rollouts: this.rollouts,
      afterPass: (services) => {
        this.handovers.track(services);
        this.rollouts.track(services);
      },
      logger,
      resyncIntervalMs: config.resyncIntervalMs,
    });
    this.gateway = new AgentGateway({
      store,
      clock,
      detector: this.detector,
      slots: this.nodeSlots,
      logger,
      heartbeatIntervalMs: config.heartbeatIntervalMs,
      maxPendingHandshakes: config.maxPendingHandshakes,
      authFailures: this.authFailures,
      ...(config.maxPendingHandshakesPerAddress === null ? {} : { maxPendingHandshakesPerAddress: config.maxPendingHandshakesPerAddress }),
      handlers: {
        onConditions: (nodeId, conditions) => this.nodes.conditionsReported(nodeId, conditions),
        onHello: (nodeId, hello) => this.nodes.hello(nodeId, hello),
        onStatus: (nodeId, reports) => this.nodes.status(nodeId, reports),
        onCredentialSaved: (nodeId, rotation) => this.nodes.credentialSaved(nodeId, rotation),
        onDisconnect: () => undefined,
      },
    });
    // Agents' log streams to HTTP clients: routed by node, moved by credit (logs/log-relay.ts).
    this.logs = new LogRelay(this.gateway);
    this.nodes = new Nodes({
      store,
      clock,
      logger,
      observed: this.observed,
      conditions: this.conditions,
      detector: this.detector,
      gateway: this.gateway,
      dispatcher: this.dispatcher,
      // Both hear of every accepted report: a replacement's first run ends a hand-over, a batch's replica moves its update.
      handovers: {
        reported: (reports) => {
          this.handovers.reported(reports);
          this.rollouts.reported(reports);
        },
      },
      nodeLog,
      markDirty: () => this.loop.markDirty(),
    });
    this.services = new Services({
      store,
      dispatcher: this.dispatcher,
      observed: this.observed,
      detector: this.detector,
      clock,
      logger,
      markDirty: () => this.loop.markDirty(),
      deleted: (name) => {
        this.handovers.forget(name);
        this.rollouts.forget(name);
      },
      pinValues: (spec) => pinnedToCurrent(spec, this.values),
      schedNodes: () => this.nodes.forPlacement(),
      handingOver: (record) => this.handovers.track([record]),
    });
    const usedBy = valueUsers(store);
    const changed = () => this.valueRollouts.followAll();
    const usersRefuse = serviceValueLimit(store, { sizeOf: (source, name) => this.values.sizeOf(source, name) });
    this.configs = new NamedValues('config', { store, sealer, usedBy, changed, usersRefuse });
    this.secrets = new NamedValues('secret', { store, sealer, usedBy, changed, usersRefuse });
    this.values = new HubValues(this.configs, this.secrets);
    this.valueRollouts = new ValueRollouts({ store, services: this.services, values: this.values, logger });
    this.stopEventSources = wireEventSources({ store, observed: this.observed, liveness: this.liveness, events: this.events });
    this.eventStreams = new EventStreams(this.events, config.eventStreams);
    this.stats = { liveness: this.liveness, nodes: this.nodes, agents: this.gateway, scheduler: this.loop, store, services: this.services, auth: this.authFailures };
  }

  /**
   * `loop: false` leaves the loop to startLoop(). The index loads here either way: no target may
   * come from a half-built one, and a hello can arrive as soon as the server listens.
   */
  start(opts: { loop?: boolean } = {}): void {
    this.liveness.start();
    this.dispatcher.load();
    // A hub stopped between a value's change and its services' new revisions rolls them now.
    this.valueRollouts.followAll();
    if (opts.loop !== false) this.startLoop();
  }

  startLoop(): void {
    this.loop.start();
  }

  async close(): Promise<void> {
    this.eventStreams.close();
    this.stopEventSources();
    this.liveness.stop();
    this.rollouts.stop();
    await this.gateway.close();
    await this.loop.stop();
    this.nodes.close();
    this.nodeLog.close();
    await this.store.close();
  }
}
