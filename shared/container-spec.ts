import { createHash } from 'node:crypto';
import Type, { type Static } from 'typebox';

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
  };
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
