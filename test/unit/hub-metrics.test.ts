import { beforeEach, describe, expect, it } from 'vitest';
import type { HubStats } from '../../hub/hub-stats.js';
import { hubMetrics } from '../../hub/metrics.js';

/** Stats made by hand: the metrics need nothing of the hub but this interface. */
const planListeners = new Set<(ms: number) => void>();

function stats(): HubStats {
  return {
    liveness: {
      nodeStateCounts: () => ({ ready: 5, not_ready: 1, unreachable: 0, lost: 2 }),
      disruption: () => null,
      awayShare: () => 0.25,
      stalls: () => ({ count: 1, totalMs: 1500 }),
    },
    nodes: {
      conditionCounts: () => ({ engine_unavailable: 1, target_cache_stale: 0, data_disk_low: 2, engine_disk_low: 0 }),
      refusedReports: 7,
      refusedReportsBeforeAck: 3,
      observedReplicas: 40,
    },
    agents: {
      connectedCount: 6,
      pendingHandshakeCount: 1,
      refusedBusy: 2,
      refusedAddressBusy: 0,
      refusedUnauthorized: 1,
      refusedNotFound: 0,
      socketFaults: { byCode: new Map([['ECONNRESET', 4]]) },
      acksRefused: 0,
      helloGenerationsAhead: 0,
      conditionsHeld: 0,
      handshakesSuperseded: 0,
      sessionsReplaced: 0,
    },
    scheduler: {
      passes: 9,
      onPlan: (listener: (ms: number) => void) => {
        planListeners.add(listener);
        return () => planListeners.delete(listener);
      },
    },
    store: {
      health: () => ({ ok: true, error: null, since: null, writeFailures: 0 }),
      stats: () => ({ writes: 11, bytesWritten: 2048 }),
    },
    services: { count: () => 3 },
    auth: {
      failuresByKind: { api_token: 12, join_token: 2, node_credential: 5 },
      refusedByKind: { api_token: 4, join_token: 0, node_credential: 1 },
    },
  };
}

describe('hub metrics', () => {
  beforeEach(() => planListeners.clear());

  it('read every figure from the stats interface, and time passes through the scheduler hook', async () => {
    const s = stats();
    const registry = hubMetrics(s);
    expect(planListeners.size).toBe(1);
    for (const listener of planListeners) listener(20);
    const text = await registry.metrics();
    expect(text).toContain('tether_nodes{state="lost"} 2');
    expect(text).toContain('tether_node_conditions{condition="data_disk_low"} 2');
    expect(text).toContain('tether_fleet_away_ratio 0.25');
    expect(text).toContain('tether_hub_stalled_seconds_total 1.5');
    expect(text).toContain('tether_agent_sessions 6');
    expect(text).toContain('tether_agent_socket_errors_total{code="ECONNRESET"} 4');
    expect(text).toContain('tether_replica_reports_refused_total{reason="not_assigned"} 4');
    expect(text).toContain('tether_replica_reports_refused_total{reason="before_ack"} 3');
    expect(text).toContain('tether_observed_replicas 40');
    expect(text).toContain('tether_scheduler_passes_total 9');
    expect(text).toContain('tether_store_written_bytes_total 2048');
    expect(text).toContain('tether_services 3');
    expect(text).toContain('tether_scheduler_plan_seconds_count 1');
    expect(text).toContain('tether_auth_failures_total{kind="api_token"} 12');
    expect(text).toContain('tether_auth_failures_total{kind="node_credential"} 5');
    expect(text).toContain('tether_auth_refused_total{kind="api_token"} 4');
    expect(text).toContain('tether_auth_refused_total{kind="join_token"} 0');
  });

  it("count the audit log's records written, dropped at its full queue and lost to failed writes", async () => {
    const registry = hubMetrics(stats(), { stats: () => ({ written: 120, dropped: 3, failed: 2 }) });
    const text = await registry.metrics();
    expect(text).toContain('tether_audit_records_total{outcome="written"} 120');
    expect(text).toContain('tether_audit_records_total{outcome="dropped"} 3');
    expect(text).toContain('tether_audit_records_total{outcome="failed"} 2');
  });

  it('show the event streams open and the clients cut for falling behind', async () => {
    const registry = hubMetrics(stats(), undefined, { stats: () => ({ clients: 7, overflows: 2, peakBufferedBytes: 65_536, peakLagEvents: 900 }) });
    const text = await registry.metrics();
    expect(text).toContain('tether_event_streams 7');
    expect(text).toContain('tether_event_stream_overflows_total 2');
  });

  it('a second registry times passes beside the first, not in its place', async () => {
    const s = stats();
    const first = hubMetrics(s);
    const second = hubMetrics(s);
    for (const listener of planListeners) listener(20);
    expect(await first.metrics()).toContain('tether_scheduler_plan_seconds_count 1');
    expect(await second.metrics()).toContain('tether_scheduler_plan_seconds_count 1');
  });
});
