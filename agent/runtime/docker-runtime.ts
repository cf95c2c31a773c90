/**
 * The real container runtime: a Docker engine reached through dockerode. This file composes the
 * concerns, a file each under docker/: the connection and its deadlines (engine-client.ts), what
 * failures mean (engine-errors.ts), the node's containers read back from their labels
 * (container-listing.ts), creating (container-create.ts), starting, stopping and removing
 * (container-lifecycle.ts), images (images.ts) and pulls (image-pull.ts), the event stream
 * (event-watch.ts), a container's last output (container-output.ts, log-frames.ts), the engine's
 * own facts (engine-facts.ts), and Docker's shapes of health checks (engine-health-checks.ts) and
 * mounts (mounts.ts). dockerode's memory cost is kept down by the agent's bundle, which leaves out
 * the parts the agent never loads (scripts/bundle-agent.mjs).
 */
import type { RegistryAuth } from '../../shared/container-spec.js';
import type { Logger } from '../../shared/logger.js';
import type {
  ContainerRuntime,
  CreateContainerRequest,
  EngineProbe,
  ImageRemoval,
  ImagesInUse,
  ObservedContainer,
  RuntimeEvent,
  StartResult,
  VolumeRemoval,
} from './container-runtime.js';
import type { EngineDeadlines } from './engine-deadlines.js';
import type { PullProgressTally } from './pull-progress.js';
import { ContainerListing } from './docker/container-listing.js';
import { createContainer } from './docker/container-create.js';
import { removeContainer, startContainer, stopContainer } from './docker/container-lifecycle.js';
import { containerOutputTail } from './docker/container-output.js';
import { EngineClient, type EngineModem } from './docker/engine-client.js';
import { engineStorageDir, engineVersion, pingEngine } from './docker/engine-facts.js';
import { EventWatch } from './docker/event-watch.js';
import { pullImage, type AgentRegistryAuth } from './docker/image-pull.js';
import { hasImage, imagesInUse, removeImage } from './docker/images.js';
import { removeServiceVolumes } from './docker/service-volumes.js';

// Where tests and benchmarks found them before the split.
export { engineMessage } from './docker/engine-errors.js';
export { registryHostOf } from './docker/image-refs.js';
export { JsonLineReader } from './docker/json-lines.js';

export interface DockerRuntimeOptions {
  socketPath?: string;
  logger?: Pick<Logger, 'warn'>;
  /**
   * The agent's own credentials, keyed by registry host[:port] as in an image reference
   * (`127.0.0.1:5001`, `registry.example.com`, `docker.io`): used for a pull whose spec carries none.
   */
  registryAuth?: Record<string, { username: string; password: string }>;
  /** The engine connection under dockerode; tests give a fake one to play an engine exactly (a lagging listing, a flaky inspect). */
  modem?: EngineModem;
  /** How long each kind of engine call may take (see EngineDeadlines); tests shorten them. */
  deadlines?: Partial<EngineDeadlines>;
  /**
   * A monotonic clock in ms, for the runtime's own bookkeeping (how old a cached inspect is). Not
   * the wall clock: a device without a real-time clock jumps years when it first syncs.
   */
  monotonicNowMs?: () => number;
}

export class DockerRuntime implements ContainerRuntime, EngineProbe {
  private readonly engine: EngineClient;
  /** Host -> credentials, in a Map so that a host named like an Object property finds nothing. */
  private readonly registryAuth: AgentRegistryAuth;
  private readonly listing: ContainerListing;
  private readonly events: EventWatch;
  /** The last ping failed: the next that answers is the engine's return. */
  private lastPingFailed = false;

  constructor(opts: DockerRuntimeOptions = {}) {
    this.engine = new EngineClient(opts);
    this.registryAuth = new Map(
      Object.entries(opts.registryAuth ?? {}).map(([host, c]) => [host, { username: c.username, password: c.password }]),
    );
    this.listing = new ContainerListing(this.engine);
    this.events = new EventWatch(this.engine, this.listing);
  }

  onUnreachable(listener: (error: Error) => void): () => void {
    return this.engine.onUnreachable(listener);
  }

  async ping(): Promise<void> {
    try {
      await pingEngine(this.engine);
    } catch (err) {
      this.lastPingFailed = true;
      throw err;
    }
    // The engine is back: event streams waiting to reconnect need not wait out their backoff. Only
    // on a return: an engine that answers pings but ends every stream at once would otherwise
    // have each ping reconnect them all, past their backoff, over and over.
    if (!this.lastPingFailed) return;
    this.lastPingFailed = false;
    this.events.reconnectWaiting();
  }

  storageDir(): Promise<string | null> {
    return engineStorageDir(this.engine);
  }

  version(): Promise<string> {
    return engineVersion(this.engine);
  }

  listContainers(nodeId: string): Promise<ObservedContainer[]> {
    return this.listing.list(nodeId);
  }

  hasImage(image: string): Promise<boolean> {
    return hasImage(this.engine, image);
  }

  pullImage(image: string, auth: RegistryAuth | null, signal?: AbortSignal, progress?: PullProgressTally): Promise<void> {
    return pullImage(this.engine, this.registryAuth, image, auth, signal, progress);
  }

  createContainer(req: CreateContainerRequest): Promise<string> {
    return createContainer(this.engine, req);
  }

  async startContainer(id: string): Promise<StartResult> {
    const result = await startContainer(this.engine, id);
    if (result === 'started') this.listing.forget(id);
    return result;
  }

  containerLogs(id: string, lines: number, maxBytes: number): Promise<string | null> {
    return containerOutputTail(this.engine, id, lines, maxBytes);
  }

  stopContainer(id: string, timeoutS: number): Promise<void> {
    return stopContainer(this.engine, id, timeoutS);
  }

  removeContainer(id: string): Promise<void> {
    return removeContainer(this.engine, id);
  }

  imagesInUse(): Promise<ImagesInUse> {
    return imagesInUse(this.engine);
  }

  removeImage(image: string): Promise<ImageRemoval> {
    return removeImage(this.engine, image);
  }

  removeServiceVolumes(nodeId: string, service: string): Promise<VolumeRemoval> {
    return removeServiceVolumes(this.engine, nodeId, service);
  }

  /**
   * Follows the engine's event stream for this node's containers (docker/event-watch.ts). Every
   * (re)subscription starts with a 'resync' event; a broken stream reconnects with backoff, as
   * does a silent one whose engine no longer answers a ping.
   */
  watchEvents(nodeId: string, onEvent: (event: RuntimeEvent) => void): () => void {
    return this.events.watch(nodeId, onEvent);
  }
}
