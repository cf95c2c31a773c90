import { describe, expect, it } from 'vitest';
import { changedReports, reportFor, runsItsSpec, standingsOf, type ReplicaFacts } from '../../agent/reconciler/replica-report.js';
import type { EngineState, ObservedContainer } from '../../agent/runtime/container-runtime.js';
import type { AssignedReplica, ReplicaReport } from '../../shared/protocol.js';
import { containerSpec } from '../helpers/container-spec.js';

function assigned(replicaId: string, specHash: string): AssignedReplica {
  return { replicaId, service: 'web', specHash, container: containerSpec('httpd:1') };
}

function container(id: string, replicaId: string, specHash: string, state: EngineState, more: Partial<ObservedContainer> = {}): ObservedContainer {
  return { id, name: `tether-${id}`, replicaId, service: 'web', specHash, state, exitCode: null, restartCount: 0, error: null, ...more };
}

const none: ReplicaFacts = { replicaError: undefined, containerError: () => undefined, restarts: 0 };

function reports(target: AssignedReplica[], listing: ObservedContainer[], facts: Partial<ReplicaFacts> = {}): Map<string, ReplicaReport> {
  const out = new Map<string, ReplicaReport>();
  for (const [id, s] of standingsOf(target, listing)) out.set(id, reportFor(s, { ...none, ...facts }));
  return out;
}

describe('replica reports', () => {
  it('reports an assigned replica without a container as pending, or failed with its step error', () => {
    expect(reports([assigned('r1', 'a')], []).get('r1')).toMatchObject({ state: 'pending', specHash: 'a', containerId: null, error: null });
    expect(reports([assigned('r1', 'a')], [], { replicaError: 'pull failed: denied' }).get('r1')).toMatchObject({
      state: 'failed',
      error: 'pull failed: denied',
    });
  });

  it('lets the running old version stand for a replica whose new container does not run yet', () => {
    const listing = [container('new', 'r1', 'b', 'created'), container('old', 'r1', 'a', 'running')];
    const [s] = standingsOf([assigned('r1', 'b')], listing).values();
    expect(s!.chosen?.id).toBe('old');
    expect(runsItsSpec(s!)).toBe(false);
    // The failed update is told with the version that serves.
    expect(reportFor(s!, { ...none, replicaError: 'start failed: boom' })).toMatchObject({
      state: 'running',
      specHash: 'a',
      containerId: 'old',
      error: 'start failed: boom',
    });
  });

  it('takes a running container of the assigned spec as success', () => {
    const [s] = standingsOf([assigned('r1', 'a')], [container('c1', 'r1', 'a', 'running')]).values();
    expect(runsItsSpec(s!)).toBe(true);
  });

  it("reports a stand-in's own error for an assigned replica, not for an unassigned one", () => {
    const listing = [container('c1', 'r1', 'a', 'exited', { exitCode: 0 }), container('c2', 'r2', 'a', 'exited', { exitCode: 0 })];
    const facts = { containerError: (id: string) => `start of ${id} failed` };
    const out = reports([assigned('r1', 'b')], listing, facts);
    expect(out.get('r1')).toMatchObject({ state: 'failed', error: 'start of c1 failed' });
    expect(out.get('r2')).toMatchObject({ state: 'stopped', error: null, service: 'web', specHash: 'a' });
  });

  it('has a standing for each assigned replica and each unassigned one still present, in that order', () => {
    const listing = [container('c9', 'r9', 'z', 'running'), container('c1', 'r1', 'a', 'running')];
    expect([...standingsOf([assigned('r1', 'a'), assigned('r2', 'a')], listing).keys()]).toEqual(['r1', 'r2', 'r9']);
    // Asked for some: only those, and one neither assigned nor present has none.
    expect([...standingsOf([assigned('r1', 'a')], listing, ['gone', 'r9', 'r1']).keys()]).toEqual(['r9', 'r1']);
  });

  it('carries the restart count it is given', () => {
    expect(reports([assigned('r1', 'a')], [container('c1', 'r1', 'a', 'running')], { restarts: 3 }).get('r1')?.restarts).toBe(3);
  });

  describe('changedReports', () => {
    const running = reports([assigned('r1', 'a')], [container('c1', 'r1', 'a', 'running')]).get('r1')!;
    const stopped = { ...running, state: 'stopped' as const };

    it('sends what is new or different, and removed once for what is gone', () => {
      const last = new Map([
        ['r1', running],
        ['r2', running],
        ['r3', { ...running, replicaId: 'r3' }],
      ]);
      const next = new Map([
        ['r1', running],
        ['r2', stopped],
        ['r4', { ...running, replicaId: 'r4' }],
      ]);
      expect(changedReports(last, next)).toEqual([
        stopped,
        { ...running, replicaId: 'r4' },
        { ...running, replicaId: 'r3', state: 'removed', containerId: null, error: null },
      ]);
      expect(changedReports(next, next)).toEqual([]);
    });

    it('judges only the replicas in scope', () => {
      const last = new Map([
        ['r1', running],
        ['r2', running],
      ]);
      const next = new Map([['r2', stopped]]);
      expect(changedReports(last, next, ['r2'])).toEqual([stopped]);
      expect(changedReports(last, next, ['r1'])).toEqual([{ ...running, state: 'removed', containerId: null, error: null }]);
    });
  });
});
