/** Idle heartbeating: the hub's CPU over a window once it has gone quiet (see FleetRun.quiesce). */
import type { CpuFigures } from '../fleet-figures.js';
import type { FleetRun } from './run.js';

export function idleCpu(run: FleetRun): Promise<CpuFigures> {
  return run.cpuWindow(run.hub!.pid);
}
