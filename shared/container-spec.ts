import { createHash } from 'node:crypto';
import Type, { type Static } from 'typebox';
import { StringRecord } from './string-record.js';

/** An environment variable's name. */
export const ENV_NAME_PATTERN = '^[A-Za-z_][A-Za-z0-9_]*$';

/** Longest string an operator may put in a spec (and so in a container's part of it). */
export const CONTAINER_STRING_MAX_LENGTH = 4096;

/** A string of a spec: never longer than CONTAINER_STRING_MAX_LENGTH. */
export const SpecString = (opts: { minLength?: number; maxLength?: number } = {}) =>
  Type.String({ maxLength: CONTAINER_STRING_MAX_LENGTH, ...opts });

export const PortSchema = Type.Object(
  {
    containerPort: Type.Integer({ minimum: 1, maximum: 65535 }),
    hostPort: Type.Optional(Type.Integer({ minimum: 1, maximum: 65535 })),
    protocol: Type.Optional(Type.Union([Type.Literal('tcp'), Type.Literal('udp')])),
  },
  { additionalProperties: false },
);

export const RegistryAuthSchema = Type.Object(
  {
    username: SpecString({ minLength: 1 }),
    password: SpecString({ minLength: 1 }),
    serveraddress: Type.Optional(SpecString()),
  },
  { additionalProperties: false },
);

export type RegistryAuth = Static<typeof RegistryAuthSchema>;

/** Longest command output a health check result keeps (the tail of a failing check's output). */
export const HEALTH_OUTPUT_MAX_LENGTH = 512;

/**
 * A replica's health check as agents receive it, every default filled in and durations in ms
 * (the hub's spec takes them as text like "5s"). `http`: a GET of `path` on the container's
 * `port` answering a status in [statusMin, statusMax]; `tcp`: a connection to `port` opens;
 * `exec`: `command` run in the container exits 0. Each try has `timeoutMs`; `retries` failures in
 * a row make a replica unhealthy; failures within `startPeriodMs` of the start do not count.
 */
export const HealthCheckSchema = Type.Object(
  {
    type: Type.Union([Type.Literal('http'), Type.Literal('tcp'), Type.Literal('exec')]),
    port: Type.Union([PortSchema.properties.containerPort, Type.Null()]),
    path: Type.Union([SpecString({ minLength: 1, maxLength: 1024 }), Type.Null()]),
    statusMin: Type.Union([Type.Integer({ minimum: 100, maximum: 599 }), Type.Null()]),
    statusMax: Type.Union([Type.Integer({ minimum: 100, maximum: 599 }), Type.Null()]),
    command: Type.Union([Type.Array(SpecString(), { minItems: 1, maxItems: 256 }), Type.Null()]),
    intervalMs: Type.Integer({ minimum: 100, maximum: 24 * 3600 * 1000 }),
    timeoutMs: Type.Integer({ minimum: 100, maximum: 3600 * 1000 }),
    retries: Type.Integer({ minimum: 1, maximum: 100 }),
    startPeriodMs: Type.Integer({ minimum: 0, maximum: 24 * 3600 * 1000 }),
  },
  { additionalProperties: false },
);
export type HealthCheck = Static<typeof HealthCheckSchema>;

/**
 * When an agent starts a replica's container again (protocol version 4), every default filled in
 * and durations in ms (the hub's spec takes them as text). `always`: whenever it stops; `on-failure`:
 * when it exits non-zero; `never`: not at all. `maxAttempts` restarts in a row at most (null: no
 * limit); the delay before each doubles from `backoffInitialMs` up to `backoffMaxMs`, and starts over
 * once a container has run for `resetAfterMs`.
 */
export const RestartPolicySchema = Type.Object(
  {
    policy: Type.Union([Type.Literal('always'), Type.Literal('on-failure'), Type.Literal('never')]),
    maxAttempts: Type.Union([Type.Integer({ minimum: 1, maximum: 1_000_000 }), Type.Null()]),
    backoffInitialMs: Type.Integer({ minimum: 100, maximum: 3600 * 1000 }),
    backoffMaxMs: Type.Integer({ minimum: 100, maximum: 24 * 3600 * 1000 }),
    resetAfterMs: Type.Integer({ minimum: 1000, maximum: 24 * 3600 * 1000 }),
  },
  { additionalProperties: false },
);
export type RestartPolicy = Static<typeof RestartPolicySchema>;

/** A config's or secret's name: what the hub's API takes, and what a spec and a target name it by. */
export const VALUE_NAME_PATTERN = '^[a-z0-9][a-z0-9._-]{0,62}$';
/** A named volume's name in a spec: the same charset as a value's, so it is safe in an engine volume name. */
export const VOLUME_NAME_PATTERN = VALUE_NAME_PATTERN;

/** Where a container's value comes from: the hub's secrets or its configs. */
export const ValueSourceSchema = Type.Union([Type.Literal('secret'), Type.Literal('config')]);
export type ValueSource = Static<typeof ValueSourceSchema>;

/** Limits on a container's mounts and references: a spec with more is refused, a target with more is a bad frame. */
export const MOUNT_LIMITS = { maxFiles: 64, maxEnvFrom: 64, maxVolumes: 32, maxTmpfs: 16, maxBinds: 32, maxTargetLength: 1024 } as const;

/** A path inside the container: absolute, and checked further by the hub (no "..", not "/", no two mounts alike). */
const MountTarget = Type.String({ minLength: 2, maxLength: MOUNT_LIMITS.maxTargetLength, pattern: '^/' });

/** A config or secret, and the version of it the container was made for (the hub pins it when it accepts the spec). */
const ValueRefProperties = {
  source: ValueSourceSchema,
  name: Type.String({ pattern: VALUE_NAME_PATTERN }),
  version: Type.Integer({ minimum: 1, maximum: Number.MAX_SAFE_INTEGER }),
};

/**
 * Version 6: a config or secret the container reads as a file at `target` (mounted read-only;
 * secrets from a tmpfs the agent manages, never from the device's disk). `mode` is the file's
 * permission bits; `uid`/`gid` its owner.
 */
export const ValueFileSchema = Type.Object(
  {
    ...ValueRefProperties,
    target: MountTarget,
    mode: Type.Integer({ minimum: 0, maximum: 0o777 }),
    uid: Type.Integer({ minimum: 0, maximum: 2 ** 31 - 1 }),
    gid: Type.Integer({ minimum: 0, maximum: 2 ** 31 - 1 }),
  },
  { additionalProperties: false },
);
export type ValueFile = Static<typeof ValueFileSchema>;

/** Version 6: an environment variable whose value is a config's or secret's. */
export const EnvFromSchema = Type.Object(ValueRefProperties, { additionalProperties: false });
export type EnvFrom = Static<typeof EnvFromSchema>;

/**
 * Version 6: a named volume of the service, kept on the node across restarts, updates, rollbacks
 * and agent restarts. The agent names the engine's volume after its node, the service and `name`.
 */
export const VolumeMountSchema = Type.Object(
  { name: Type.String({ pattern: VOLUME_NAME_PATTERN }), target: MountTarget, readOnly: Type.Boolean() },
  { additionalProperties: false },
);
export type VolumeMount = Static<typeof VolumeMountSchema>;

/** Version 6: a tmpfs of `sizeBytes` at `target`, empty at every start. */
export const TmpfsMountSchema = Type.Object(
  { target: MountTarget, sizeBytes: Type.Integer({ minimum: 4096, maximum: 2 ** 40 }), mode: Type.Integer({ minimum: 0, maximum: 0o1777 }) },
  { additionalProperties: false },
);
export type TmpfsMount = Static<typeof TmpfsMountSchema>;

/** Version 6: a host path mounted into the container (the hub accepts only paths under its allow-list). */
export const BindMountSchema = Type.Object(
  { hostPath: Type.String({ minLength: 1, maxLength: MOUNT_LIMITS.maxTargetLength, pattern: '^/' }), target: MountTarget, readOnly: Type.Boolean() },
  { additionalProperties: false },
);
export type BindMount = Static<typeof BindMountSchema>;

/**
 * What one replica's container needs, every default filled in: the part of a service spec an agent
 * acts on, as targets carry it. The hub's spec extends it (NormalizedSpec).
 */
export const ContainerSpecSchema = Type.Object(
  {
    image: Type.String({ minLength: 1 }),
    command: Type.Union([Type.Array(Type.String()), Type.Null()]),
    env: Type.Record(Type.String(), Type.String()),
    ports: Type.Array(
      Type.Object(
        {
          containerPort: PortSchema.properties.containerPort,
          hostPort: Type.Union([PortSchema.properties.containerPort, Type.Null()]),
          protocol: Type.Union([Type.Literal('tcp'), Type.Literal('udp')]),
        },
        { additionalProperties: false },
      ),
    ),
    resources: Type.Object(
      { cpus: Type.Union([Type.Number(), Type.Null()]), memoryMB: Type.Union([Type.Integer(), Type.Null()]) },
      { additionalProperties: false },
    ),
    labels: Type.Record(Type.String(), Type.String()),
    registryAuth: Type.Union([RegistryAuthSchema, Type.Null()]),
    /**
     * Protocol version 3. Absent, not null, when the service has none: the container's hash (and
     * so every running container) stays what it was before health checks existed, and targets
     * stay readable by version 1 and 2 agents, which refuse fields they do not know.
     */
    healthcheck: Type.Optional(HealthCheckSchema),
    /** Protocol version 4; absent, not null, when the service sets none (see `healthcheck`). */
    restart: Type.Optional(RestartPolicySchema),
    /** Protocol version 6, each absent when empty (see `healthcheck`): configs and secrets as files. */
    files: Type.Optional(Type.Array(ValueFileSchema, { minItems: 1, maxItems: MOUNT_LIMITS.maxFiles })),
    /** Environment variables from configs and secrets (their names are not in `env`). */
    envFrom: Type.Optional(StringRecord({ pattern: ENV_NAME_PATTERN }, EnvFromSchema, { maxProperties: MOUNT_LIMITS.maxEnvFrom })),
    volumes: Type.Optional(Type.Array(VolumeMountSchema, { minItems: 1, maxItems: MOUNT_LIMITS.maxVolumes })),
    tmpfs: Type.Optional(Type.Array(TmpfsMountSchema, { minItems: 1, maxItems: MOUNT_LIMITS.maxTmpfs })),
    binds: Type.Optional(Type.Array(BindMountSchema, { minItems: 1, maxItems: MOUNT_LIMITS.maxBinds })),
  },
  { additionalProperties: false },
);
export type ContainerSpec = Static<typeof ContainerSpecSchema>;

export function containerSpecOf(spec: ContainerSpec): ContainerSpec {
  return {
    image: spec.image,
    command: spec.command,
    env: spec.env,
    ports: spec.ports,
    resources: spec.resources,
    labels: spec.labels,
    registryAuth: spec.registryAuth,
    ...(spec.healthcheck ? { healthcheck: spec.healthcheck } : {}),
    ...(spec.restart ? { restart: spec.restart } : {}),
    ...(spec.files ? { files: spec.files } : {}),
    ...(spec.envFrom ? { envFrom: spec.envFrom } : {}),
    ...(spec.volumes ? { volumes: spec.volumes } : {}),
    ...(spec.tmpfs ? { tmpfs: spec.tmpfs } : {}),
    ...(spec.binds ? { binds: spec.binds } : {}),
  };
}

/** The configs and secrets a container reads (files and environment), each (source, name, version) once. */
export function valueRefsOf(spec: ContainerSpec): Array<{ source: ValueSource; name: string; version: number }> {
  const refs = new Map<string, { source: ValueSource; name: string; version: number }>();
  const add = (r: { source: ValueSource; name: string; version: number }) => refs.set(`${r.source}\0${r.name}\0${r.version}`, { source: r.source, name: r.name, version: r.version });
  for (const f of spec.files ?? []) add(f);
  for (const e of Object.values(spec.envFrom ?? {})) add(e);
  return [...refs.values()];
}

/** JSON with object keys sorted, so equal values always serialize to the same text. */
export function canonicalJson(value: unknown): string {
  if (Array.isArray(value)) return `[${value.map(canonicalJson).join(',')}]`;
  if (value !== null && typeof value === 'object') {
    const entries = Object.keys(value as object)
      .sort()
      .map((k) => `${JSON.stringify(k)}:${canonicalJson((value as Record<string, unknown>)[k])}`);
    return `{${entries.join(',')}}`;
  }
  return JSON.stringify(value) ?? 'null';
}

/**
 * Hash of what makes a container what it is. Scaling, constraints and registry credentials are
 * left out: changing them must not replace running containers.
 */
export function containerSpecHash(spec: ContainerSpec): string {
  const { registryAuth: _credentials, ...identity } = spec;
  return createHash('sha256').update(canonicalJson(identity)).digest('hex').slice(0, 16);
}
