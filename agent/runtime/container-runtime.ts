/**
 * The agent's view of a container engine. The Docker implementation is the real one; the
 * simulated one runs fleets of thousands of agents in one process for scheduler tests and
 * benchmarks (never as proof that Docker works).
 */
import type { ContainerSpec, HealthCheck, RegistryAuth } from '../../shared/container-spec.js';
import type { ReplicaHealth } from '../../shared/protocol.js';
import type { PullProgressTally } from './pull-progress.js';

/** Labels on every container the agent creates: its whole picture is rebuilt from them. */
export const LABELS = {
  managed: 'io.tether.managed',
  nodeId: 'io.tether.node-id',
  service: 'io.tether.service',
  replicaId: 'io.tether.replica-id',
  specHash: 'io.tether.spec-hash',
  /**
   * The container's health check, as JSON (only on containers that have one): what to probe is
   * read back from the engine after an agent restart, and an outdated container still serving
   * during an update keeps its own check.
   */
  healthCheck: 'io.tether.health-check',
  /** The image of the spec it was made of, as written there (the engine's own field may turn into an id). */
  image: 'io.tether.image',
  /**
   * The image of the revision it replaced, kept on the node while this container exists so that
   * a rollback starts without a download (image-retention.ts).
   */
  previousImage: 'io.tether.previous-image',
  /** Of its image and previous image, those the agent pulled (comma-separated): only those are ever removed. */
  pulledImages: 'io.tether.pulled-images',
} as const;

/**
 * The engine's own restart policy for a container of `spec`.
 *
 * With a restart policy in its spec, "no": the agent alone decides when the container starts again
 * (restart-policies.ts), so the engine must not restart it behind the agent's back (its own
 * backoff, 100 ms doubling, knows nothing of the operator's, nor of maxAttempts or on-failure's
 * exit 0). A device that reboots brings them back all the same: the agent starts on boot, lists
 * the exited containers and applies each one's policy, as after any stop (`always` restarts it,
 * `on-failure` if the shutdown ended it with a non-zero code, `never` leaves it stopped, as a
 * Kubernetes pod of restartPolicy Never after its node reboots). "unless-stopped" was rejected:
 * it restarts crashes too; "always" as well, and also restarts what the agent stopped.
 *
 * Without one, "unless-stopped" as ever: the engine restarts crashed containers even while the
 * agent is down; the agent starts the ones that were stopped. Not "always": a stop by the agent
 * must stay a stop.
 */
export function enginePolicyOf(spec: ContainerSpec): 'no' | 'unless-stopped' {
  return spec.restart ? 'no' : 'unless-stopped';
}

/** How much of a container's output containerLogs returns: its last lines, clipped to the bytes from their end. */
export const OUTPUT_TAIL_LINES = 20;

export type EngineState = 'created' | 'running' | 'restarting' | 'paused' | 'exited' | 'dead' | 'removing';

/** One managed container as the engine reports it. */
export interface ObservedContainer {
  id: string;
  name: string;
  replicaId: string;
  service: string;
  specHash: string;
  state: EngineState;
  /** Exit code of the last run; null while it never exited. */
  exitCode: number | null;
  /**
   * The engine's own restart count (restart policy); null when unknown (the engine would not say,
   * say an inspect failed): never a guess, since a count that drops reads as a reset.
   */
  restartCount: number | null;
  /**
   * The engine's error text for the last start (e.g. "port is already allocated"), or why the
   * container's state could not be read; null if none. A 'running' container with an error is one
   * whose state is not confirmed.
   */
  error: string | null;
  /** The container's health check (from its label); absent or null when it has none. */
  healthCheck?: HealthCheck | null;
  /**
   * What the engine itself says of the container's health, for a check the engine runs (Docker:
   * exec checks, as its HEALTHCHECK; the simulated engine: every check). Absent or null: the
   * engine keeps none, so the agent probes the container itself (http, tcp).
   */
  engineHealth?: ReplicaHealth | null;
  /** The container's address on its network, for the agent's own probes; absent or null when unknown. */
  address?: string | null;
  /** The image of the spec it was made of; absent when unknown (a container made before the label). */
  image?: string;
  /** The image of the revision it replaced (LABELS.previousImage); absent or null when none. */
  previousImage?: string | null;
  /** Of those two, the ones the agent pulled (LABELS.pulledImages); absent: none. */
  pulledImages?: string[];
  /** The host paths bind-mounted into it, as the engine says (the agent's value files among them); absent: none. */
  bindSources?: string[];
}

/**
 * A mount of a new container, engine-neutral: a host file or directory (`bind`: the agent's own
 * files of configs and secrets, or a host path the spec allows), a named volume the engine keeps
 * (made on first use, with `labels`), or a tmpfs.
 */
export type ContainerMount =
  | { type: 'bind'; source: string; target: string; readOnly: boolean }
  | { type: 'volume'; source: string; target: string; readOnly: boolean; labels: Record<string, string> }
  | { type: 'tmpfs'; target: string; sizeBytes: number; mode: number };

/**
 * What a container is made with besides its spec, resolved on the node when it is created: its
 * mounts, and its whole environment (the spec's `env` plus the values `envFrom` names).
 */
export interface ContainerInputs {
  mounts: ContainerMount[];
  env: Record<string, string>;
}

export interface CreateContainerRequest {
  nodeId: string;
  replicaId: string;
  service: string;
  specHash: string;
  /** Unique in the engine (several agents may share one engine). */
  name: string;
  spec: ContainerSpec;
  /** Address host ports are bound to; null binds all interfaces. */
  publishAddress: string | null;
  /** The image of the revision this container replaces, to keep on the node beside it; null or absent: none. */
  previousImage?: string | null;
  /** Of its image and previous image, those the agent pulled (labelled, so that only those are ever removed). */
  pulledImages?: string[];
  /** Mounts and environment resolved on the node (ContainerInputs); absent: none, and the spec's `env`. */
  inputs?: ContainerInputs;
}

export interface ImagesInUse {
  images: Set<string>;
}

/** What came of removing a service's volumes: the engine's names of those removed, and of those a container still uses. */
export interface VolumeRemoval {
  removed: string[];
  inUse: string[];
}

/** What came of asking the engine to remove an image. */
export type ImageRemoval = 'removed' | 'absent' | 'in-use';

export type StartResult = 'started' | 'already-running';

export type RuntimeEvent =
  | {
      containerId: string;
      /** Docker's action: create, start, die, stop, destroy, ... */
      action: string;
    }
  | {
      /**
       * Events may have been missed (the stream was just (re)established): whatever the watcher
       * knows of the node's containers is to be read again in full.
       */
      containerId: null;
      action: 'resync';
    };

export interface ContainerRuntime {
  /** Engine name and version, reported as a node fact (e.g. "docker 20.10.24"). */
  version(): Promise<string>;
  /** Every container labelled with this node id, in any state. */
  listContainers(nodeId: string): Promise<ObservedContainer[]>;
  hasImage(image: string): Promise<boolean>;
  /**
   * Pulls an image; rejects with a readable message when the registry refuses or is unreachable.
   * `progress`, when given, is fed the engine's progress lines as they come.
   */
  pullImage(image: string, auth: RegistryAuth | null, signal?: AbortSignal, progress?: PullProgressTally): Promise<void>;
  /**
   * Every image a container of the engine refers to, whoever made it (any node's, or not ours):
   * the image it runs, and the images our labels keep beside it (LABELS.image, LABELS.previousImage).
   */
  imagesInUse(): Promise<ImagesInUse>;
  /** Removes an image by reference; never forced, so one a container uses stays ('in-use'). */
  removeImage(image: string): Promise<ImageRemoval>;
  /** Creates (not starts) a container carrying the LABELS; returns its id. */
  createContainer(req: CreateContainerRequest): Promise<string>;
  /** 'already-running' when the engine had it running (Docker's 304): this call started nothing. */
  startContainer(id: string): Promise<StartResult>;
  /**
   * The last `lines` lines of the container's output (stdout and stderr, as the engine logged
   * them), at most `maxBytes` from their end; null when the engine keeps none. Optional: an engine
   * without one reports crash loops without output.
   */
  containerLogs?(id: string, lines: number, maxBytes: number): Promise<string | null>;
  /** Stops with SIGTERM, then SIGKILL after timeoutS; a stopped or missing container is fine. */
  stopContainer(id: string, timeoutS: number): Promise<void>;
  /** Removes (forcibly); a missing container is fine. */
  removeContainer(id: string): Promise<void>;
  /**
   * Removes the named volumes the agent made for `service` on this node: only those labelled
   * with this node id and that service (spec-mounts.ts), never forced, so one any container still
   * uses stays (`inUse`). Optional: an engine without it keeps every volume.
   */
  removeServiceVolumes?(nodeId: string, service: string): Promise<VolumeRemoval>;
  /**
   * Calls onEvent for lifecycle events of this node's containers until the returned function is
   * called. Reconnects by itself if the engine's event stream breaks, and sends a 'resync' after
   * each (re)connection, since it never replays by time.
   */
  watchEvents(nodeId: string, onEvent: (event: RuntimeEvent) => void): () => void;
}

/**
 * What the agent asks of the engine about the engine itself, not its containers: whether it is
 * there at all, and where it keeps its data. Apart from ContainerRuntime, which is all the
 * reconcile loop needs.
 */
export interface EngineProbe {
  /** A cheap call with its own short deadline; rejects when the engine cannot be reached or does not answer. */
  ping(): Promise<void>;
  /** Where the engine stores images and containers (Docker's DockerRootDir); null when it does not say. */
  storageDir(): Promise<string | null>;
  /**
   * Calls `listener` whenever an engine call fails in a way that says the engine itself may be away
   * (no connection, or no answer within the call's deadline), not one refusal. Returns the unsubscribe.
   */
  onUnreachable(listener: (error: Error) => void): () => void;
}
