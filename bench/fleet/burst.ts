/**
 * Heartbeat throughput: every connection sends its share of the burst's frames (one per
 * connection per round), then a ping with a unique payload; frames / (last pong - first frame).
 */
import type { BurstResult } from '../fleet-messages.js';
import type { FleetRun } from './run.js';

export async function hubBurst(run: FleetRun): Promise<void> {
  run.figures.hub.burst = run.burstFigures(await run.all<BurstResult>({ cmd: 'burst', framesPerConnection: run.framesPerConnection() }, 300_000));
}
