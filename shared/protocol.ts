/**
 * The hub <-> agent protocol over one WebSocket per node. Defined once here; both ends validate
 * every frame with these schemas.
 *
 *   agent                         hub
 *   (upgrade, Authorization: Bearer <node credential>)
 *   hello {version, facts, ...} ->
 *                               <- welcome {nodeId, heartbeatIntervalMs}
 *                               <- target {generation, replicas}   (whole desired state)
 *   ack {generation, pending}   ->
 *   status {replicas (diff)}    ->
 *   conditions {conditions}     ->   (v2: when the engine, cache or disks change)
 *   heartbeat                   ->
 *                               <- credential {rotation, credential} (v7: POST /v1/nodes/:id/rotate-credential)
 *   credentialSaved {rotation}  ->   (v7: the new credential is on the device's disk)
 *                               <- logs.open {stream, replicaId, tail, follow, credit} (v8: GET /v1/services/:name/logs)
 *   logs.chunk {stream, lines}  ->   (v8: one per chunk of credit, LOG_LIMITS.maxChunkBytes of lines at most)
 *                               <- logs.credit {stream, chunks}   (v8: as the HTTP client takes them)
 *   logs.end / logs.error       ->   (v8: the engine's stream ended, or could not be read)
 *                               <- logs.close {stream}            (v8: the client went away)
 *
 * A target always carries the node's whole desired state, so a lost or reordered target can
 * never leave the agent half-updated; a newer generation supersedes any older one.
 */
import Type, { type Static } from 'typebox';
import { ContainerSpecSchema, HEALTH_OUTPUT_MAX_LENGTH, VALUE_NAME_PATTERN, ValueSourceSchema } from './container-spec.js';
import { StringRecord } from './string-record.js';

/**
 * The version this build speaks. Version 2 added node conditions (hello, `conditions` frames) and
 * partial acks (`ack.pending`); version 3 health checks (a container's `healthcheck`, a report's
 * `health`); version 4 restart policies (a container's `restart`, a report's `crashLoop`);
 * version 5 pull progress (a report's `pull`); version 6 what a container needs besides its image
 * (a container's `files`, `envFrom`, `volumes`, `tmpfs`, `binds`; a target's `values` and `purgeVolumes`);
 * version 7 credential rotation (the hub's `credential` frame, the agent's `credentialSaved`),
 * sent only to agents that said version 7 or later; version 8 container logs streamed through
 * the link (the `logs.*` frames), asked only of agents that said version 8 or later. The additions are optional, so a hub serves
 * older agents as before, as long as it sends them
 * nothing they do not know (a version 1 or 2 agent refuses a container with a `healthcheck`, a
 * version 3 one a container with a `restart`). Upgrade the hub first: a hub refuses an agent
 * newer than itself.
 */
export const PROTOCOL_VERSION = 8;
/** The first version whose agents take a new credential over their connection. */
export const CREDENTIAL_ROTATION_PROTOCOL_VERSION = 7;
/** The first version whose agents stream their containers' logs (the `logs.*` frames). */
export const LOGS_PROTOCOL_VERSION = 8;
/** The oldest agent protocol the hub still serves: fleets are upgraded in batches, after their hub. */
export const MIN_PROTOCOL_VERSION = 1;

/**
 * The longest an agent waits between two attempts to reach the hub (its backoff cap). The hub's
 * startup grace must cover it, or agents still waiting to retry after a hub restart count as away.
 */
export const AGENT_RECONNECT_CAP_MS = 30_000;

/**
 * An agent sends at most one `conditions` frame per this long (a flapping engine must not flood the
 * hub); the hub applies at most one per node per this long all the same, the latest at its end.
 */
export const CONDITIONS_MIN_FRAME_INTERVAL_MS = 3_000;

/** The hub's WebSocket endpoint for agents (the upgrade request's path). */
export const AGENT_PATH = '/v1/agent/connect';

export const PROTOCOL_LIMITS = {
  /** Largest frame the hub accepts from an agent (a hello listing a few thousand replicas). */
  maxAgentFrameBytes: 1024 * 1024,
  /** Largest frame an agent accepts from the hub (a target for a busy node). */
  maxHubFrameBytes: 32 * 1024 * 1024,
  /** Replica entries one status or hello frame may carry. */
  maxReportedReplicas: 5000,
  /** Time an agent has to send hello after the upgrade. */
  helloTimeoutMs: 10_000,
} as const;

/** WebSocket close codes (4000-4999 is the application range). */
export const CloseCode = {
  goingAway: 1001,
  badFrame: 4000,
  unauthorized: 4001,
  versionMismatch: 4002,
  helloTimeout: 4003,
  replaced: 4004,
  /** The operator removed the node (DELETE /v1/nodes/:id): final, the agent does not come back. */
  nodeRemoved: 4005,
  /** Said hello, then went silent past the heartbeat grace; the agent reconnects as after any lost link. */
  heartbeatTimeout: 4006,
} as const;

/** The error code of the 401 an agent of a removed node gets at its upgrade: as final as the nodeRemoved close. */
export const NODE_REMOVED_ERROR_CODE = 'node_removed';

export const REPLICA_STATES = ['pending', 'starting', 'running', 'failed', 'stopped'] as const;
export type ReplicaState = (typeof REPLICA_STATES)[number];

const Id = Type.String({ minLength: 1, maxLength: 128 });
const Generation = Type.Integer({ minimum: 0 });
const ShortText = (maxLength: number) => Type.String({ maxLength });

/** Longest text of each node fact; an agent clips a longer value read from its machine to it. */
export const NODE_FACT_MAX_LENGTH = { hostname: 255, os: 64, osRelease: 128, arch: 32, agentVersion: 64, runtime: 128 } as const;

export const NodeFactsSchema = Type.Object(
  {
    hostname: ShortText(NODE_FACT_MAX_LENGTH.hostname),
    os: ShortText(NODE_FACT_MAX_LENGTH.os),
    osRelease: ShortText(NODE_FACT_MAX_LENGTH.osRelease),
    arch: ShortText(NODE_FACT_MAX_LENGTH.arch),
    cpus: Type.Integer({ minimum: 0 }),
    memoryBytes: Type.Integer({ minimum: 0 }),
    diskBytes: Type.Integer({ minimum: 0 }),
    diskFreeBytes: Type.Integer({ minimum: 0 }),
    agentVersion: ShortText(NODE_FACT_MAX_LENGTH.agentVersion),
    runtime: ShortText(NODE_FACT_MAX_LENGTH.runtime),
  },
  { additionalProperties: false },
);
export type NodeFacts = Static<typeof NodeFactsSchema>;

/** The longest error text one replica report carries; an agent clips longer ones to it. */
export const MAX_REPORT_ERROR_LENGTH = 2048;

/** What an agent observes of one replica. `removed` means its container is gone for good. */
export const ReplicaHealthSchema = Type.Object(
  {
    status: Type.Union([Type.Literal('starting'), Type.Literal('healthy'), Type.Literal('unhealthy')]),
    output: Type.Union([Type.String({ maxLength: HEALTH_OUTPUT_MAX_LENGTH }), Type.Null()]),
  },
  { additionalProperties: false },
);
export type ReplicaHealth = Static<typeof ReplicaHealthSchema>;

/**
 * Restarts in a row that make a replica crash-looping: one or two are a hiccup (a dependency not up
 * yet); a third within the backoff, with no good stretch of running between, is a pattern.
 */
export const CRASH_LOOP_RESTARTS = 3;

/** The longest tail of a crash-looping container's output a report carries (its last lines, clipped to this). */
export const CRASH_LOOP_OUTPUT_MAX_LENGTH = 1024;

/**
 * Version 4: a replica under a restart policy whose container keeps stopping (CRASH_LOOP_RESTARTS
 * restarts in a row or more, none after a resetAfter stretch of running), or that the policy gave
 * up on (maxAttempts reached).
 */
export const CrashLoopSchema = Type.Object(
  {
    /** Restarts in a row so far (those since the last resetAfter stretch of running). */
    restarts: Type.Integer({ minimum: 0 }),
    /** The last run's exit code; null when it was restarted for failing its health check. */
    lastExitCode: Type.Union([Type.Integer(), Type.Null()]),
    /** The last lines of the container's output (the engine's log), clipped; null when the engine had none. */
    outputTail: Type.Union([Type.String({ maxLength: CRASH_LOOP_OUTPUT_MAX_LENGTH }), Type.Null()]),
    /** When the agent starts it again (epoch ms, the agent's clock); null: it stays down (maxAttempts reached). */
    nextRestartAtMs: Type.Union([Type.Integer({ minimum: 0 }), Type.Null()]),
  },
  { additionalProperties: false },
);
export type CrashLoop = Static<typeof CrashLoopSchema>;

/** Layers an agent counts per pull at most: an image has at most 127; a report never says more. */
export const MAX_PULL_LAYERS = 512;

/**
 * How far the pull of the image a replica waits for got (version 5): bytes downloaded of the
 * layers' sizes, and layers done. Sent at most every PULL_PROGRESS_REPORT_MS while it lasts.
 */
export const PullProgressSchema = Type.Object(
  {
    bytesDone: Type.Integer({ minimum: 0, maximum: Number.MAX_SAFE_INTEGER }),
    /** Null while a layer still to download has no known size (the engine tells it as the layer starts). */
    bytesTotal: Type.Union([Type.Integer({ minimum: 0, maximum: Number.MAX_SAFE_INTEGER }), Type.Null()]),
    layersDone: Type.Integer({ minimum: 0, maximum: MAX_PULL_LAYERS }),
    layersTotal: Type.Integer({ minimum: 0, maximum: MAX_PULL_LAYERS }),
  },
  { additionalProperties: false },
);
export type PullProgress = Static<typeof PullProgressSchema>;

/** An agent reports a pull's progress at most this often per image: a slow link's download lasts minutes. */
export const PULL_PROGRESS_REPORT_MS = 2_000;

export const ReplicaReportSchema = Type.Object(
  {
    replicaId: Id,
    service: Id,
    state: Type.Union([
      Type.Literal('pending'),
      Type.Literal('starting'),
      Type.Literal('running'),
      Type.Literal('failed'),
      Type.Literal('stopped'),
      Type.Literal('removed'),
    ]),
    specHash: ShortText(64),
    containerId: Type.Union([Type.String({ maxLength: 128 }), Type.Null()]),
    error: Type.Union([Type.String({ maxLength: MAX_REPORT_ERROR_LENGTH }), Type.Null()]),
    restarts: Type.Integer({ minimum: 0 }),
    /**
     * Version 3, for a replica whose container has a health check: what its checks say now, and
     * the tail of the last failing check's output (null once one passes). Absent: no check (a
     * replica without one is healthy once running).
     */
    health: Type.Optional(ReplicaHealthSchema),
    /** Version 4: present only while the replica crash-loops or its restart policy gave up on it. */
    crashLoop: Type.Optional(CrashLoopSchema),
    /** Version 5: present while the image the replica is to run is being pulled. */
    pull: Type.Optional(PullProgressSchema),
  },
  { additionalProperties: false },
);
export type ReplicaReport = Static<typeof ReplicaReportSchema>;

/** Longest error text a node condition carries. */
export const MAX_CONDITION_ERROR_LENGTH = 512;
const ConditionError = Type.Union([ShortText(MAX_CONDITION_ERROR_LENGTH), Type.Null()]);

/** Space on one filesystem, as statfs gives it for a path on it. */
export const DiskUsageSchema = Type.Object(
  {
    path: ShortText(4096),
    totalBytes: Type.Integer({ minimum: 0 }),
    freeBytes: Type.Integer({ minimum: 0 }),
  },
  { additionalProperties: false },
);
export type DiskUsage = Static<typeof DiskUsageSchema>;

/**
 * A disk is low when less than min(10% of it, 2 GiB) is free: the agent reports a crossing at
 * once, the hub warns. A share alone would warn about a 500 GB disk with 40 GB free; bytes alone
 * would warn about every 4 GB eMMC all the time. 2 GiB is room for a few image pulls and logs:
 * what a device needs to keep updating.
 */
export const LOW_DISK = { freeShare: 0.1, freeCapBytes: 2 * 1024 ** 3 } as const;

/** Free bytes below which a disk of `totalBytes` is low. */
export function lowDiskThresholdBytes(totalBytes: number): number {
  return Math.min(totalBytes * LOW_DISK.freeShare, LOW_DISK.freeCapBytes);
}

export function isDiskLow(disk: DiskUsage | null): boolean {
  return disk !== null && disk.freeBytes < lowDiskThresholdBytes(disk.totalBytes);
}

/**
 * What the agent knows about its own ability to do its job (version 2). Sent whole in the hello
 * and again in a `conditions` frame whenever part of it changes (disks: when free space moves by
 * a meaningful step, not on every byte).
 */
export const NodeConditionsSchema = Type.Object(
  {
    /** Whether the container engine answers; while it does not, what runs on the node is unknown. */
    engine: Type.Object({ available: Type.Boolean(), error: ConditionError }, { additionalProperties: false }),
    /**
     * Whether the newest target is cached on disk: what the device runs after a reboot without the
     * hub. Not current while a save fails (a full data disk, say).
     */
    targetCache: Type.Object({ current: Type.Boolean(), error: ConditionError }, { additionalProperties: false }),
    /** The filesystem of the agent's data dir (credential, cached target); null when unknown. */
    dataDisk: Type.Union([DiskUsageSchema, Type.Null()]),
    /** The filesystem of the engine's storage (images, containers); null when unknown. */
    engineDisk: Type.Union([DiskUsageSchema, Type.Null()]),
  },
  { additionalProperties: false },
);
export type NodeConditions = Static<typeof NodeConditionsSchema>;

/** A node's name and labels: the same limits at join, at hello and in an operator's change. */
export const NodeNameSchema = Type.String({ minLength: 1, maxLength: 128 });
export const NodeLabelsSchema = StringRecord({ minLength: 1, maxLength: 256 }, Type.String({ maxLength: 1024 }), { maxProperties: 64 });

export const HelloSchema = Type.Object(
  {
    type: Type.Literal('hello'),
    protocolVersion: Type.Integer(),
    name: NodeNameSchema,
    labels: NodeLabelsSchema,
    advertiseAddress: Type.Union([Type.String({ maxLength: 64 }), Type.Null()]),
    facts: NodeFactsSchema,
    /** The last target generation this agent applied (0 if none), so the hub can tell a stale agent. */
    appliedGeneration: Generation,
    /** Every replica the agent runs now, read from the engine: the hub's picture starts from this. */
    replicas: Type.Array(ReplicaReportSchema, { maxItems: PROTOCOL_LIMITS.maxReportedReplicas }),
    /** Version 2 agents always send it; absent from version 1 agents. */
    conditions: Type.Optional(NodeConditionsSchema),
  },
  { additionalProperties: false },
);

export const HeartbeatSchema = Type.Object({ type: Type.Literal('heartbeat') }, { additionalProperties: false });

/**
 * The agent has acted on every replica of `generation` but `pending` of them, whose images are
 * still being pulled (version 2; absent means 0). A partial ack is followed by another once the
 * pending count changes, down to 0 (or by the ack of a newer generation).
 */
export const AckSchema = Type.Object(
  { type: Type.Literal('ack'), generation: Generation, pending: Type.Optional(Type.Integer({ minimum: 0 })) },
  { additionalProperties: false },
);

/** The node's conditions changed (version 2). */
export const ConditionsSchema = Type.Object(
  { type: Type.Literal('conditions'), conditions: NodeConditionsSchema },
  { additionalProperties: false },
);

/** Replicas whose observed state changed since the last report. */
export const StatusSchema = Type.Object(
  {
    type: Type.Literal('status'),
    replicas: Type.Array(ReplicaReportSchema, { minItems: 1, maxItems: PROTOCOL_LIMITS.maxReportedReplicas }),
  },
  { additionalProperties: false },
);

export const AssignedReplicaSchema = Type.Object(
  {
    replicaId: Id,
    service: Id,
    specHash: ShortText(64),
    container: ContainerSpecSchema,
  },
  { additionalProperties: false },
);
export type AssignedReplica = Static<typeof AssignedReplicaSchema>;

export const WelcomeSchema = Type.Object(
  {
    type: Type.Literal('welcome'),
    protocolVersion: Type.Integer(),
    nodeId: Id,
    heartbeatIntervalMs: Type.Integer({ minimum: 100 }),
  },
  { additionalProperties: false },
);

/** Largest config or secret value, in bytes: the hub refuses a larger one, an agent a target carrying one. */
export const MAX_VALUE_BYTES = 512 * 1024;
/** Values one target carries at most: each of a node's replicas names at most a few dozen. */
export const MAX_TARGET_VALUES = 1024;

/**
 * Version 6: the value of a config or secret that one of the target's replicas names, at the
 * version it names, base64. A target carries only the values its own replicas name: a node never
 * receives a secret none of its replicas uses.
 */
export const TargetValueSchema = Type.Object(
  {
    source: ValueSourceSchema,
    name: Type.String({ pattern: VALUE_NAME_PATTERN }),
    version: Type.Integer({ minimum: 1, maximum: Number.MAX_SAFE_INTEGER }),
    data: Type.String({ maxLength: Math.ceil(MAX_VALUE_BYTES / 3) * 4, pattern: '^[A-Za-z0-9+/]*={0,2}$' }),
  },
  { additionalProperties: false },
);
export type TargetValue = Static<typeof TargetValueSchema>;

/** Deleted services whose volumes one target asks its node to remove, at most: the hub keeps the newest. */
export const MAX_VOLUME_PURGES = 64;

export const TargetSchema = Type.Object(
  {
    type: Type.Literal('target'),
    generation: Generation,
    replicas: Type.Array(AssignedReplicaSchema),
    /** Version 6; absent when no replica of the target names a config or secret. */
    values: Type.Optional(Type.Array(TargetValueSchema, { minItems: 1, maxItems: MAX_TARGET_VALUES })),
    /**
     * Version 6: services deleted with their volumes (DELETE ?purgeVolumes=true). The agent removes
     * the volumes it made for each, once none of its containers is left and the target names none
     * of its replicas; a volume any container still uses stays. Absent when none.
     */
    purgeVolumes: Type.Optional(Type.Array(Id, { minItems: 1, maxItems: MAX_VOLUME_PURGES })),
  },
  { additionalProperties: false },
);

/** A node credential as the hub makes it (`tnc_<nodeId>.<secret>`); the hub checks its shape. */
const NodeCredential = Type.String({ minLength: 1, maxLength: 256 });

/**
 * Version 7: the node's next credential. The agent writes it to its identity file (keeping the one
 * it connected with, should the hub not have stored the new one), acknowledges with
 * `credentialSaved`, then connects again with it. One per connection at most.
 */
export const CredentialSchema = Type.Object(
  { type: Type.Literal('credential'), rotation: Id, credential: NodeCredential },
  { additionalProperties: false },
);

/** Version 7: the credential of `rotation` is on the device's disk; the hub may forget the old one. */
export const CredentialSavedSchema = Type.Object(
  { type: Type.Literal('credentialSaved'), rotation: Id },
  { additionalProperties: false },
);

/**
 * Limits of the log frames (version 8). A stream moves by credit: the hub grants chunks, the
 * agent sends one chunk per credit and pauses its engine stream while it has none, so a slow or
 * gone HTTP client holds at most `creditChunks` chunks in flight per stream, and the engine's
 * output waits on the device's disk, where it is anyway.
 */
export const LOG_LIMITS = {
  /**
   * Bytes one `logs.chunk` makes at most as the hub writes it (a line alone may make it up to
   * maxLineBytes more): each line counted as its JSON text plus lineOverheadBytes.
   */
  maxChunkBytes: 64 * 1024,
  /** What the hub's NDJSON adds to a line: `{"replica":...,"node":...,"stream":...,"line":...}` and a newline, ids at their longest. */
  lineOverheadBytes: 256,
  /** Lines one `logs.chunk` carries at most. */
  maxChunkLines: 4096,
  /** A longer line is cut to this many bytes (the engine's json-file driver splits lines at 16 KiB too). */
  maxLineBytes: 16 * 1024,
  /** Chunks a stream may have in flight: the hub's grant at open, and most it ever has outstanding. */
  creditChunks: 4,
  /** Lines of a tail at most. */
  maxTailLines: 10_000,
  /** Log streams one node serves at once; the hub asks no more of it, and the agent refuses more. */
  maxStreamsPerNode: 8,
  /** Longest error text of a `logs.error`. */
  maxErrorLength: 512,
} as const;

const LogStreamId = Type.String({ minLength: 1, maxLength: 64 });

/** One line of a container's output. `time`: the engine's timestamp (RFC 3339), only when asked for. */
export const LogLineSchema = Type.Object(
  {
    stream: Type.Union([Type.Literal('stdout'), Type.Literal('stderr')]),
    time: Type.Optional(Type.String({ maxLength: 64 })),
    line: Type.String({ maxLength: LOG_LIMITS.maxLineBytes }),
  },
  { additionalProperties: false },
);
export type LogLine = Static<typeof LogLineSchema>;

/**
 * Version 8: read the output of the container of `replicaId` on this node (only this node's own:
 * the agent looks it up by its replica and node labels). `tail` last lines first (0: none), then,
 * with `follow`, new lines as they come until the container stops or `logs.close`. `since`: only
 * lines from then on (epoch seconds). `credit`: chunks the agent may send before more is granted.
 */
export const LogsOpenSchema = Type.Object(
  {
    type: Type.Literal('logs.open'),
    stream: LogStreamId,
    replicaId: Id,
    tail: Type.Integer({ minimum: 0, maximum: LOG_LIMITS.maxTailLines }),
    follow: Type.Boolean(),
    timestamps: Type.Boolean(),
    since: Type.Optional(Type.Integer({ minimum: 0, maximum: 2 ** 40 })),
    credit: Type.Integer({ minimum: 1, maximum: LOG_LIMITS.creditChunks }),
  },
  { additionalProperties: false },
);

/** Version 8: the agent may send `chunks` more chunks of the stream. */
export const LogsCreditSchema = Type.Object(
  { type: Type.Literal('logs.credit'), stream: LogStreamId, chunks: Type.Integer({ minimum: 1, maximum: LOG_LIMITS.creditChunks }) },
  { additionalProperties: false },
);

/** Version 8: the hub needs no more of the stream (its client went away, or asked no more): the agent ends its engine stream. */
export const LogsCloseSchema = Type.Object({ type: Type.Literal('logs.close'), stream: LogStreamId }, { additionalProperties: false });

/** Version 8: lines of a stream, in the engine's order; one per credit. */
export const LogsChunkSchema = Type.Object(
  {
    type: Type.Literal('logs.chunk'),
    stream: LogStreamId,
    lines: Type.Array(LogLineSchema, { minItems: 1, maxItems: LOG_LIMITS.maxChunkLines }),
  },
  { additionalProperties: false },
);

/** Version 8: the stream is over (a tail sent whole, a followed container stopped); no credit needed. */
export const LogsEndSchema = Type.Object({ type: Type.Literal('logs.end'), stream: LogStreamId }, { additionalProperties: false });

/** Version 8: the stream could not be read (no such container here, the engine refused, too many streams). */
export const LogsErrorSchema = Type.Object(
  { type: Type.Literal('logs.error'), stream: LogStreamId, message: Type.String({ maxLength: LOG_LIMITS.maxErrorLength }) },
  { additionalProperties: false },
);

export type HelloFrame = Static<typeof HelloSchema>;
export type HeartbeatFrame = Static<typeof HeartbeatSchema>;
export type AckFrame = Static<typeof AckSchema>;
export type StatusFrame = Static<typeof StatusSchema>;
export type WelcomeFrame = Static<typeof WelcomeSchema>;
export type TargetFrame = Static<typeof TargetSchema>;
export type ConditionsFrame = Static<typeof ConditionsSchema>;
export type CredentialFrame = Static<typeof CredentialSchema>;
export type CredentialSavedFrame = Static<typeof CredentialSavedSchema>;
export type LogsOpenFrame = Static<typeof LogsOpenSchema>;
export type LogsCreditFrame = Static<typeof LogsCreditSchema>;
export type LogsCloseFrame = Static<typeof LogsCloseSchema>;
export type LogsChunkFrame = Static<typeof LogsChunkSchema>;
export type LogsEndFrame = Static<typeof LogsEndSchema>;
export type LogsErrorFrame = Static<typeof LogsErrorSchema>;
/** What the hub sends of a log stream, and what the agent answers. */
export type HubLogsFrame = LogsOpenFrame | LogsCreditFrame | LogsCloseFrame;
export type AgentLogsFrame = LogsChunkFrame | LogsEndFrame | LogsErrorFrame;

export type AgentFrame = HelloFrame | HeartbeatFrame | AckFrame | StatusFrame | ConditionsFrame | CredentialSavedFrame | AgentLogsFrame;
export type HubFrame = WelcomeFrame | TargetFrame | CredentialFrame | HubLogsFrame;

export const AGENT_FRAME_SCHEMAS = {
  hello: HelloSchema,
  heartbeat: HeartbeatSchema,
  ack: AckSchema,
  status: StatusSchema,
  conditions: ConditionsSchema,
  credentialSaved: CredentialSavedSchema,
  'logs.chunk': LogsChunkSchema,
  'logs.end': LogsEndSchema,
  'logs.error': LogsErrorSchema,
} as const;
export const HUB_FRAME_SCHEMAS = {
  welcome: WelcomeSchema,
  target: TargetSchema,
  credential: CredentialSchema,
  'logs.open': LogsOpenSchema,
  'logs.credit': LogsCreditSchema,
  'logs.close': LogsCloseSchema,
} as const;
