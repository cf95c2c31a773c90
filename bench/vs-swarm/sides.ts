/**
 * The three ways of running the same containers, behind one interface: Tether (hub + one agent),
 * Swarm, and the raw engine (the Engine API straight, RAW_PARALLEL calls at once). Each only
 * starts its action; whether the containers run is judged on the engine, alike for all three.
 */
import { inParallel, removeLabelled, runContainer } from './engine.js';
import * as swarm from './swarm.js';
import * as tether from './tether.js';

/** Calls at once for the raw engine: past 4 the engine is the bottleneck (it takes no faster). */
export const RAW_PARALLEL = 8;

export interface Workload {
  image: string;
  command: string[];
  /** Labels on every container: the run's and the service's, by which the engine is asked. */
  labels: Record<string, string>;
  parallelism: number;
  monitor: string;
}

export interface Side {
  name: 'tether' | 'swarm' | 'raw';
  create: (service: string, replicas: number, w: Workload) => Promise<void>;
  scale: (service: string, from: number, to: number, w: Workload) => Promise<void>;
  /** The new spec for all replicas (rolled as the update settings say); null: the side has no updates. */
  update: ((service: string, replicas: number, w: Workload) => Promise<void>) | null;
  /** Starts the removal; the caller waits until the engine has no container of it left. */
  remove: (service: string, w: Workload) => Promise<void>;
}

export function tetherSide(api: tether.Api): Side {
  const spec = (replicas: number, w: Workload): tether.TetherSpec => ({ ...w, replicas });
  return {
    name: 'tether',
    create: (service, replicas, w) => tether.putService(api, service, spec(replicas, w)),
    scale: (service, _from, to) => tether.scaleService(api, service, to),
    update: (service, replicas, w) => tether.putService(api, service, spec(replicas, w)),
    remove: (service) => tether.deleteService(api, service),
  };
}

export function swarmSide(): Side {
  return {
    name: 'swarm',
    create: (service, replicas, w) => swarm.createService({ name: service, replicas, ...w }),
    scale: (service, _from, to) => swarm.scaleService(service, to),
    // The benchmark changes one of the two at a time: the image, or the command.
    update: (service, _replicas, w) => swarm.updateService(service, w.image, w.command),
    remove: (service) => swarm.removeService(service),
  };
}

export function rawSide(): Side {
  const run = (service: string, from: number, to: number, w: Workload) =>
    inParallel(
      Array.from({ length: to - from }, (_, i) => from + i),
      RAW_PARALLEL,
      (i) => runContainer(`${service}-${i}`, w.image, w.command, w.labels),
    );
  return {
    name: 'raw',
    create: (service, replicas, w) => run(service, 0, replicas, w),
    scale: (service, from, to, w) => run(service, from, to, w),
    update: null,
    remove: async (_service, w) => {
      await removeLabelled(Object.entries(w.labels).map(([k, v]) => `${k}=${v}`));
    },
  };
}
