/**
 * An in-memory container engine for scheduler and fleet tests and benchmarks: thousands of agents
 * share one process, so there are no timers per container and every operation is O(1) except the
 * listings. Like one Docker engine, one instance may serve several agents (different node ids).
 *
 * What is emulated: names unique in the engine, images that must be present to create, image
 * references the engine refuses as malformed, host port allocation between running containers,
 * the restart policy `unless-stopped` (a crashed container restarts, one stopped or killed by a
 * user does not; a start by the API resets the restart count), or `no` for a container whose spec
 * has a restart policy (enginePolicyOf: a crash leaves it exited), what a crashing container
 * printed (its logs' tail), asynchronous lifecycle events, and
 * health checks as the engine's own (every type): a running container with one turns healthy one
 * interval after it starts, unless a test set its health (setHealth), with one timer per engine
 * for all of them, none without checks. What is not: resources, networks, logs beyond what a test makes a crash print, real probes. It
 * proves nothing about Docker itself.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import { performance } from 'node:perf_hooks';
import type { HealthCheck, RegistryAuth } from '../../shared/container-spec.js';
import type { NodeFacts, ReplicaHealth } from '../../shared/protocol.js';
import { TETHER_VERSION } from '../../shared/version.js';
import {
  enginePolicyOf,
  LABELS,
  type ContainerInputs,
  type ContainerRuntime,
  type CreateContainerRequest,
  type EngineProbe,
  type ImageRemoval,
  type ImagesInUse,
  type ObservedContainer,
  type RuntimeEvent,
  type StartResult,
  type VolumeRemoval,
} from './container-runtime.js';
import { tailOf } from './output-tail.js';
import { VOLUME_LABEL } from './spec-mounts.js';
import type { PullProgressTally } from './pull-progress.js';

export interface SimulatedRuntimeOptions {
  /** Images present when the engine starts. */
  images?: string[];
  /** Images a pull can fetch; a function is asked on every pull, so a test can change its mind. Default: all. */
  pullableImages?: string[] | ((image: string) => boolean);
  /** Time one pull takes (a real timer per pull, not per container). Default 0. */
  pullDelayMs?: number;
  /** The engine's error text when a container of this image fails to start, or null to start. */
  startFails?: (image: string) => string | null;
  /** The engine's error text when it refuses to create a container of this spec (say more CPUs than it has), or null. */
  createFails?: (spec: CreateContainerRequest['spec']) => string | null;
  /** The engine's error text when an image inspect fails (not "absent": a fault, say a timeout), or null; asked on every call. */
  hasImageFails?: (image: string) => string | null;
  /** The engine's error text when it refuses to remove this container, or null; asked on every call. */
  removeFails?: (id: string) => string | null;
}

/** One container as a test inspects it: the observed fields plus what the engine was asked for. */
export interface SimulatedContainer extends ObservedContainer {
  /** The simulator always knows it. */
  restartCount: number;
  nodeId: string;
  image: string;
  labels: Readonly<Record<string, string>>;
  publishAddress: string | null;
  hostPorts: ReadonlyArray<{ hostPort: number; protocol: 'tcp' | 'udp' }>;
  healthCheck: HealthCheck | null;
  /** When it last started (monotonic ms); null while it never ran. */
  startedAtMs: number | null;
  /** The health a test set (setHealth), which stands until the next; null: the default. */
  healthSetByTest: ReplicaHealth | null;
  /** The engine's restart policy for it (enginePolicyOf). */
  enginePolicy: 'no' | 'unless-stopped';
  /** What crashes made it print (crash), its last SIMULATED_OUTPUT_MAX_LENGTH characters. */
  output: string;
  /** The mounts and environment it was made with (CreateContainerRequest.inputs); null: none given. */
  inputs: ContainerInputs | null;
}

/** Output kept per container: a bound on what tests make crashes print. */
export const SIMULATED_OUTPUT_MAX_LENGTH = 4096;

type MutableContainer = {
  -readonly [K in keyof SimulatedContainer]: SimulatedContainer[K];
};

/** Engine calls made so far, for benchmarks and for tests that assert nothing was redone. */
export interface SimulatedRuntimeCalls {
  listContainers: number;
  hasImage: number;
  pullImage: number;
  createContainer: number;
  startContainer: number;
  stopContainer: number;
  removeContainer: number;
  removeImage: number;
}

/** Key for the port index: a wildcard address (null) collides with every address on that port. */
const ANY_ADDRESS = '*';
/** The size of a simulated image's one layer, as its pull's progress tells it. */
export const SIMULATED_LAYER_BYTES = 4 * 1024 * 1024;

/** What a call to an engine that is away fails with: as from Docker's socket with no daemon behind it. */
export class SimulatedEngineUnreachableError extends Error {
  readonly code = 'ECONNREFUSED';

  constructor() {
    super('connect ECONNREFUSED /var/run/docker.sock (simulated engine unavailable)');
    this.name = 'SimulatedEngineUnreachableError';
  }
}

export class SimulatedRuntime implements ContainerRuntime, EngineProbe {
  readonly calls: SimulatedRuntimeCalls = {
    listContainers: 0,
    hasImage: 0,
    pullImage: 0,
    createContainer: 0,
    startContainer: 0,
    stopContainer: 0,
    removeContainer: 0,
    removeImage: 0,
  };

  private readonly images: Set<string>;
  private readonly isPullable: (image: string) => boolean;
  private readonly pullDelayMs: number;
  private readonly startFails: (image: string) => string | null;
  private readonly createFails: (spec: CreateContainerRequest['spec']) => string | null;
  private readonly hasImageFails: (image: string) => string | null;
  private readonly removeFails: (id: string) => string | null;

  private readonly byId = new Map<string, MutableContainer>();
  /** Named volumes, by the engine's name: made on a container's first use, as Docker's are. */
  private readonly volumesByName = new Map<string, Record<string, string>>();
  private readonly idByName = new Map<string, string>();
  private readonly idsByNode = new Map<string, Set<string>>();
  /** `protocol/hostPort` -> publish address (or ANY_ADDRESS) -> id of the running container holding it. */
  private readonly portOwners = new Map<string, Map<string, string>>();
  /** Containers the restart policy will bring back on the next tick(). */
  private readonly restarting = new Set<string>();
  private readonly watchers = new Map<string, Set<(event: RuntimeEvent) => void>>();
  private readonly unreachableListeners = new Set<(error: Error) => void>();
  /** False while the engine is away (setEngineAvailable): every call fails, no event arrives. */
  private engineUp = true;
  private idSequence = 0;
  /** Checked containers that turn healthy at this time (monotonic ms), by id; one timer for the earliest. */
  private readonly healthDue = new Map<string, number>();
  private healthTimer: NodeJS.Timeout | null = null;

  constructor(opts: SimulatedRuntimeOptions = {}) {
    this.images = new Set(opts.images ?? []);
    const pullable = opts.pullableImages;
    if (pullable === undefined) this.isPullable = () => true;
    else if (typeof pullable === 'function') this.isPullable = pullable;
    else {
      const allowed = new Set(pullable);
      this.isPullable = (image) => allowed.has(image);
    }
    this.pullDelayMs = opts.pullDelayMs ?? 0;
    this.startFails = opts.startFails ?? (() => null);
    this.createFails = opts.createFails ?? (() => null);
    this.hasImageFails = opts.hasImageFails ?? (() => null);
    this.removeFails = opts.removeFails ?? (() => null);
  }

  async version(): Promise<string> {
    this.reachEngine();
    return 'simulated 1.0';
  }

  async ping(): Promise<void> {
    this.reachEngine();
  }

  /** No filesystem of its own: the engine's storage is unknown. */
  async storageDir(): Promise<string | null> {
    this.reachEngine();
    return null;
  }

  onUnreachable(listener: (error: Error) => void): () => void {
    this.unreachableListeners.add(listener);
    return () => this.unreachableListeners.delete(listener);
  }

  async listContainers(nodeId: string): Promise<ObservedContainer[]> {
    this.calls.listContainers++;
    this.reachEngine();
    const ids = this.idsByNode.get(nodeId);
    if (!ids) return [];
    return [...ids].map((id) => observed(this.byId.get(id)!));
  }

  async hasImage(image: string): Promise<boolean> {
    this.calls.hasImage++;
    this.reachEngine();
    refuseMalformed(image);
    const fault = this.hasImageFails(image);
    if (fault !== null) throw new Error(fault);
    return this.images.has(image);
  }

  async pullImage(image: string, _auth: RegistryAuth | null, signal?: AbortSignal, progress?: PullProgressTally): Promise<void> {
    this.calls.pullImage++;
    signal?.throwIfAborted();
    this.reachEngine();
    refuseMalformed(image);
    // A registry refuses before any layer is downloaded, so a refusal does not wait for the delay.
    if (!this.isPullable(image)) {
      await Promise.resolve();
      throw new Error(`pull access denied for ${image}, repository does not exist or may require 'docker login'`);
    }
    if (this.pullDelayMs > 0) await this.download(image, signal, progress);
    else await Promise.resolve();
    signal?.throwIfAborted();
    this.images.add(image);
  }

  /**
   * A pull's download, over pullDelayMs: one layer of SIMULATED_LAYER_BYTES, its progress told as
   * the engine tells it (a `Downloading` line every tenth of the delay, then `Pull complete`).
   */
  private async download(image: string, signal: AbortSignal | undefined, progress: PullProgressTally | undefined): Promise<void> {
    const id = `layer-of-${image}`;
    const steps = 10;
    progress?.add({ status: 'Pulling fs layer', progressDetail: {}, id });
    for (let step = 1; step <= steps; step++) {
      await sleep(this.pullDelayMs / steps, undefined, signal ? { signal } : {});
      const current = Math.floor((SIMULATED_LAYER_BYTES * step) / steps);
      progress?.add({ status: 'Downloading', progressDetail: { current, total: SIMULATED_LAYER_BYTES }, id });
    }
    progress?.add({ status: 'Pull complete', progressDetail: {}, id });
  }

  async createContainer(req: CreateContainerRequest): Promise<string> {
    this.calls.createContainer++;
    this.reachEngine();
    const holder = this.idByName.get(req.name);
    if (holder !== undefined) {
      throw new Error(
        `Conflict. The container name "/${req.name}" is already in use by container "${holder}". ` +
          'You have to remove (or rename) that container to be able to reuse that name.',
      );
    }
    refuseMalformed(req.spec.image);
    if (!this.images.has(req.spec.image)) throw new Error(`No such image: ${req.spec.image}`);
    const refused = this.createFails(req.spec);
    if (refused !== null) throw new Error(refused);

    // Docker ids are 64 hex digits; a counter keeps runs reproducible from a seed.
    const id = (++this.idSequence).toString(16).padStart(64, '0');
    const container: MutableContainer = {
      id,
      name: req.name,
      replicaId: req.replicaId,
      service: req.service,
      specHash: req.specHash,
      state: 'created',
      exitCode: null,
      restartCount: 0,
      error: null,
      nodeId: req.nodeId,
      image: req.spec.image,
      labels: {
        ...req.spec.labels,
        [LABELS.managed]: 'true',
        [LABELS.nodeId]: req.nodeId,
        [LABELS.service]: req.service,
        [LABELS.replicaId]: req.replicaId,
        [LABELS.specHash]: req.specHash,
        [LABELS.image]: req.spec.image,
        ...(req.previousImage ? { [LABELS.previousImage]: req.previousImage } : {}),
        ...(req.pulledImages?.length ? { [LABELS.pulledImages]: req.pulledImages.join(',') } : {}),
      },
      previousImage: req.previousImage ?? null,
      pulledImages: req.pulledImages ?? [],
      publishAddress: req.publishAddress,
      hostPorts: req.spec.ports.flatMap((p) => (p.hostPort === null ? [] : [{ hostPort: p.hostPort, protocol: p.protocol }])),
      healthCheck: req.spec.healthcheck ?? null,
      startedAtMs: null,
      healthSetByTest: null,
      enginePolicy: enginePolicyOf(req.spec),
      output: '',
      inputs: req.inputs ?? null,
    };
    this.byId.set(id, container);
    this.idByName.set(req.name, id);
    for (const m of req.inputs?.mounts ?? []) if (m.type === 'volume' && !this.volumesByName.has(m.source)) this.volumesByName.set(m.source, { ...m.labels });
    let nodeIds = this.idsByNode.get(req.nodeId);
    if (!nodeIds) this.idsByNode.set(req.nodeId, (nodeIds = new Set()));
    nodeIds.add(id);
    this.emit(container, 'create');
    return id;
  }

  async startContainer(id: string): Promise<StartResult> {
    this.calls.startContainer++;
    this.reachEngine();
    const c = this.mustGet(id);
    // Docker answers "304 not modified" for a running container; restarting is the engine's job.
    if (c.state === 'running' || c.state === 'restarting') return 'already-running';
    if (c.state === 'removing' || c.state === 'dead') throw new Error('container is marked for removal and cannot be started');
    if (c.state === 'paused') throw new Error('cannot start a paused container, try unpause instead');
    // Docker resets the restart count on a start through the API: only policy restarts count.
    c.restartCount = 0;
    const failure = this.tryRun(c);
    if (failure !== null) throw new Error(failure);
    return 'started';
  }

  async containerLogs(id: string, lines: number, maxBytes: number): Promise<string | null> {
    this.reachEngine();
    const c = this.mustGet(id);
    if (c.output === '') return null;
    return tailOf(c.output, lines, maxBytes);
  }

  async stopContainer(id: string, _timeoutS: number): Promise<void> {
    this.calls.stopContainer++;
    this.reachEngine();
    const c = this.byId.get(id);
    if (c) this.stop(c);
  }

  async imagesInUse(): Promise<ImagesInUse> {
    this.reachEngine();
    const images = new Set<string>();
    for (const c of this.byId.values()) {
      images.add(c.image);
      if (c.previousImage) images.add(c.previousImage);
    }
    return { images };
  }

  async removeImage(image: string): Promise<ImageRemoval> {
    this.calls.removeImage++;
    this.reachEngine();
    if (!this.images.has(image)) return 'absent';
    for (const c of this.byId.values()) if (c.image === image) return 'in-use';
    this.images.delete(image);
    return 'removed';
  }

  /** Whether the engine has the image (tests). */
  hasImageNow(image: string): boolean {
    return this.images.has(image);
  }

  async removeContainer(id: string): Promise<void> {
    this.calls.removeContainer++;
    this.reachEngine();
    const refused = this.removeFails(id);
    if (refused !== null) throw new Error(refused);
    const c = this.byId.get(id);
    if (c) this.remove(c);
  }

  async removeServiceVolumes(nodeId: string, service: string): Promise<VolumeRemoval> {
    this.reachEngine();
    const result: VolumeRemoval = { removed: [], inUse: [] };
    for (const [name, labels] of this.volumesByName) {
      if (labels[LABELS.nodeId] !== nodeId || labels[LABELS.service] !== service || labels[VOLUME_LABEL] === undefined) continue;
      const used = [...this.byId.values()].some((c) => c.inputs?.mounts.some((m) => m.type === 'volume' && m.source === name));
      if (used) result.inUse.push(name);
      else {
        this.volumesByName.delete(name);
        result.removed.push(name);
      }
    }
    return result;
  }

  /** The engine's named volumes and their labels (tests). */
  volumes(): Array<{ name: string; labels: Record<string, string> }> {
    return [...this.volumesByName].map(([name, labels]) => ({ name, labels }));
  }

  watchEvents(nodeId: string, onEvent: (event: RuntimeEvent) => void): () => void {
    let set = this.watchers.get(nodeId);
    if (!set) this.watchers.set(nodeId, (set = new Set()));
    set.add(onEvent);
    return () => {
      set.delete(onEvent);
      if (set.size === 0 && this.watchers.get(nodeId) === set) this.watchers.delete(nodeId);
    };
  }

  // ---- Fault injection and inspection (tests only) ----

  /**
   * The engine goes away (false: every call fails as with no daemon on the socket, and events stop)
   * or comes back (true). Its containers are untouched, as with a dockerd restarted under
   * live-restore; each watcher gets a 'resync' on the return, as from a reconnected event stream.
   */
  setEngineAvailable(available: boolean): void {
    if (available === this.engineUp) return;
    this.engineUp = available;
    if (!available) return;
    const watchers = [...this.watchers.values()].flatMap((set) => [...set]);
    queueMicrotask(() => {
      for (const onEvent of watchers) onEvent({ containerId: null, action: 'resync' });
    });
  }

  /**
   * The container's process prints `output` and dies with exitCode. Under the engine's restart
   * policy `unless-stopped` the engine restarts it: it stays 'restarting' (the engine's back-off
   * wait) until the next tick(), which starts it again. Under `no` (a spec with a restart policy:
   * the agent restarts it) it stays exited.
   */
  crash(id: string, exitCode: number, output = ''): void {
    const c = this.mustGet(id);
    if (c.state !== 'running') throw new Error(`simulated: cannot crash container ${id} in state ${c.state}`);
    this.releasePorts(c);
    c.exitCode = exitCode;
    c.output = (c.output + output).slice(-SIMULATED_OUTPUT_MAX_LENGTH);
    if (c.enginePolicy === 'no') {
      c.state = 'exited';
      this.emit(c, 'die');
      return;
    }
    c.state = 'restarting';
    c.restartCount++;
    this.restarting.add(id);
    this.emit(c, 'die');
  }

  /**
   * One step of the engine's restart policy: every 'restarting' container starts again. A
   * restart that fails (port taken, start error) leaves it exited, as Docker gives up on a policy
   * restart whose start fails. Returns how many containers were restarted.
   */
  tick(): number {
    let restarted = 0;
    for (const id of this.restarting) {
      this.restarting.delete(id);
      const c = this.byId.get(id);
      if (!c || c.state !== 'restarting') continue;
      c.state = 'exited';
      if (this.tryRun(c) === null) restarted++;
    }
    return restarted;
  }

  /**
   * Like `docker kill`: the process gets SIGKILL and exits 137. The engine counts a kill through
   * its API as stopped by a user, so the restart policy leaves it exited (even `always`).
   */
  kill(id: string): void {
    const c = this.mustGet(id);
    if (c.state !== 'running') throw new Error(`simulated: cannot kill container ${id} in state ${c.state}`);
    this.releasePorts(c);
    c.state = 'exited';
    c.exitCode = 137;
    this.emit(c, 'kill');
    this.emit(c, 'die');
  }

  /** Like `docker stop` by an operator: exited, and the restart policy leaves it stopped. */
  stopExternally(id: string): void {
    this.stop(this.mustGet(id));
  }

  /** Like `docker rm -f` by an operator. */
  removeExternally(id: string): void {
    this.remove(this.mustGet(id));
  }

  /**
   * What the container's health check says from now on (null: back to the default, healthy one
   * interval after its start), as from the engine's own check; a 'health_status' event follows.
   */
  setHealth(id: string, health: ReplicaHealth | null): void {
    const c = this.mustGet(id);
    if (!c.healthCheck) throw new Error(`simulated: container ${id} has no health check`);
    c.healthSetByTest = health;
    this.emit(c, 'health_status');
  }

  /** Every container in the engine, all node ids, as copies. */
  containers(): SimulatedContainer[] {
    return [...this.byId.values()].map((c) => ({ ...c, labels: { ...c.labels }, hostPorts: [...c.hostPorts] }));
  }

  // ---- Internals ----

  /** Returns when the engine is there; else throws (so the async call rejects), telling those who watch for an engine away. */
  private reachEngine(): void {
    if (this.engineUp) return;
    const error = new SimulatedEngineUnreachableError();
    // After the caller hears of it, as from a socket.
    const listeners = [...this.unreachableListeners];
    queueMicrotask(() => listeners.forEach((listener) => listener(error)));
    throw error;
  }

  private mustGet(id: string): MutableContainer {
    const c = this.byId.get(id);
    if (!c) throw new Error(`No such container: ${id}`);
    return c;
  }

  /** Starts c unless its image fails or a port is taken; returns the engine's error text or null. */
  private tryRun(c: MutableContainer): string | null {
    const failure = this.startFails(c.image) ?? this.portConflict(c);
    if (failure !== null) {
      // Docker records the error and exit code 128 on the container and leaves its state alone.
      c.error = failure;
      c.exitCode = 128;
      return failure;
    }
    this.claimPorts(c);
    c.state = 'running';
    c.error = null;
    c.startedAtMs = performance.now();
    if (c.healthCheck) this.healthTurnsDue(c.id, c.startedAtMs + c.healthCheck.intervalMs);
    this.emit(c, 'start');
    return null;
  }

  private healthTurnsDue(id: string, atMs: number): void {
    this.healthDue.set(id, atMs);
    this.armHealthTimer();
  }

  /** One timer for the earliest default health change of the whole engine. */
  private armHealthTimer(): void {
    if (this.healthTimer) clearTimeout(this.healthTimer);
    this.healthTimer = null;
    if (this.healthDue.size === 0) return;
    let earliestMs = Infinity;
    for (const atMs of this.healthDue.values()) earliestMs = Math.min(earliestMs, atMs);
    this.healthTimer = setTimeout(() => this.healthTurns(), Math.max(0, earliestMs - performance.now()));
    this.healthTimer.unref();
  }

  private healthTurns(): void {
    this.healthTimer = null;
    const nowMs = performance.now();
    for (const [id, atMs] of this.healthDue) {
      if (atMs > nowMs) continue;
      this.healthDue.delete(id);
      const c = this.byId.get(id);
      if (c?.state === 'running' && c.healthSetByTest === null) this.emit(c, 'health_status');
    }
    this.armHealthTimer();
  }

  private stop(c: MutableContainer): void {
    this.restarting.delete(c.id);
    if (c.state !== 'running' && c.state !== 'restarting' && c.state !== 'paused') return;
    const wasRunning = c.state !== 'restarting';
    this.releasePorts(c);
    c.state = 'exited';
    // Our images (busybox httpd) exit 0 on SIGTERM within the stop timeout, never reaching SIGKILL (137).
    if (wasRunning) c.exitCode = 0;
    if (wasRunning) this.emit(c, 'die');
    this.emit(c, 'stop');
  }

  private remove(c: MutableContainer): void {
    const wasRunning = c.state === 'running' || c.state === 'paused';
    this.releasePorts(c);
    this.restarting.delete(c.id);
    this.healthDue.delete(c.id);
    this.byId.delete(c.id);
    this.idByName.delete(c.name);
    const nodeIds = this.idsByNode.get(c.nodeId);
    nodeIds?.delete(c.id);
    if (nodeIds?.size === 0) this.idsByNode.delete(c.nodeId);
    if (wasRunning) this.emit(c, 'die');
    this.emit(c, 'destroy');
  }

  private portConflict(c: MutableContainer): string | null {
    const address = c.publishAddress ?? ANY_ADDRESS;
    for (const p of c.hostPorts) {
      const owners = this.portOwners.get(`${p.protocol}/${p.hostPort}`);
      if (!owners) continue;
      const taken = address === ANY_ADDRESS ? owners.size > 0 : owners.has(address) || owners.has(ANY_ADDRESS);
      if (taken) {
        const shown = c.publishAddress ?? '0.0.0.0';
        return `driver failed programming external connectivity on endpoint ${c.name} (${c.id}): Bind for ${shown}:${p.hostPort} failed: port is already allocated`;
      }
    }
    return null;
  }

  private claimPorts(c: MutableContainer): void {
    const address = c.publishAddress ?? ANY_ADDRESS;
    for (const p of c.hostPorts) {
      const key = `${p.protocol}/${p.hostPort}`;
      let owners = this.portOwners.get(key);
      if (!owners) this.portOwners.set(key, (owners = new Map()));
      owners.set(address, c.id);
    }
  }

  private releasePorts(c: MutableContainer): void {
    const address = c.publishAddress ?? ANY_ADDRESS;
    for (const p of c.hostPorts) {
      const key = `${p.protocol}/${p.hostPort}`;
      const owners = this.portOwners.get(key);
      if (owners?.get(address) !== c.id) continue;
      owners.delete(address);
      if (owners.size === 0) this.portOwners.delete(key);
    }
  }

  /** Delivered on a microtask, like events arriving on Docker's stream after the call returned. */
  private emit(c: MutableContainer, action: string): void {
    // No stream while the engine is away: what happened meanwhile is read at the resync.
    if (!this.engineUp) return;
    const set = this.watchers.get(c.nodeId);
    if (!set || set.size === 0) return;
    const event: RuntimeEvent = { containerId: c.id, action };
    queueMicrotask(() => {
      // Read the set at delivery time, so a watcher that unsubscribed meanwhile gets nothing.
      for (const onEvent of set) onEvent(event);
    });
  }
}

/**
 * The grammar of an image reference as the engine parses it (distribution's reference package),
 * without the length limits: [domain[:port]/]path[/path...][:tag][@digest], paths lowercase.
 */
const DOMAIN_COMPONENT = '(?:[a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9])';
const DOMAIN = `${DOMAIN_COMPONENT}(?:\\.${DOMAIN_COMPONENT})*(?::[0-9]+)?`;
const PATH_COMPONENT = '[a-z0-9]+(?:(?:[._]|__|[-]*)[a-z0-9]+)*';
const TAG = '[\\w][\\w.-]{0,127}';
const DIGEST = '[A-Za-z][A-Za-z0-9]*(?:[-_+.][A-Za-z][A-Za-z0-9]*)*:[0-9A-Fa-f]{32,}';
const REFERENCE = new RegExp(`^(?:${DOMAIN}/)?${PATH_COMPONENT}(?:/${PATH_COMPONENT})*(?::${TAG})?(?:@${DIGEST})?$`);

/** The engine's answer (HTTP 400) to a malformed reference, on image inspect, pull and create alike. */
function refuseMalformed(image: string): void {
  if (REFERENCE.test(image)) {
    // A first component is a registry only with a dot, a port or as localhost; else it is a path.
    const slash = image.indexOf('/');
    const first = slash < 0 ? '' : image.slice(0, slash);
    const isDomain = first.includes('.') || first.includes(':') || first === 'localhost';
    if (slash < 0 || isDomain || new RegExp(`^${PATH_COMPONENT}$`).test(first)) return;
    throw new Error('invalid reference format: repository name must be lowercase');
  }
  const lowercased = image.toLowerCase();
  const onlyCase = lowercased !== image && REFERENCE.test(lowercased.replace(/@.*$/, ''));
  throw new Error(onlyCase ? 'invalid reference format: repository name must be lowercase' : 'invalid reference format');
}

function observed(c: MutableContainer): ObservedContainer {
  const o: ObservedContainer = {
    id: c.id,
    name: c.name,
    replicaId: c.replicaId,
    service: c.service,
    specHash: c.specHash,
    state: c.state,
    exitCode: c.exitCode,
    restartCount: c.restartCount,
    error: c.error,
    image: c.image,
    previousImage: c.previousImage,
    pulledImages: c.pulledImages,
  };
  const bindSources = (c.inputs?.mounts ?? []).flatMap((m) => (m.type === 'bind' ? [m.source] : []));
  if (bindSources.length > 0) o.bindSources = bindSources;
  if (c.healthCheck) {
    o.healthCheck = c.healthCheck;
    o.engineHealth = c.state === 'running' ? simulatedHealth(c) : null;
  }
  return o;
}

function simulatedHealth(c: MutableContainer): ReplicaHealth {
  if (c.healthSetByTest) return c.healthSetByTest;
  const ranMs = c.startedAtMs === null ? 0 : performance.now() - c.startedAtMs;
  return ranMs >= c.healthCheck!.intervalMs ? { status: 'healthy', output: null } : { status: 'starting', output: null };
}

/** Device facts for a simulated node: a modest 4-core, 8 GiB edge box. */
export function simulatedFacts(hostname: string, overrides: Partial<NodeFacts> = {}): NodeFacts {
  return {
    hostname,
    os: 'linux',
    osRelease: 'sim',
    arch: 'x64',
    cpus: 4,
    memoryBytes: 8 * 1024 ** 3,
    diskBytes: 64 * 1024 ** 3,
    diskFreeBytes: 32 * 1024 ** 3,
    agentVersion: TETHER_VERSION,
    runtime: 'simulated',
    ...overrides,
  };
}
