import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';
import type { AuditTrail } from './audit/audit-trail.js';
import type { EventStreams } from './events/event-streams.js';
import type { HubStats } from './hub-stats.js';
import { LOW_DISK_TEXT } from './node-conditions.js';

/**
 * The hub's Prometheus metrics. Counters the hub keeps anyway (store writes, passes, refusals) are
 * read at scrape time, so nothing here costs anything per agent frame; node states are counted
 * at scrape, O(nodes).
 */
export function hubMetrics(stats: HubStats, audit?: Pick<AuditTrail, 'stats'>, eventStreams?: Pick<EventStreams, 'stats'>): Registry {
  const registry = new Registry();
  // Process CPU, memory, heap, event-loop delay and GC, under the usual names.
  collectDefaultMetrics({ register: registry });

  new Gauge({
    name: 'tether_nodes',
    help: 'Nodes by state',
    labelNames: ['state'],
    registers: [registry],
    collect() {
      for (const [state, n] of Object.entries(stats.liveness.nodeStateCounts())) this.set({ state }, n);
    },
  });
  new Gauge({
    name: 'tether_node_conditions',
    help: `Nodes per condition their agents last reported: engine_unavailable, target_cache_stale, data_disk_low, engine_disk_low (a disk is low under ${LOW_DISK_TEXT})`,
    labelNames: ['condition'],
    registers: [registry],
    collect() {
      for (const [condition, n] of Object.entries(stats.nodes.conditionCounts())) this.set({ condition }, n);
    },
  });
  new Gauge({
    name: 'tether_fleet_disruption',
    help: 'Whether most of the fleet is away at once, so that no node is declared lost (1) or not (0)',
    registers: [registry],
    collect() {
      this.set(stats.liveness.disruption() === null ? 0 : 1);
    },
  });
  new Gauge({
    name: 'tether_fleet_away_ratio',
    help: 'Share of the nodes away at the last liveness sweep (nodes already lost not counted); above the disruption share, no node is declared lost',
    registers: [registry],
    collect() {
      this.set(stats.liveness.awayShare());
    },
  });
  counterFrom(registry, 'tether_hub_stalls_total', 'Times the hub did not run for a while (paused process, blocked event loop); not held against the nodes', () => stats.liveness.stalls().count);
  counterFrom(registry, 'tether_hub_stalled_seconds_total', 'Time the hub did not run, over all its stalls', () => stats.liveness.stalls().totalMs / 1000);
  new Gauge({
    name: 'tether_agent_sessions',
    help: 'Agent connections past their hello',
    registers: [registry],
    collect() {
      this.set(stats.agents.connectedCount);
    },
  });
  new Gauge({
    name: 'tether_agent_handshakes_pending',
    help: 'Agent connections between the upgrade and their hello',
    registers: [registry],
    collect() {
      this.set(stats.agents.pendingHandshakeCount);
    },
  });
  counterFrom(registry, 'tether_agent_busy_refusals_total', 'Agent upgrades turned away with 503 while the handshake slots were full', () => stats.agents.refusedBusy);
  new Counter({
    name: 'tether_agent_upgrades_refused_total',
    help: 'Agent upgrades refused, by reason: busy (pool full), address_busy (the address holds its share), unauthorized, not_found',
    labelNames: ['reason'],
    registers: [registry],
    collect() {
      const g = stats.agents;
      this.reset();
      for (const [reason, n] of [
        ['busy', g.refusedBusy],
        ['address_busy', g.refusedAddressBusy],
        ['unauthorized', g.refusedUnauthorized],
        ['not_found', g.refusedNotFound],
      ] as const) {
        this.inc({ reason }, n);
      }
    },
  });
  new Counter({
    name: 'tether_agent_socket_errors_total',
    help: "Errors on agents' sockets (resets and the like), by code: counted, never fatal",
    labelNames: ['code'],
    registers: [registry],
    collect() {
      this.reset();
      for (const [code, n] of stats.agents.socketFaults.byCode) this.inc({ code }, n);
    },
  });
  counterFrom(registry, 'tether_agent_acks_refused_total', 'Acks of a target generation the hub never made for that node, and hellos claiming one past belief (2^40): forged, worth an alert', () => stats.agents.acksRefused);
  counterFrom(
    registry,
    'tether_agent_hello_generations_ahead_total',
    "Hellos claiming a generation above the store's: once per node after a store restored from an older copy, otherwise forged; the node's next target goes above it",
    () => stats.agents.helloGenerationsAhead,
  );
  counterFrom(
    registry,
    'tether_agent_conditions_held_total',
    'Conditions frames that came within the interval agents keep (3 s) of the one before: held back, only the latest applied; steady growth means a device sends more than agents do',
    () => stats.agents.conditionsHeld,
  );
  counterFrom(registry, 'tether_agent_handshakes_superseded_total', 'Pending handshakes ended by a newer upgrade of the same node', () => stats.agents.handshakesSuperseded);
  counterFrom(registry, 'tether_agent_sessions_replaced_total', 'Agent sessions closed because the same node said hello on a newer connection', () => stats.agents.sessionsReplaced);
  new Counter({
    name: 'tether_replica_reports_refused_total',
    help: 'Replica reports refused because the replica is not assigned to the reporting node: before_ack, sent while the node had not applied its newest target (routine after a move); not_assigned, the rest (worth an alert: a device reporting on what is not its own)',
    labelNames: ['reason'],
    registers: [registry],
    collect() {
      this.reset();
      this.inc({ reason: 'not_assigned' }, stats.nodes.refusedReports - stats.nodes.refusedReportsBeforeAck);
      this.inc({ reason: 'before_ack' }, stats.nodes.refusedReportsBeforeAck);
    },
  });
  new Gauge({
    name: 'tether_observed_replicas',
    help: 'Replicas whose last agent report the hub holds in memory',
    registers: [registry],
    collect() {
      this.set(stats.nodes.observedReplicas);
    },
  });
  new Counter({
    name: 'tether_auth_failures_total',
    help: 'Failed authentications, by kind: api_token (HTTP API), join_token (/v1/join), node_credential (agent upgrade); the refused ones included',
    labelNames: ['kind'],
    registers: [registry],
    collect() {
      this.reset();
      for (const [kind, n] of Object.entries(stats.auth.failuresByKind)) this.inc({ kind }, n);
    },
  });
  new Counter({
    name: 'tether_auth_refused_total',
    help: 'Failed authentications answered 429 because their address (IPv6: its /64) had failed too often lately, by kind',
    labelNames: ['kind'],
    registers: [registry],
    collect() {
      this.reset();
      for (const [kind, n] of Object.entries(stats.auth.refusedByKind)) this.inc({ kind }, n);
    },
  });
  counterFrom(registry, 'tether_scheduler_passes_total', 'Scheduling passes run', () => stats.scheduler.passes);
  counterFrom(registry, 'tether_store_writes_total', 'Store file writes', () => stats.store.stats().writes);
  counterFrom(registry, 'tether_store_written_bytes_total', 'Bytes of store files written', () => stats.store.stats().bytesWritten);
  counterFrom(registry, 'tether_store_write_failures_total', 'Store file writes that failed (full disk, I/O error); the changes they carried were not kept', () => stats.store.health().writeFailures);
  new Gauge({
    name: 'tether_services',
    help: 'Services defined',
    registers: [registry],
    collect() {
      this.set(stats.services.count());
    },
  });

  const planSeconds = new Histogram({
    name: 'tether_scheduler_plan_seconds',
    help: 'Time a scheduling pass spends planning (the hub handles no frame meanwhile)',
    buckets: [0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5],
    registers: [registry],
  });
  stats.scheduler.onPlan((ms) => planSeconds.observe(ms / 1000));
  if (audit) {
    // Lost records mean changes nobody can account for later: worth an alert when they grow.
    new Counter({
      name: 'tether_audit_records_total',
      help: 'Audit records since the hub started, by outcome: written, dropped (the queue was full: the disk is slow) or failed (the write failed)',
      labelNames: ['outcome'],
      registers: [registry],
      collect() {
        const { written, dropped, failed } = audit.stats();
        this.reset();
        this.inc({ outcome: 'written' }, written);
        this.inc({ outcome: 'dropped' }, dropped);
        this.inc({ outcome: 'failed' }, failed);
      },
    });
  }
  if (eventStreams) {
    new Gauge({
      name: 'tether_event_streams',
      help: 'GET /v1/events streams open now',
      registers: [registry],
      collect() {
        this.set(eventStreams.stats().clients);
      },
    });
    new Counter({
      name: 'tether_event_stream_overflows_total',
      help: 'Event streams cut for falling too far behind (they resume with Last-Event-ID)',
      registers: [registry],
      collect() {
        this.reset();
        this.inc(eventStreams.stats().overflows);
      },
    });
  }
  return registry;
}

/** A gauge whose value the hub already keeps, read at scrape. */
export function gaugeFrom(registry: Registry, name: string, help: string, read: () => number): void {
  new Gauge({
    name,
    help,
    registers: [registry],
    collect() {
      this.set(read());
    },
  });
}

/** A counter whose value is a total the hub already keeps. */
export function counterFrom(registry: Registry, name: string, help: string, read: () => number): void {
  new Counter({
    name,
    help,
    registers: [registry],
    collect() {
      this.reset();
      this.inc(read());
    },
  });
}
