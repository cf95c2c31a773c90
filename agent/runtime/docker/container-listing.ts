/**
 * The node's containers as the engine has them, read back from their labels (container-runtime.ts
 * LABELS), with what only an inspect tells (exit code, restart count, start error, health,
 * address). Inspects are cached per container and dropped when an event says the container
 * changed: see list().
 */
import type { HealthCheck } from '../../../shared/container-spec.js';
import type { ReplicaHealth } from '../../../shared/protocol.js';
import { LABELS, type EngineState, type ObservedContainer } from '../container-runtime.js';
import { engineHealthOf, type DockerHealthState } from './engine-health-checks.js';
import { EngineTimeoutError } from '../engine-deadlines.js';
import { healthCheckOfLabel } from '../health-check-label.js';
import type { EngineClient } from './engine-client.js';
import { engineError, engineMessage, isNotFound } from './engine-errors.js';

/** How long a running container's inspected restart count is trusted (see list). */
const RUNNING_INSPECT_TTL_MS = 30_000;
/** Inspects in flight at once: a node with hundreds of exited containers must not open hundreds of sockets. */
const INSPECT_CONCURRENCY = 8;

const ENGINE_STATES: ReadonlySet<string> = new Set<EngineState>(['created', 'running', 'restarting', 'paused', 'exited', 'dead', 'removing']);

/** The fields of a GET /containers/json entry the runtime reads. */
export interface ListedContainer {
  Id: string;
  Names?: string[];
  State?: string;
  Labels?: Record<string, string> | null;
  /** The image as the container was created with (an id once its tag moved elsewhere). */
  Image?: string;
  Mounts?: Array<{ Type?: string; Source?: string }> | null;
}

/** The fields of GET /containers/{id}/json the runtime reads. */
interface ContainerInspect {
  RestartCount?: number;
  State?: { Status?: string; ExitCode?: number; Error?: string; Health?: DockerHealthState | null };
  NetworkSettings?: { IPAddress?: string; Networks?: Record<string, { IPAddress?: string } | null> | null } | null;
}

interface InspectedState {
  state: EngineState;
  exitCode: number | null;
  restartCount: number | null;
  error: string | null;
  /** The engine's own health of the container (exec checks); null when it keeps none. */
  engineHealth: ReplicaHealth | null;
  /** The container's address on its network, for the agent's probes; null when it has none. */
  address: string | null;
  atMs: number;
  /** The event sequence number when the inspect was asked for: a later event makes it stale. */
  eventSeq: number;
}

function toEngineState(text: string | undefined): EngineState {
  return text !== undefined && ENGINE_STATES.has(text) ? (text as EngineState) : 'dead';
}

async function mapLimit<T, R>(items: readonly T[], limit: number, fn: (item: T) => Promise<R>): Promise<R[]> {
  const out: R[] = new Array<R>(items.length);
  let next = 0;
  const worker = async (): Promise<void> => {
    while (next < items.length) {
      const i = next++;
      out[i] = await fn(items[i]!);
    }
  };
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, worker));
  return out;
}

export class ContainerListing {
  /** Last inspect result per node id and container id: spares re-inspecting healthy running containers. */
  private readonly inspectedByNode = new Map<string, Map<string, InspectedState>>();
  /**
   * Sequence number of the last lifecycle event per node id and container id. The engine sends
   * `die` before its listing catches up (the list reads a copy of the state saved after the event),
   * so a container listed 'running' that had an event since its last inspect is inspected again:
   * the inspect waits for the state the event reported. Kept to the listed containers.
   */
  private readonly lastEventByNode = new Map<string, Map<string, number>>();
  private eventSeq = 0;

  constructor(private readonly engine: EngineClient) {}

  /**
   * The list call has only State and a Status text; exit code, restart count and start error need
   * an inspect per container. Inspecting every container on every list would cost one engine
   * round trip per replica each time the agent looks, so:
   * - containers that are not running (created, exited, restarting, dead...) are always inspected:
   *   they are few on a healthy node, and their exit code and error are what the agent acts on;
   * - running ones are inspected when first seen and then at most every RUNNING_INSPECT_TTL_MS,
   *   since only their restart count can change (a crash loop is caught while it is restarting).
   * The engine resets ExitCode to 0 when it restarts a container, so a running container reports
   * the exit code last seen for it here (null if it never exited while we looked).
   */
  async list(nodeId: string): Promise<ObservedContainer[]> {
    const { engine } = this;
    let infos: ListedContainer[];
    try {
      infos = await engine.call('list containers', engine.deadlines.queryMs, (abortSignal) =>
        engine.docker.listContainers({ all: true, filters: { label: [`${LABELS.nodeId}=${nodeId}`] }, abortSignal }),
      );
    } catch (err) {
      throw engineError('list containers', err);
    }
    const nowMs = engine.nowMs();
    const previous = this.inspectedByNode.get(nodeId) ?? new Map<string, InspectedState>();
    const lastEvent = this.lastEventByNode.get(nodeId);
    const inspected = new Map<string, InspectedState>();
    // Once one inspect goes unanswered, the engine is hung: the rest of this listing asks no more,
    // or a node of 100 containers would wait out 100 deadlines.
    let hung: EngineTimeoutError | null = null;
    const results = await mapLimit(infos, INSPECT_CONCURRENCY, async (info): Promise<ObservedContainer | null> => {
      const labels = info.Labels ?? {};
      const service = labels[LABELS.service];
      const replicaId = labels[LABELS.replicaId];
      const specHash = labels[LABELS.specHash];
      if (labels[LABELS.managed] === undefined || labels[LABELS.nodeId] !== nodeId) return null;
      if (service === undefined || replicaId === undefined || specHash === undefined) return null;
      const listedState = toEngineState(info.State);
      const cached = previous.get(info.Id);
      const cacheFresh =
        cached !== undefined &&
        cached.state === 'running' &&
        nowMs - cached.atMs < RUNNING_INSPECT_TTL_MS &&
        (lastEvent?.get(info.Id) ?? 0) <= cached.eventSeq;
      let observed: InspectedState | null;
      try {
        if (listedState === 'running' && cacheFresh) observed = cached;
        else if (hung !== null) throw new EngineTimeoutError(`inspect container ${info.Id.slice(0, 12)}`, hung.deadlineMs, `not asked: ${hung.message}`);
        else observed = await this.inspectState(info.Id, cached);
      } catch (err) {
        if (err instanceof EngineTimeoutError) hung ??= err;
        // One container the engine will not inspect is that container's problem, not the node's:
        // it is shown with the error (its state unconfirmed: the listing may lag its death) and
        // inspected again next time. The last good inspect stays cached, so its restart count
        // goes on counting from there; without one the count is unknown, never a guessed 0 that
        // would read as a reset and count the engine's whole count again at the next inspect.
        if (cached) inspected.set(info.Id, cached);
        const unconfirmed: InspectedState = {
          state: listedState,
          exitCode: cached?.exitCode ?? null,
          restartCount: cached?.restartCount ?? null,
          error: engineMessage(err),
          engineHealth: cached?.engineHealth ?? null,
          address: cached?.address ?? null,
          atMs: nowMs,
          eventSeq: -1,
        };
        return observedOf(info, replicaId, service, specHash, unconfirmed);
      }
      if (observed === null) return null; // removed between list and inspect
      inspected.set(info.Id, observed);
      return observedOf(info, replicaId, service, specHash, observed);
    });
    // Replaced, not merged: containers that are gone drop out of the cache.
    this.inspectedByNode.set(nodeId, inspected);
    if (lastEvent) {
      const listed = new Set(infos.map((i) => i.Id));
      for (const id of lastEvent.keys()) if (!listed.has(id)) lastEvent.delete(id);
      // Events of containers created after the list meet no cache entry: they are inspected anyway.
    }
    return results.filter((c): c is ObservedContainer => c !== null);
  }

  /** A lifecycle event of one of the node's containers: its cached inspect no longer describes it. */
  noteEvent(nodeId: string, containerId: string): void {
    let lastEvent = this.lastEventByNode.get(nodeId);
    if (!lastEvent) this.lastEventByNode.set(nodeId, (lastEvent = new Map()));
    lastEvent.set(containerId, ++this.eventSeq);
  }

  /** Events may have been missed (an event stream was just (re)established): every cached inspect of the node is stale. */
  noteEventsMissed(nodeId: string): void {
    for (const containerId of this.inspectedByNode.get(nodeId)?.keys() ?? []) this.noteEvent(nodeId, containerId);
  }

  /**
   * The container was started through the API: the engine has reset its RestartCount, so the
   * cached inspect's count is from before, and a failed inspect next would report it, counted
   * again on top of the agent's own start.
   */
  forget(containerId: string): void {
    for (const inspected of this.inspectedByNode.values()) inspected.delete(containerId);
  }

  private async inspectState(id: string, previous: InspectedState | undefined): Promise<InspectedState | null> {
    const { engine } = this;
    const eventSeq = this.eventSeq;
    const what = `inspect container ${id.slice(0, 12)}`;
    let info: ContainerInspect;
    try {
      info = await engine.call(what, engine.deadlines.queryMs, (abortSignal) => engine.docker.getContainer(id).inspect({ abortSignal }));
    } catch (err) {
      if (isNotFound(err)) return null;
      throw engineError(what, err);
    }
    const state = toEngineState(info.State?.Status);
    const engineExitCode = info.State?.ExitCode ?? null;
    const exitCode =
      state === 'running' || state === 'paused'
        ? (previous?.exitCode ?? null) // the engine zeroes ExitCode on every (re)start
        : state === 'created' && engineExitCode === 0
          ? null // never ran
          : engineExitCode;
    return {
      state,
      exitCode,
      restartCount: info.RestartCount ?? 0,
      error: info.State?.Error ? info.State.Error : null,
      engineHealth: engineHealthOf(info.State?.Health),
      address: addressOf(info),
      atMs: engine.nowMs(),
      eventSeq,
    };
  }
}

function observedOf(info: ListedContainer, replicaId: string, service: string, specHash: string, observed: InspectedState): ObservedContainer {
  const healthCheck: HealthCheck | null = healthCheckOfLabel(info.Labels?.[LABELS.healthCheck]);
  const container: ObservedContainer = {
    id: info.Id,
    name: (info.Names?.[0] ?? info.Id).replace(/^\//, ''),
    replicaId,
    service,
    specHash,
    state: observed.state,
    exitCode: observed.exitCode,
    restartCount: observed.restartCount,
    error: observed.error,
  };
  const image = info.Labels?.[LABELS.image] ?? info.Image;
  if (image !== undefined) container.image = image;
  const previousImage = info.Labels?.[LABELS.previousImage];
  if (previousImage !== undefined) container.previousImage = previousImage;
  const pulledImages = info.Labels?.[LABELS.pulledImages];
  if (pulledImages) container.pulledImages = pulledImages.split(',');
  const bindSources = (info.Mounts ?? []).flatMap((m) => (m.Type === 'bind' && m.Source ? [m.Source] : []));
  if (bindSources.length > 0) container.bindSources = bindSources;
  // Only what a check needs, and only for a container that has one.
  if (healthCheck) {
    container.healthCheck = healthCheck;
    // The engine's health counts for the checks it runs: an image's own HEALTHCHECK says nothing of ours.
    container.engineHealth = healthCheck.type === 'exec' ? observed.engineHealth : null;
    container.address = observed.address;
  }
  return container;
}

/**
 * The container's address for the agent's probes: the default bridge's, else the first network's
 * that has one (a container on a user network has no top-level IPAddress).
 */
function addressOf(info: ContainerInspect): string | null {
  const settings = info.NetworkSettings;
  if (settings?.IPAddress) return settings.IPAddress;
  for (const network of Object.values(settings?.Networks ?? {})) if (network?.IPAddress) return network.IPAddress;
  return null;
}
