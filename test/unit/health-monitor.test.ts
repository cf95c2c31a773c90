import { afterEach, describe, expect, it } from 'vitest';
import { HealthMonitor, type Probe } from '../../agent/health/health-monitor.js';
import type { ProbeResult } from '../../agent/health/probe-result.js';
import type { ObservedContainer } from '../../agent/runtime/container-runtime.js';
import { httpCheck } from '../helpers/health-checks.js';

const monitors: HealthMonitor[] = [];
afterEach(() => monitors.splice(0).forEach((m) => m.close()));

const check = httpCheck({ intervalMs: 20, retries: 2 });

function container(id: string, more: Partial<ObservedContainer> = {}): ObservedContainer {
  return {
    id,
    name: id,
    replicaId: `r-${id}`,
    service: 'web',
    specHash: 'a',
    state: 'running',
    exitCode: null,
    restartCount: 0,
    error: null,
    healthCheck: check,
    address: '10.0.0.2',
    ...more,
  };
}

function monitor(probe: Probe, opts: { maxInFlight?: number; maxChecked?: number } = {}) {
  const changes: string[] = [];
  const m = new HealthMonitor({ onChange: (id) => changes.push(id), probe, ...opts });
  monitors.push(m);
  return { m, changes };
}

describe('health monitor', () => {
  it('probes a checked running container, and tells each change of its health', async () => {
    let result: ProbeResult = { ok: true };
    const { m, changes } = monitor(async () => result);
    m.track([container('c1')]);
    expect(m.healthOf('c1')).toEqual({ status: 'starting', output: null });
    await expect.poll(() => m.healthOf('c1')?.status).toBe('healthy');
    result = { ok: false, output: 'HTTP 500' };
    await expect.poll(() => m.healthOf('c1')).toEqual({ status: 'unhealthy', output: 'HTTP 500' });
    expect(changes).toEqual(['c1', 'c1']);
  });

  it('probes nothing the engine checks itself, nor a container that is not running or has no address', async () => {
    const probed: string[] = [];
    const { m } = monitor(async (_check, address) => (probed.push(address), { ok: true }));
    m.track([
      container('exec', { healthCheck: { ...check, type: 'exec', command: ['true'], port: null } }),
      container('engine', { engineHealth: { status: 'healthy', output: null } }),
      container('exited', { state: 'exited' }),
      container('no-address', { address: null }),
      container('no-check', { healthCheck: null }),
    ]);
    await new Promise((resolve) => setTimeout(resolve, 100));
    expect(probed).toEqual([]);
    expect(m.size).toBe(0);
  });

  it('stops probing a container that leaves the listing, and starts again for one the engine restarted', async () => {
    let tries = 0;
    const { m } = monitor(async () => (tries++, { ok: true }));
    m.track([container('c1')]);
    await expect.poll(() => m.healthOf('c1')?.status).toBe('healthy');
    m.track([container('c1', { restartCount: 1 })]);
    expect(m.healthOf('c1')?.status).toBe('starting');
    m.track([]);
    expect(m.healthOf('c1')).toBeUndefined();
    const after = tries;
    await new Promise((resolve) => setTimeout(resolve, 100));
    expect(tries).toBe(after);
  });

  it('keeps at most maxInFlight tries in flight, and gets to every container', async () => {
    let inFlight = 0;
    let most = 0;
    const seen = new Set<string>();
    const { m } = monitor(
      async (_check, address) => {
        inFlight++;
        most = Math.max(most, inFlight);
        seen.add(address);
        await new Promise((resolve) => setTimeout(resolve, 15));
        inFlight--;
        return { ok: true };
      },
      { maxInFlight: 2 },
    );
    m.track(Array.from({ length: 10 }, (_, i) => container(`c${i}`, { address: `10.0.0.${i}` })));
    await expect.poll(() => seen.size, { timeout: 5_000 }).toBe(10);
    expect(most).toBe(2);
  });

  it('checks at most maxChecked containers; the rest stay unprobed', () => {
    const { m } = monitor(async () => ({ ok: true }), { maxChecked: 3 });
    m.track(Array.from({ length: 5 }, (_, i) => container(`c${i}`)));
    expect(m.size).toBe(3);
  });
});
