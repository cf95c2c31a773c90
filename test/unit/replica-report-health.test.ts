import { describe, expect, it } from 'vitest';
import { changedReports, healthFor, removedReport, reportFor, standingsOf, type ReplicaFacts } from '../../agent/reconciler/replica-report.js';
import type { EngineState, ObservedContainer } from '../../agent/runtime/container-runtime.js';
import type { HealthCheck } from '../../shared/container-spec.js';
import type { AssignedReplica, ReplicaReport } from '../../shared/protocol.js';
import { containerSpec } from '../helpers/container-spec.js';

const check: HealthCheck = {
  type: 'tcp',
  port: 80,
  path: null,
  statusMin: null,
  statusMax: null,
  command: null,
  intervalMs: 1_000,
  timeoutMs: 1_000,
  retries: 3,
  startPeriodMs: 0,
};

function assigned(replicaId: string, withCheck: boolean): AssignedReplica {
  return { replicaId, service: 'web', specHash: 'a', container: containerSpec('httpd:1', withCheck ? { healthcheck: check } : {}) };
}

function container(id: string, state: EngineState, more: Partial<ObservedContainer> = {}): ObservedContainer {
  return { id, name: id, replicaId: 'r1', service: 'web', specHash: 'a', state, exitCode: null, restartCount: 0, error: null, healthCheck: check, ...more };
}

const facts = (probed?: ReplicaFacts['probedHealth']): ReplicaFacts => ({
  replicaError: undefined,
  containerError: () => undefined,
  restarts: 0,
  probedHealth: probed,
});

function reportOfOne(r: AssignedReplica, listing: ObservedContainer[], probed?: ReplicaFacts['probedHealth']): ReplicaReport {
  const [s] = standingsOf([r], listing).values();
  return reportFor(s!, facts(probed));
}

describe('health in replica reports', () => {
  it('has no health field for a replica without a check', () => {
    const report = reportOfOne(assigned('r1', false), [container('c1', 'running', { healthCheck: null })]);
    expect(report.state).toBe('running');
    expect('health' in report).toBe(false);
  });

  it("takes the engine's word first, then the probes', else starting", () => {
    const r = assigned('r1', true);
    const unhealthy = { status: 'unhealthy' as const, output: 'refused' };
    expect(reportOfOne(r, [container('c1', 'running', { engineHealth: { status: 'healthy', output: null } })], () => unhealthy).health).toEqual({
      status: 'healthy',
      output: null,
    });
    expect(reportOfOne(r, [container('c1', 'running')], () => unhealthy).health).toEqual(unhealthy);
    expect(reportOfOne(r, [container('c1', 'running')]).health).toEqual({ status: 'starting', output: null });
  });

  it('is starting for a checked replica with no container yet or one that does not run', () => {
    expect(reportOfOne(assigned('r1', true), []).health).toEqual({ status: 'starting', output: null });
    expect(reportOfOne(assigned('r1', true), [container('c1', 'exited', { exitCode: 1, engineHealth: null })])).toMatchObject({
      state: 'failed',
      health: { status: 'starting', output: null },
    });
    const [s] = standingsOf([assigned('r1', false)], []).values();
    expect(healthFor(s!)).toBeUndefined();
  });

  it('counts a change of health as a change, and sends none with a removal', () => {
    const before = reportOfOne(assigned('r1', true), [container('c1', 'running')]);
    const after = reportOfOne(assigned('r1', true), [container('c1', 'running', { engineHealth: { status: 'healthy', output: null } })]);
    expect(changedReports(new Map([['r1', before]]), new Map([['r1', before]]))).toEqual([]);
    expect(changedReports(new Map([['r1', before]]), new Map([['r1', after]]))).toEqual([after]);
    expect('health' in removedReport(after)).toBe(false);
  });
});
