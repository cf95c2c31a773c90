/**
 * Pull progress from a real agent (simulated engine, whose pulls tell their progress as the
 * engine's do): while a replica's image downloads, the service view shows how far it got, under
 * that replica; once the image is there, the replica runs and the progress is gone.
 */
import { afterEach, expect, it, vi } from 'vitest';
import { SIMULATED_LAYER_BYTES, SimulatedRuntime } from '../../agent/runtime/simulated-runtime.js';
import { PULL_PROGRESS_REPORT_MS } from '../../shared/protocol.js';
import { SimFleet } from '../helpers/sim-fleet.js';

let fleet: SimFleet;
afterEach(async () => {
  await fleet?.close();
});

interface Replica {
  state: string;
  pull: { bytesDone: number; bytesTotal: number | null; layersDone: number; layersTotal: number; percent: number | null } | null;
}

it('shows a slow pull growing under the replica that waits for it, then the replica running', async () => {
  fleet = await SimFleet.start();
  // Long enough for two progress reports before the image is there.
  const pullDelayMs = PULL_PROGRESS_REPORT_MS * 2.5;
  const runtime = new SimulatedRuntime({ images: [], pullDelayMs });
  await fleet.addAgent({ runtime });
  expect((await fleet.api('PUT', '/v1/services/web', { image: 'tether-test/busybox:1', replicas: 1 })).status).toBe(201);

  const seen: number[] = [];
  await vi.waitFor(
    async () => {
      const replica = (await fleet.api<{ status: { replicas: Replica[] } }>('GET', '/v1/services/web')).body.status.replicas[0]!;
      if (replica.pull) {
        expect(replica.state).toBe('pending');
        expect(replica.pull).toMatchObject({ bytesTotal: SIMULATED_LAYER_BYTES, layersDone: 0, layersTotal: 1 });
        if (seen.at(-1) !== replica.pull.percent) seen.push(replica.pull.percent!);
      }
      expect(replica).toMatchObject({ state: 'running', pull: null });
    },
    { timeout: pullDelayMs + 10_000, interval: 50 },
  );
  // At least two different shares, each part-way, each more than the one before.
  expect(seen.length).toBeGreaterThanOrEqual(2);
  for (const percent of seen) {
    expect(percent).toBeGreaterThan(0);
    expect(percent).toBeLessThan(100);
  }
  expect([...seen].sort((a, b) => a - b)).toEqual(seen);
});
