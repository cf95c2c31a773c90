import Type, { type Static } from 'typebox';
import { CONTAINER_STRING_MAX_LENGTH, ENV_NAME_PATTERN, PortSchema, RegistryAuthSchema, SpecString as Str, type ContainerSpec } from '../../shared/container-spec.js';
import { StringRecord } from '../../shared/string-record.js';
import { parseConstraint, type Constraint } from './constraints.js';
import { HealthCheckSpecSchema, normalizeHealthCheck } from './health-check.js';
import { imageReferenceError } from './image-reference.js';
import { EnvValueSpecSchema, MountSpecFields, normalizeMounts, type MountContext } from './mounts.js';
import { normalizeSpreadBy, SpreadBySpecSchema, StrategySpecSchema } from './placement-preferences.js';
import { normalizeRestartPolicy, RestartPolicySpecSchema } from './restart-policy.js';
import { normalizeUpdateConfig, UpdateConfigSpecSchema, type UpdateConfig } from './update-config.js';
import { Validator, type FieldError, type Validated } from '../../shared/validation.js';

/** Limits on a spec, so that one service cannot make every target frame huge. */
export const SPEC_LIMITS = {
  maxReplicas: 100_000,
  maxPorts: 64,
  maxEnv: 256,
  maxLabels: 64,
  maxCommandArgs: 256,
  maxConstraints: 32,
  maxStringLength: CONTAINER_STRING_MAX_LENGTH,
} as const;

export const SERVICE_NAME_RE = /^[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?$/;

export const ServiceSpecSchema = Type.Object(
  {
    image: Str({ minLength: 1, maxLength: 512 }),
    command: Type.Optional(Type.Array(Str(), { maxItems: SPEC_LIMITS.maxCommandArgs })),
    env: Type.Optional(StringRecord({ pattern: ENV_NAME_PATTERN }, EnvValueSpecSchema, { maxProperties: SPEC_LIMITS.maxEnv })),
    mode: Type.Optional(Type.Union([Type.Literal('replicated'), Type.Literal('global')])),
    replicas: Type.Optional(Type.Integer({ minimum: 0, maximum: SPEC_LIMITS.maxReplicas })),
    ports: Type.Optional(Type.Array(PortSchema, { maxItems: SPEC_LIMITS.maxPorts })),
    resources: Type.Optional(
      Type.Object(
        {
          // The engine counts CPUs in billionths; below a hundredth a limit throttles a container to a halt.
          cpus: Type.Optional(Type.Number({ minimum: 0.01, maximum: 1024 })),
          memoryMB: Type.Optional(Type.Integer({ minimum: 6, maximum: 4_194_304 })),
        },
        { additionalProperties: false },
      ),
    ),
    constraints: Type.Optional(Type.Array(Str({ minLength: 1, maxLength: 512 }), { maxItems: SPEC_LIMITS.maxConstraints })),
    labels: Type.Optional(StringRecord({ minLength: 1, maxLength: 256 }, Str(), { maxProperties: SPEC_LIMITS.maxLabels })),
    registryAuth: Type.Optional(RegistryAuthSchema),
    onNodeLost: Type.Optional(Type.Union([Type.Literal('reschedule'), Type.Literal('wait')])),
    lostAfterMs: Type.Optional(Type.Integer({ minimum: 1000, maximum: 30 * 24 * 3600 * 1000 })),
    healthcheck: Type.Optional(HealthCheckSpecSchema),
    restart: Type.Optional(RestartPolicySpecSchema),
    update: Type.Optional(UpdateConfigSpecSchema),
    strategy: Type.Optional(StrategySpecSchema),
    spreadBy: Type.Optional(SpreadBySpecSchema),
    ...MountSpecFields,
  },
  { additionalProperties: false },
);

/** A spec as an operator writes it. */
export type ServiceSpec = Static<typeof ServiceSpecSchema>;

/**
 * A spec with every default filled in: what the hub stores and the scheduler reads. The container
 * part is the shape agents receive (one definition, in container-spec.ts); the rest is the hub's.
 */
export interface NormalizedSpec extends ContainerSpec {
  mode: 'replicated' | 'global';
  replicas: number;
  constraints: string[];
  /** What happens to replicas of a lost node: placed elsewhere, or kept for the node's return. */
  onNodeLost: 'reschedule' | 'wait';
  /** This service's own patience with an unreachable node; null uses the hub's. */
  lostAfterMs: number | null;
  /**
   * How a change that replaces containers goes out. Absent when the spec sets none (then
   * DEFAULT_UPDATE_CONFIG; read it with updateConfigOf): a spec stored before updates had
   * settings compares equal to the same spec sent again, which stays no change.
   */
  update?: UpdateConfig;
  /** Absent: "spread". */
  strategy?: 'spread' | 'binpack';
  /** The node label whose values replicas spread over first; absent: none. */
  spreadBy?: string;
}

const specValidator = new Validator(ServiceSpecSchema);

export function validateServiceName(name: string): FieldError | null {
  return SERVICE_NAME_RE.test(name)
    ? null
    : { path: 'name', message: 'must be 1-63 lower-case letters, digits or "-", starting and ending with a letter or digit' };
}

/**
 * Checks a spec beyond its shape (constraints parse, no host port twice, no replicas in global
 * mode, the configs and secrets it names exist, no two mounts at one path) and fills in defaults,
 * pinning each config and secret it names to its current version. Pure: the same input and
 * context always give the same answer.
 */
export function validateServiceSpec(input: unknown, ctx: MountContext = {}): Validated<NormalizedSpec> {
  const shaped = specValidator.validate(input);
  if (!shaped.ok) return shaped;
  const spec = shaped.value;
  const errors: FieldError[] = [];

  const imageError = imageReferenceError(spec.image);
  if (imageError) errors.push({ path: 'image', message: imageError });
  const mode = spec.mode ?? 'replicated';
  if (mode === 'global' && spec.replicas !== undefined) {
    errors.push({ path: 'replicas', message: 'not allowed with mode "global" (it runs one replica on every matching node)' });
  }
  (spec.constraints ?? []).forEach((text, i) => {
    const parsed = parseConstraint(text);
    if ('error' in parsed) errors.push({ path: `constraints[${i}]`, message: parsed.error });
  });
  const hostPorts = new Map<string, number>();
  (spec.ports ?? []).forEach((p, i) => {
    if (p.hostPort === undefined) return;
    const key = `${p.protocol ?? 'tcp'}/${p.hostPort}`;
    const first = hostPorts.get(key);
    if (first !== undefined) errors.push({ path: `ports[${i}].hostPort`, message: `${key} is already used by ports[${first}]` });
    else hostPorts.set(key, i);
  });
  const healthcheck = spec.healthcheck === undefined ? undefined : normalizeHealthCheck(spec.healthcheck, 'healthcheck', errors);
  const restart = spec.restart === undefined ? undefined : normalizeRestartPolicy(spec.restart, 'restart', errors);
  const update = spec.update === undefined ? undefined : normalizeUpdateConfig(spec.update, 'update', errors);
  const spreadBy = spec.spreadBy === undefined ? null : normalizeSpreadBy(spec.spreadBy, 'spreadBy', errors);
  const mounts = normalizeMounts(spec, ctx, errors);
  if (errors.length > 0) return { ok: false, errors };
  const { env, ...mountFields } = mounts;

  return {
    ok: true,
    value: {
      image: spec.image,
      command: spec.command ?? null,
      env,
      mode,
      replicas: mode === 'global' ? 0 : (spec.replicas ?? 1),
      ports: (spec.ports ?? []).map((p) => ({ containerPort: p.containerPort, hostPort: p.hostPort ?? null, protocol: p.protocol ?? 'tcp' })),
      resources: { cpus: spec.resources?.cpus ?? null, memoryMB: spec.resources?.memoryMB ?? null },
      constraints: spec.constraints ?? [],
      labels: spec.labels ?? {},
      registryAuth: spec.registryAuth ?? null,
      // A replica with a named volume has its data on its node: placed elsewhere, it would start empty.
      onNodeLost: spec.onNodeLost ?? (mountFields.volumes ? 'wait' : 'reschedule'),
      lostAfterMs: spec.lostAfterMs ?? null,
      // Absent, not undefined or null, without a check: see ContainerSpec.healthcheck.
      ...(healthcheck ? { healthcheck } : {}),
      ...(restart ? { restart } : {}),
      ...(update ? { update } : {}),
      ...(spec.strategy ? { strategy: spec.strategy } : {}),
      ...(spreadBy ? { spreadBy } : {}),
      ...mountFields,
    },
  };
}

/** Constraints of a spec that already passed validation. */
export function parsedConstraints(spec: NormalizedSpec): Constraint[] {
  return spec.constraints.map((text) => {
    const c = parseConstraint(text);
    if ('error' in c) throw new Error(`invariant: stored constraint does not parse: ${c.error}`);
    return c;
  });
}

/** The spec as an API reader sees it: credentials never leave the hub except to agents. */
export function redactSpec(spec: NormalizedSpec): NormalizedSpec {
  return spec.registryAuth ? { ...spec, registryAuth: { ...spec.registryAuth, password: '(redacted)' } } : spec;
}
