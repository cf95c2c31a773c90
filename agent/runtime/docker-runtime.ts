/**
 * The real container runtime: a Docker engine reached over its API socket with docker-modem, the
 * transport dockerode is built on. Not dockerode itself: it loads gRPC and protobuf at import
 * (about 10 MiB more RSS than docker-modem) for API surface the agent never uses.
 */
import type { IncomingMessage } from 'node:http';
import type { Readable } from 'node:stream';
import { performance } from 'node:perf_hooks';
import DockerModem from 'docker-modem';
import { Backoff } from '../../shared/backoff.js';
import { NODE_FACT_MAX_LENGTH } from '../../shared/protocol.js';
import type { HealthCheck, RegistryAuth } from '../../shared/container-spec.js';
import type { ReplicaHealth } from '../../shared/protocol.js';
import {
  enginePolicyOf,
  LABELS,
  type ContainerRuntime,
  type CreateContainerRequest,
  type EngineProbe,
  type EngineState,
  type ImageRemoval,
  type ImagesInUse,
  type ObservedContainer,
  type RuntimeEvent,
  type StartResult,
  type VolumeRemoval,
} from './container-runtime.js';
import { DockerLogTail } from './docker-logs.js';
import { engineMountOf, type DockerMount } from './docker-mounts.js';
import { VOLUME_LABEL } from './spec-mounts.js';
import type { PullProgressTally } from './pull-progress.js';
import { dockerHealthConfigOf, engineHealthOf, type DockerHealthConfig, type DockerHealthState } from './docker-health.js';
import { healthCheckLabel, healthCheckOfLabel } from './health-check-label.js';
import { DEFAULT_ENGINE_DEADLINES, EngineTimeoutError, type EngineDeadlines } from './engine-deadlines.js';
import type { Logger } from '../../shared/logger.js';

export interface DockerRuntimeOptions {
  socketPath?: string;
  logger?: Pick<Logger, 'warn'>;
  /**
   * The agent's own credentials, keyed by registry host[:port] as in an image reference
   * (`127.0.0.1:5001`, `registry.example.com`, `docker.io`): used for a pull whose spec carries none.
   */
  registryAuth?: Record<string, { username: string; password: string }>;
  /** The engine connection; tests give a fake one to play an engine exactly (a lagging listing, a flaky inspect). */
  modem?: Pick<DockerModem, 'dial'>;
  /** How long each kind of engine call may take (see EngineDeadlines); tests shorten them. */
  deadlines?: Partial<EngineDeadlines>;
  /**
   * A monotonic clock in ms, for the runtime's own bookkeeping (how old a cached inspect is). Not
   * the wall clock: a device without a real-time clock jumps years when it first syncs.
   */
  monotonicNowMs?: () => number;
}

/** Reconnect delays of the event stream: quick after a blip, at most this slow while the engine is down. */
const EVENTS_BACKOFF = { baseMs: 250, capMs: 10_000 } as const;
/** A stream that stayed up this long was healthy: its end starts the backoff over. */
const EVENTS_HEALTHY_AFTER_MS = 30_000;
/** How long a running container's inspected restart count is trusted (see listContainers). */
const RUNNING_INSPECT_TTL_MS = 30_000;
/** Inspects in flight at once: a node with hundreds of exited containers must not open hundreds of sockets. */
const INSPECT_CONCURRENCY = 8;

/**
 * Statuses each kind of call accepts; any other rejects with docker-modem's error. 200 also where
 * the engine answers 201 or 204, as dockerode does: proxies in front of the engine may.
 */
const OK = { 200: true };
const OK_CREATED = { 200: true, 201: true };
const OK_NO_CONTENT = { 200: true, 204: true };

const ENGINE_STATES: ReadonlySet<string> = new Set<EngineState>(['created', 'running', 'restarting', 'paused', 'exited', 'dead', 'removing']);

/** An engine refusal with its HTTP status, so callers can tell "missing" from "broken". */
export class DockerEngineError extends Error {
  constructor(
    message: string,
    readonly statusCode: number | null,
    options?: { cause?: unknown },
  ) {
    super(message, options);
    this.name = 'DockerEngineError';
  }
}

/** What docker-modem rejects with when the engine answers a status the call does not accept. */
interface ModemError {
  statusCode?: number;
  json?: unknown;
  message?: string;
}

function statusCodeOf(err: unknown): number | null {
  const code = (err as ModemError | null)?.statusCode;
  return typeof code === 'number' ? code : null;
}

/**
 * The engine's own words for a failure. docker-modem puts them in `json.message` for plain calls,
 * but for streaming calls (pull, events) only into its message, behind "(HTTP code 404) unexpected - ".
 */
export function engineMessage(err: unknown): string {
  const e = err as ModemError | null;
  const json = e?.json;
  if (json && typeof json === 'object' && typeof (json as { message?: unknown }).message === 'string') {
    return (json as { message: string }).message.trim();
  }
  if (typeof json === 'string' && json.trim() !== '') return json.trim();
  const text = typeof e?.message === 'string' ? e.message : String(err);
  return text.replace(/^\(HTTP code \d+\) [^-]*- /, '').trim();
}

/** Socket errors that mean no engine is there to answer (stopped, socket missing or refused). */
const UNREACHABLE_CODES: ReadonlySet<string> = new Set(['ENOENT', 'ECONNREFUSED', 'ECONNRESET', 'EPIPE', 'EACCES', 'ETIMEDOUT', 'ENOTCONN']);

/**
 * Whether a failed call says the engine itself is away: no connection, or no answer in time. An
 * HTTP answer, even a 500, came from an engine that is there.
 */
export function isEngineUnreachable(err: unknown): boolean {
  if (err instanceof EngineTimeoutError) return true;
  if (statusCodeOf(err) !== null) return false;
  const code = (err as { code?: unknown } | null)?.code;
  return typeof code === 'string' && UNREACHABLE_CODES.has(code);
}

function engineError(what: string, err: unknown): DockerEngineError | EngineTimeoutError {
  if (err instanceof EngineTimeoutError) return err; // names its call already
  return new DockerEngineError(`${what}: ${engineMessage(err)}`, statusCodeOf(err), { cause: err });
}

/**
 * Splits a stream of newline-delimited JSON (events, pull progress) into values. Chunks may end
 * mid-line or carry several lines; a line that does not parse is reported, not thrown, so one bad
 * line cannot kill the stream handler.
 */
export class JsonLineReader {
  private buffered = '';

  push(chunk: string, onValue: (value: unknown) => void, onBadLine: (line: string) => void): void {
    this.buffered += chunk;
    let newline: number;
    while ((newline = this.buffered.indexOf('\n')) >= 0) {
      const line = this.buffered.slice(0, newline).trim();
      this.buffered = this.buffered.slice(newline + 1);
      if (line === '') continue;
      let value: unknown;
      try {
        value = JSON.parse(line);
      } catch {
        onBadLine(line);
        continue;
      }
      onValue(value);
    }
  }

  /** Whatever arrived after the last newline (a stream should not end with one pending). */
  get pending(): string {
    return this.buffered;
  }
}

/** Registry host of an image reference, as the engine resolves it (Docker Hub when none is named). */
export function registryHostOf(image: string): string {
  const slash = image.indexOf('/');
  if (slash < 0) return 'docker.io';
  const first = image.slice(0, slash);
  return first.includes('.') || first.includes(':') || first === 'localhost' ? first : 'docker.io';
}

/**
 * Repository and tag (or digest) of an image reference, for the pull's fromImage and tag, split as
 * dockerode splits them: a last colon followed by a slash is a registry port, not a tag.
 */
function splitRepositoryTag(image: string): { repository: string; tag: string } {
  const at = image.indexOf('@');
  const separator = at >= 0 ? at : image.lastIndexOf(':');
  if (separator < 0 || image.includes('/', separator)) return { repository: image, tag: 'latest' };
  return { repository: image.slice(0, separator), tag: image.slice(separator + 1) || 'latest' };
}

function serverAddressFor(image: string): string {
  const host = registryHostOf(image);
  // The engine keys Docker Hub credentials by this legacy URL, not by the host name.
  return host === 'docker.io' ? 'https://index.docker.io/v1/' : host;
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

/** Each path segment of an image reference percent-encoded; the slashes stay, as the engine's route expects. */
function encodeImagePath(image: string): string {
  return image.split('/').map(encodeURIComponent).join('/');
}

function isNotFound(err: unknown): boolean {
  return statusCodeOf(err) === 404;
}

/** The fields of a GET /containers/json entry the runtime reads. */
interface ListedContainer {
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

/** The body of POST /containers/create, as far as the runtime sets it. */
/**
 * Every container's logs capped at 3 files of 10 MB, compressed when rotated (the engine's `local`
 * driver, which `docker logs` reads as it does json-file): a device's flash wears out under
 * logs that grow without end, and the engine's default (json-file) never rotates.
 */
export const CONTAINER_LOG_CONFIG = { Type: 'local', Config: { 'max-size': '10m', 'max-file': '3' } } as const satisfies {
  Type: string;
  Config: Record<string, string>;
};

interface ContainerCreateBody {
  Image: string;
  Cmd?: string[];
  Env: string[];
  Labels: Record<string, string>;
  ExposedPorts: Record<string, object>;
  Healthcheck?: DockerHealthConfig;
  HostConfig: {
    PortBindings: Record<string, Array<{ HostIp: string; HostPort: string }>>;
    RestartPolicy: { Name: string };
    Init: boolean;
    LogConfig: { Type: string; Config: Record<string, string> };
    NanoCpus?: number;
    Memory?: number;
    Mounts?: DockerMount[];
  };
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

export class DockerRuntime implements ContainerRuntime, EngineProbe {
  private readonly modem: Pick<DockerModem, 'dial'>;
  private readonly logger: Pick<Logger, 'warn'> | undefined;
  /** Host -> credentials, in a Map so that a host named like an Object property finds nothing. */
  private readonly registryAuth: ReadonlyMap<string, { username: string; password: string }>;
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
  private readonly deadlines: Readonly<EngineDeadlines>;
  private readonly nowMs: () => number;
  private readonly unreachableListeners = new Set<(error: Error) => void>();
  /** Event streams waiting out a reconnect delay: the engine's return reconnects them at once. */
  private readonly eventReconnects = new Set<() => void>();
  /** The last ping failed: the next that answers is the engine's return. */
  private lastPingFailed = false;

  constructor(opts: DockerRuntimeOptions = {}) {
    this.modem = opts.modem ?? new DockerModem({ socketPath: opts.socketPath ?? '/var/run/docker.sock' });
    this.logger = opts.logger;
    this.deadlines = { ...DEFAULT_ENGINE_DEADLINES, ...opts.deadlines };
    this.nowMs = opts.monotonicNowMs ?? (() => performance.now());
    this.registryAuth = new Map(
      Object.entries(opts.registryAuth ?? {}).map(([host, c]) => [host, { username: c.username, password: c.password }]),
    );
  }

  /**
   * One engine API call: the parsed JSON answer, or the response itself with isStream (then the
   * deadline covers the answer's start; the caller watches the stream). Past deadlineMs the request
   * is destroyed and the call rejects with an EngineTimeoutError naming `what`; the caller's
   * abortSignal, if any, also settles it at once, whatever the connection does.
   */
  private call<T>(what: string, deadlineMs: number | null, options: DockerModem.DialOptions): Promise<T> {
    return new Promise<T>((resolve, reject) => {
      const outer = options.abortSignal;
      const controller = new AbortController();
      let settled = false;
      const settle = (err: unknown, result?: T, byCaller = false): void => {
        if (settled) return;
        settled = true;
        if (timer !== null) clearTimeout(timer);
        if (err) reject(err);
        else resolve(result as T);
        // Every call passes here: a failure that says the engine is away is told to those watching
        // (a caller's own abort is no news about the engine).
        if (err && !byCaller && isEngineUnreachable(err)) this.reportUnreachable(err as Error);
      };
      // Destroys the request (and its socket): an abandoned call holds nothing open.
      const abandon = (reason: unknown, byCaller = false): void => {
        if (!controller.signal.aborted) controller.abort(reason);
        settle(reason, undefined, byCaller);
      };
      const timer = deadlineMs === null ? null : setTimeout(() => abandon(new EngineTimeoutError(what, deadlineMs)), deadlineMs);
      // Linked for the request's whole life: the caller's abort also ends a stream already answering.
      const onOuterAbort = (): void => abandon(outer?.reason ?? new Error(`${what} aborted`), true);
      if (outer?.aborted) return onOuterAbort();
      outer?.addEventListener('abort', onOuterAbort, { once: true });
      this.modem.dial({ ...options, abortSignal: controller.signal }, (err, result) => settle(err ?? null, result as T));
    });
  }

  private reportUnreachable(error: Error): void {
    for (const listener of this.unreachableListeners) {
      try {
        listener(error);
      } catch (err) {
        this.logger?.warn({ err }, 'engine availability listener threw');
      }
    }
  }

  onUnreachable(listener: (error: Error) => void): () => void {
    this.unreachableListeners.add(listener);
    return () => this.unreachableListeners.delete(listener);
  }

  async ping(): Promise<void> {
    try {
      await this.call('docker ping', this.deadlines.pingMs, { path: '/_ping', method: 'GET', statusCodes: OK });
    } catch (err) {
      this.lastPingFailed = true;
      throw engineError('docker ping', err);
    }
    // The engine is back: event streams waiting to reconnect need not wait out their backoff. Only
    // on a return: an engine that answers pings but ends every stream at once would otherwise
    // have each ping reconnect them all, past their backoff, over and over.
    if (!this.lastPingFailed) return;
    this.lastPingFailed = false;
    for (const reconnect of [...this.eventReconnects]) reconnect();
  }

  async storageDir(): Promise<string | null> {
    let info: { DockerRootDir?: unknown };
    try {
      info = await this.call<{ DockerRootDir?: unknown }>('docker info', this.deadlines.queryMs, { path: '/info', method: 'GET', statusCodes: OK });
    } catch (err) {
      throw engineError('docker info', err);
    }
    return typeof info.DockerRootDir === 'string' && info.DockerRootDir.startsWith('/') ? info.DockerRootDir : null;
  }

  async version(): Promise<string> {
    try {
      const v = await this.call<{ Version?: string }>('docker version', this.deadlines.queryMs, { path: '/version', method: 'GET', statusCodes: OK });
      return `docker ${v.Version}`.slice(0, NODE_FACT_MAX_LENGTH.runtime);
    } catch (err) {
      throw engineError('docker version', err);
    }
  }

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
  async listContainers(nodeId: string): Promise<ObservedContainer[]> {
    let infos: ListedContainer[];
    try {
      infos = await this.call<ListedContainer[]>('list containers', this.deadlines.queryMs, {
        path: '/containers/json?',
        method: 'GET',
        options: { all: true, filters: { label: [`${LABELS.nodeId}=${nodeId}`] } },
        statusCodes: OK,
      });
    } catch (err) {
      throw engineError('list containers', err);
    }
    const nowMs = this.nowMs();
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
        return this.observedOf(info, replicaId, service, specHash, unconfirmed);
      }
      if (observed === null) return null; // removed between list and inspect
      inspected.set(info.Id, observed);
      return this.observedOf(info, replicaId, service, specHash, observed);
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

  private observedOf(info: ListedContainer, replicaId: string, service: string, specHash: string, observed: InspectedState): ObservedContainer {
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

  /** A lifecycle event of one of the node's containers: its cached inspect no longer describes it. */
  private noteEvent(nodeId: string, containerId: string): void {
    let lastEvent = this.lastEventByNode.get(nodeId);
    if (!lastEvent) this.lastEventByNode.set(nodeId, (lastEvent = new Map()));
    lastEvent.set(containerId, ++this.eventSeq);
  }

  private async inspectState(id: string, previous: InspectedState | undefined): Promise<InspectedState | null> {
    const eventSeq = this.eventSeq;
    let info: ContainerInspect;
    try {
      info = await this.call<ContainerInspect>(`inspect container ${id.slice(0, 12)}`, this.deadlines.queryMs, { path: `/containers/${id}/json`, method: 'GET', statusCodes: OK });
    } catch (err) {
      if (isNotFound(err)) return null;
      throw engineError(`inspect container ${id.slice(0, 12)}`, err);
    }
    const state = toEngineState(info.State?.Status);
    const engineExitCode = info.State?.ExitCode ?? null;
    const exitCode =
      state === 'running' || state === 'paused'
        ? (previous?.exitCode ?? null) // the engine zeroes ExitCode on every (re)start
        : state === 'created' && engineExitCode === 0
          ? null // never ran
          : engineExitCode;
    const result: InspectedState = {
      state,
      exitCode,
      restartCount: info.RestartCount ?? 0,
      error: info.State?.Error ? info.State.Error : null,
      engineHealth: engineHealthOf(info.State?.Health),
      address: addressOf(info),
      atMs: this.nowMs(),
      eventSeq,
    };
    return result;
  }

  async hasImage(image: string): Promise<boolean> {
    try {
      // Encoded: a reference with a space or '?' must reach the engine, which then explains what
      // is wrong with it, rather than break the request on our side.
      await this.call(`inspect image ${image}`, this.deadlines.queryMs, { path: `/images/${encodeImagePath(image)}/json`, method: 'GET', statusCodes: OK });
      return true;
    } catch (err) {
      if (isNotFound(err)) return false;
      throw engineError(`inspect image ${image}`, err);
    }
  }

  async pullImage(image: string, auth: RegistryAuth | null, signal?: AbortSignal, progress?: PullProgressTally): Promise<void> {
    const what = `pull ${image}`;
    if (signal?.aborted) throw new Error(`${what} aborted`);
    // One controller for the caller's signal and the stall deadline: aborting it destroys the
    // request and the progress stream alike.
    const controller = new AbortController();
    const onCallerAbort = (): void => controller.abort(new Error(`${what} aborted`));
    signal?.addEventListener('abort', onCallerAbort, { once: true });
    // Not a limit on the whole pull: on the time since the engine last said anything about it.
    const stallMs = this.deadlines.pullStallMs;
    let stallTimer: NodeJS.Timeout | null = null;
    const progressed = (): void => {
      if (stallTimer !== null) clearTimeout(stallTimer);
      stallTimer = setTimeout(
        () => controller.abort(new EngineTimeoutError(what, stallMs, `no progress from the engine for ${stallMs / 1000} s`)),
        stallMs,
      );
    };
    const abortReason = (): Error => (controller.signal.reason instanceof Error ? controller.signal.reason : new Error(`${what} aborted`));
    try {
      progressed(); // the answer's start counts as the first progress
      const { repository, tag } = splitRepositoryTag(image);
      const request: DockerModem.DialOptions = {
        path: '/images/create?',
        method: 'POST',
        options: { fromImage: repository, tag },
        abortSignal: controller.signal,
        isStream: true,
        statusCodes: OK,
      };
      // The spec's credentials win; without them, the agent's own for the image's registry.
      // docker-modem sends them in the X-Registry-Auth header.
      const credentials = auth ?? this.registryAuth.get(registryHostOf(image)) ?? null;
      if (credentials) {
        const serveraddress = auth?.serveraddress ?? serverAddressFor(image);
        request.authconfig = { username: credentials.username, password: credentials.password, serveraddress };
      }
      let stream: IncomingMessage;
      try {
        stream = await this.call<IncomingMessage>(what, null, request);
      } catch (err) {
        if (controller.signal.aborted) throw abortReason();
        throw new DockerEngineError(`${what} failed: ${engineMessage(err)}`, statusCodeOf(err), { cause: err });
      }
      progressed();
      await this.followPull(what, stream, controller.signal, abortReason, progressed, progress);
    } finally {
      if (stallTimer !== null) clearTimeout(stallTimer);
      signal?.removeEventListener('abort', onCallerAbort);
    }
  }

  /**
   * Reads the pull's progress to its end. The engine answers 200 as soon as the pull starts, so a
   * registry failure after that (unknown layer, auth refused mid-way) arrives only as an `error`
   * line. Our own reader instead of modem.followProgress: that one throws from inside the data
   * handler on a bad line and reports success when the connection closes early.
   */
  private followPull(
    what: string,
    stream: Readable,
    signal: AbortSignal,
    abortReason: () => Error,
    onProgress: () => void,
    progress: PullProgressTally | undefined,
  ): Promise<void> {
    return new Promise<void>((resolve, reject) => {
      const reader = new JsonLineReader();
      let failure: string | null = null;
      let settled = false;
      const finish = (err: Error | null): void => {
        if (settled) return;
        settled = true;
        signal.removeEventListener('abort', onAbort);
        stream.destroy();
        if (err) reject(err);
        else resolve();
      };
      const onAbort = (): void => finish(abortReason());
      signal.addEventListener('abort', onAbort, { once: true });
      stream.setEncoding('utf8');
      stream.on('data', (chunk: string) => {
        onProgress();
        reader.push(
          chunk,
          (value) => {
            progress?.add(value);
            const v = value as { error?: unknown; errorDetail?: { message?: unknown } };
            if (failure === null && (v.error !== undefined || v.errorDetail !== undefined)) {
              failure = String(v.errorDetail?.message ?? v.error);
            }
          },
          (line) => this.logger?.warn({ operation: what, line: line.slice(0, 200) }, 'unparseable pull progress line'),
        );
      });
      const failed = (reason: string): Error => new Error(`${what} failed: ${reason}`);
      stream.on('end', () => finish(failure !== null ? failed(failure) : null));
      stream.on('error', (err) => finish(signal.aborted ? abortReason() : failed(engineMessage(err))));
      // 'close' without 'end': the connection broke mid-pull, which is no success.
      stream.on('close', () => finish(signal.aborted ? abortReason() : failed(failure ?? 'the engine closed the connection before the pull finished')));
      if (signal.aborted) onAbort();
    });
  }

  async createContainer(req: CreateContainerRequest): Promise<string> {
    const { spec } = req;
    const exposedPorts: Record<string, object> = {};
    const portBindings: Record<string, Array<{ HostIp: string; HostPort: string }>> = {};
    for (const port of spec.ports) {
      const key = `${port.containerPort}/${port.protocol}`;
      exposedPorts[key] = {};
      if (port.hostPort === null) continue; // exposed only: reachable from other containers, not from the host
      (portBindings[key] ??= []).push({ HostIp: req.publishAddress ?? '', HostPort: String(port.hostPort) });
    }
    const hostConfig: ContainerCreateBody['HostConfig'] = {
      PortBindings: portBindings,
      // See enginePolicyOf: the agent's own policy, else the engine's unless-stopped.
      RestartPolicy: { Name: enginePolicyOf(spec) },
      // A tiny init as PID 1 forwards SIGTERM, so `sh`/`sleep` commands stop without the kill timeout.
      Init: true,
      LogConfig: CONTAINER_LOG_CONFIG,
    };
    if (req.inputs && req.inputs.mounts.length > 0) hostConfig.Mounts = req.inputs.mounts.map(engineMountOf);
    if (spec.resources.cpus !== null) hostConfig.NanoCpus = Math.round(spec.resources.cpus * 1e9);
    if (spec.resources.memoryMB !== null) hostConfig.Memory = spec.resources.memoryMB * 1024 * 1024;

    const body: ContainerCreateBody = {
      Image: spec.image,
      Env: Object.entries(req.inputs?.env ?? spec.env).map(([key, value]) => `${key}=${value}`),
      // Ours last: a spec label must never fake which node, service or replica a container is.
      Labels: {
        ...spec.labels,
        [LABELS.managed]: 'true',
        [LABELS.nodeId]: req.nodeId,
        [LABELS.service]: req.service,
        [LABELS.replicaId]: req.replicaId,
        [LABELS.specHash]: req.specHash,
        ...(spec.healthcheck ? { [LABELS.healthCheck]: healthCheckLabel(spec.healthcheck) } : {}),
        [LABELS.image]: spec.image,
        ...(req.previousImage ? { [LABELS.previousImage]: req.previousImage } : {}),
        ...(req.pulledImages?.length ? { [LABELS.pulledImages]: req.pulledImages.join(',') } : {}),
      },
      ExposedPorts: exposedPorts,
      HostConfig: hostConfig,
    };
    if (spec.command !== null) body.Cmd = spec.command;
    const engineCheck = spec.healthcheck ? dockerHealthConfigOf(spec.healthcheck) : null;
    if (engineCheck) body.Healthcheck = engineCheck;

    try {
      const created = await this.call<{ Id: string }>(`create container ${req.name}`, this.deadlines.createMs, {
        path: '/containers/create?',
        method: 'POST',
        // The name alone in the query: the rest (env values included) stays out of the URL.
        options: { _query: { name: req.name }, _body: body },
        statusCodes: OK_CREATED,
      });
      return created.Id;
    } catch (err) {
      if (statusCodeOf(err) === 409) {
        const message = `create container ${req.name}: a container with that name already exists (${engineMessage(err)})`;
        throw new DockerEngineError(message, 409, { cause: err });
      }
      throw engineError(`create container ${req.name}`, err);
    }
  }

  async startContainer(id: string): Promise<StartResult> {
    try {
      await this.call(`start container ${id.slice(0, 12)}`, this.deadlines.startMs, { path: `/containers/${id}/start`, method: 'POST', statusCodes: OK_NO_CONTENT });
      // The engine has reset its RestartCount: the cached inspect's count is from before, and a
      // failed inspect next would report it, counted again on top of the agent's own start.
      for (const inspected of this.inspectedByNode.values()) inspected.delete(id);
      return 'started';
    } catch (err) {
      if (statusCodeOf(err) === 304) return 'already-running';
      throw engineError(`start container ${id.slice(0, 12)}`, err);
    }
  }

  async containerLogs(id: string, lines: number, maxBytes: number): Promise<string | null> {
    const what = `logs of container ${id.slice(0, 12)}`;
    let stream: IncomingMessage;
    try {
      stream = await this.call<IncomingMessage>(what, this.deadlines.logsMs, {
        path: `/containers/${id}/logs?`,
        method: 'GET',
        options: { stdout: true, stderr: true, tail: String(lines) },
        isStream: true,
        statusCodes: OK,
      });
    } catch (err) {
      throw engineError(what, err);
    }
    const reader = new DockerLogTail();
    return new Promise<string | null>((resolve, reject) => {
      // The engine sends the last lines and ends; one that does not within the deadline is cut off.
      const timer = setTimeout(() => stream.destroy(new EngineTimeoutError(what, this.deadlines.logsMs)), this.deadlines.logsMs);
      stream.on('data', (chunk: Buffer) => reader.push(chunk));
      stream.on('error', (err) => {
        clearTimeout(timer);
        reject(engineError(what, err));
      });
      stream.on('end', () => {
        clearTimeout(timer);
        resolve(reader.tail(lines, maxBytes));
      });
      // Closed without an end: what came is all there is (a settled promise ignores the rest).
      stream.on('close', () => {
        clearTimeout(timer);
        resolve(reader.tail(lines, maxBytes));
      });
    });
  }

  async stopContainer(id: string, timeoutS: number): Promise<void> {
    const stopS = Math.max(0, Math.round(timeoutS));
    try {
      // The engine waits stopS for the process before it kills it: the deadline starts after that.
      await this.call(`stop container ${id.slice(0, 12)}`, stopS * 1000 + this.deadlines.stopMarginMs, {
        path: `/containers/${id}/stop?`,
        method: 'POST',
        options: { t: stopS },
        statusCodes: OK_NO_CONTENT,
      });
    } catch (err) {
      const code = statusCodeOf(err);
      if (code === 304 || code === 404) return; // already stopped, or gone
      throw engineError(`stop container ${id.slice(0, 12)}`, err);
    }
  }

  async imagesInUse(): Promise<ImagesInUse> {
    let infos: ListedContainer[];
    try {
      // Every container of the engine, not only this node's: another agent's, or one that is not ours, uses images too.
      infos = await this.call<ListedContainer[]>('list containers', this.deadlines.queryMs, {
        path: '/containers/json?',
        method: 'GET',
        options: { all: true },
        statusCodes: OK,
      });
    } catch (err) {
      throw engineError('list containers', err);
    }
    const images = new Set<string>();
    for (const info of infos) {
      if (info.Image) images.add(info.Image);
      const labels = info.Labels ?? {};
      for (const key of [LABELS.image, LABELS.previousImage]) {
        const image = labels[key];
        if (image) images.add(image);
      }
    }
    return { images };
  }

  async removeImage(image: string): Promise<ImageRemoval> {
    const what = `remove image ${image}`;
    try {
      // Never forced: an image a container uses (any container, ours or not) stays.
      await this.call(what, this.deadlines.removeMs, { path: `/images/${encodeImagePath(image)}?`, method: 'DELETE', options: {}, statusCodes: OK });
      return 'removed';
    } catch (err) {
      if (isNotFound(err)) return 'absent';
      if (statusCodeOf(err) === 409) return 'in-use';
      throw engineError(what, err);
    }
  }

  async removeServiceVolumes(nodeId: string, service: string): Promise<VolumeRemoval> {
    let listed: { Volumes: Array<{ Name: string; Labels: Record<string, string> | null }> | null };
    try {
      listed = await this.call('list volumes', this.deadlines.queryMs, {
        path: '/volumes?',
        method: 'GET',
        options: { filters: { label: [`${LABELS.managed}=true`, `${LABELS.nodeId}=${nodeId}`, `${LABELS.service}=${service}`, VOLUME_LABEL] } },
        statusCodes: OK,
      });
    } catch (err) {
      throw engineError('list volumes', err);
    }
    const result: VolumeRemoval = { removed: [], inUse: [] };
    for (const v of listed.Volumes ?? []) {
      // The engine filtered by label; checked again, since removing another's data cannot be undone.
      const labels = v.Labels ?? {};
      if (labels[LABELS.nodeId] !== nodeId || labels[LABELS.service] !== service || labels[VOLUME_LABEL] === undefined) continue;
      const what = `remove volume ${v.Name}`;
      try {
        // Never forced: the engine refuses (409) a volume any container uses, ours or not.
        await this.call(what, this.deadlines.removeMs, { path: `/volumes/${encodeURIComponent(v.Name)}?`, method: 'DELETE', options: {}, statusCodes: OK_NO_CONTENT });
        result.removed.push(v.Name);
      } catch (err) {
        if (isNotFound(err)) result.removed.push(v.Name);
        else if (statusCodeOf(err) === 409) result.inUse.push(v.Name);
        else throw engineError(what, err);
      }
    }
    return result;
  }

  async removeContainer(id: string): Promise<void> {
    try {
      // v: anonymous volumes from the image's VOLUME lines would otherwise pile up on the disk.
      await this.call(`remove container ${id.slice(0, 12)}`, this.deadlines.removeMs, {
        path: `/containers/${id}?`,
        method: 'DELETE',
        options: { force: true, v: true },
        statusCodes: OK_NO_CONTENT,
      });
    } catch (err) {
      if (isNotFound(err)) return;
      // "removal already in progress": the engine finishes it; nothing more to do here.
      if (statusCodeOf(err) === 409 && /already in progress/i.test(engineMessage(err))) return;
      throw engineError(`remove container ${id.slice(0, 12)}`, err);
    }
  }

  /**
   * Follows the engine's event stream for this node's containers. Every (re)subscription starts
   * with a 'resync' event: what happened while there was no stream is read by a full listing, not
   * replayed by time, since a `since` would come from a clock (the device's, or an engine's that
   * steps back when it first syncs) and a wrong one silently drops events. When the stream breaks
   * it reconnects with backoff; when it is silent and the engine no longer answers a ping, too.
   */
  watchEvents(nodeId: string, onEvent: (event: RuntimeEvent) => void): () => void {
    const backoff = new Backoff(EVENTS_BACKOFF);
    let stopped = false;
    let timer: NodeJS.Timeout | null = null;
    let controller: AbortController | null = null;
    let stream: Readable | null = null;

    const reconnectNow = (): void => {
      this.eventReconnects.delete(reconnectNow);
      if (timer !== null) clearTimeout(timer);
      timer = null;
      void connect();
    };
    const scheduleReconnect = (): void => {
      if (stopped || timer !== null) return;
      this.eventReconnects.add(reconnectNow);
      timer = setTimeout(reconnectNow, backoff.nextDelayMs());
    };

    const deliver = (event: RuntimeEvent): void => {
      try {
        onEvent(event);
      } catch (err) {
        this.logger?.warn({ err, nodeId }, 'container event handler threw');
      }
    };

    const handle = (value: unknown): void => {
      const e = value as { Type?: unknown; Action?: unknown; status?: unknown; id?: unknown; Actor?: { ID?: unknown } };
      if (e.Type !== undefined && e.Type !== 'container') return;
      const containerId = typeof e.Actor?.ID === 'string' ? e.Actor.ID : typeof e.id === 'string' ? e.id : null;
      const rawAction = typeof e.Action === 'string' ? e.Action : typeof e.status === 'string' ? e.status : null;
      if (containerId === null || rawAction === null) return;
      // "exec_start: sh -c ..." and "health_status: healthy" carry details after the colon; the
      // action alone is the lifecycle fact (and a command line may hold secrets).
      const action = rawAction.split(':')[0]!.trim();
      backoff.reset(); // the stream delivers: the next break starts from a short delay again
      // Each try of an exec health check is an exec in the container: three events that change
      // nothing the agent reads (a health_status event follows when the health changes).
      if (action.startsWith('exec_')) return;
      this.noteEvent(nodeId, containerId);
      deliver({ containerId, action });
    };

    const connect = async (): Promise<void> => {
      if (stopped) return;
      const myController = new AbortController();
      controller = myController;
      let s: IncomingMessage;
      try {
        s = await this.call<IncomingMessage>('docker events', this.deadlines.queryMs, {
          path: '/events?',
          method: 'GET',
          options: { filters: { type: ['container'], label: [`${LABELS.nodeId}=${nodeId}`] } },
          abortSignal: myController.signal,
          isStream: true,
          statusCodes: OK,
        });
      } catch (err) {
        if (stopped) return;
        this.logger?.warn({ err: engineMessage(err), nodeId }, 'docker event stream: connect failed, retrying');
        scheduleReconnect();
        return;
      }
      if (stopped) {
        s.destroy();
        return;
      }
      stream = s;
      const connectedAtMs = this.nowMs();
      const reader = new JsonLineReader();
      let ended = false;
      let idleTimer: NodeJS.Timeout | null = null;
      const onEnd = (err?: unknown): void => {
        if (ended) return;
        ended = true;
        if (idleTimer !== null) clearTimeout(idleTimer);
        myController.abort();
        s.destroy();
        if (stream === s) stream = null;
        if (stopped) return;
        if (this.nowMs() - connectedAtMs >= EVENTS_HEALTHY_AFTER_MS) backoff.reset();
        this.logger?.warn({ err: err ? engineMessage(err) : undefined, nodeId }, 'docker event stream ended, reconnecting');
        // A connection lost or refused is the first sign of an engine stopped, well before the
        // reconnect delay runs out: worth a ping. A stream merely ended is not: an engine that
        // ends its streams while it answers would be pinged in a loop (a stopped one fails the
        // reconnect, which tells).
        if (err !== undefined && isEngineUnreachable(err)) {
          this.reportUnreachable(new DockerEngineError(`docker event stream ended: ${engineMessage(err)}`, null, { cause: err }));
        }
        scheduleReconnect();
      };
      // A quiet node has a quiet stream; a hung engine has one too. A ping tells them apart.
      const armIdle = (): void => {
        if (idleTimer !== null) clearTimeout(idleTimer);
        idleTimer = setTimeout(() => {
          idleTimer = null;
          this.call('docker ping', this.deadlines.pingMs, { path: '/_ping', method: 'GET', statusCodes: OK }).then(
            () => {
              if (!ended && !stopped && idleTimer === null) armIdle();
            },
            // Unless the stream spoke meanwhile: the engine is alive, however slow its ping.
            (err: unknown) => {
              if (idleTimer === null) onEnd(err);
            },
          );
        }, this.deadlines.eventsIdleMs);
      };
      s.setEncoding('utf8');
      s.on('data', (chunk: string) => {
        if (stopped || ended) return;
        armIdle();
        reader.push(chunk, handle, (line) => this.logger?.warn({ nodeId, line: line.slice(0, 200) }, 'unparseable docker event'));
      });
      s.on('error', (err) => onEnd(err));
      s.on('end', () => onEnd());
      s.on('close', () => onEnd());
      armIdle();
      // Events from before the stream was up are gone: cached inspects are checked again, and the
      // watcher re-reads everything.
      for (const containerId of this.inspectedByNode.get(nodeId)?.keys() ?? []) this.noteEvent(nodeId, containerId);
      deliver({ containerId: null, action: 'resync' });
    };

    void connect();

    return () => {
      if (stopped) return;
      stopped = true;
      this.eventReconnects.delete(reconnectNow);
      if (timer !== null) clearTimeout(timer);
      timer = null;
      controller?.abort();
      stream?.destroy();
      stream = null;
    };
  }
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
