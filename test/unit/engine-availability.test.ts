import { afterEach, describe, expect, it, vi } from 'vitest';
import { EngineAvailability } from '../../agent/engine-availability.js';
import { SimulatedRuntime } from '../../agent/runtime/simulated-runtime.js';

const quiet = { info() {}, warn() {} };
const monitors: EngineAvailability[] = [];
afterEach(() => monitors.splice(0).forEach((m) => m.stop()));

function watch(runtime: SimulatedRuntime, retryIntervalMs = 20, checkIntervalMs = 60_000) {
  const changes: Array<{ available: boolean; error: string | null }> = [];
  const monitor = new EngineAvailability({
    probe: runtime,
    logger: quiet,
    retryIntervalMs,
    checkIntervalMs,
    onChange: (available, error) => changes.push({ available, error }),
  });
  monitors.push(monitor);
  return { monitor, changes };
}

describe('engine availability', () => {
  it('reports an engine away at start, retries, and reports it back at the first ping that answers', async () => {
    const runtime = new SimulatedRuntime();
    runtime.setEngineAvailable(false);
    const { monitor, changes } = watch(runtime);
    await monitor.start();
    expect(changes).toEqual([{ available: false, error: expect.stringMatching(/ECONNREFUSED/) }]);
    runtime.setEngineAvailable(true);
    await vi.waitFor(() => expect(changes.at(-1)).toEqual({ available: true, error: null }), { timeout: 2_000, interval: 5 });
    expect(changes).toHaveLength(2);
  });

  it('checks at once when a call fails for want of an engine, and not before', async () => {
    const runtime = new SimulatedRuntime();
    // Retries far apart: the report below can only come from the failed call.
    const { monitor, changes } = watch(runtime, 60_000);
    await monitor.start();
    expect(changes).toEqual([{ available: true, error: null }]);
    runtime.setEngineAvailable(false);
    await new Promise((r) => setTimeout(r, 50));
    expect(changes).toHaveLength(1);
    await expect(runtime.listContainers('n1')).rejects.toThrow(/ECONNREFUSED/);
    await vi.waitFor(() => expect(changes.at(-1)?.available).toBe(false), { timeout: 2_000, interval: 5 });
  });

  it('notices an engine gone quiet by its periodic check, with no call failing', async () => {
    const runtime = new SimulatedRuntime();
    const { monitor, changes } = watch(runtime, 60_000, 20);
    await monitor.start();
    runtime.setEngineAvailable(false);
    await vi.waitFor(() => expect(changes.at(-1)?.available).toBe(false), { timeout: 2_000, interval: 5 });
  });

  it('a refusal by an engine that is there is no outage', async () => {
    const runtime = new SimulatedRuntime();
    const { monitor, changes } = watch(runtime, 60_000);
    await monitor.start();
    await expect(runtime.startContainer('nope')).rejects.toThrow(/No such container/);
    await new Promise((r) => setTimeout(r, 50));
    expect(changes).toEqual([{ available: true, error: null }]);
  });
});
