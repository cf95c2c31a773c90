/**
 * What a container needs besides its image, as an operator writes it in a spec: configs and
 * secrets as files (`secrets`, `configs`) or environment values (`env` references), named volumes,
 * tmpfs mounts and host paths (`binds`); and their normalized, agent-shaped form (container-spec.ts:
 * `files`, `envFrom`, `volumes`, `tmpfs`, `binds`).
 *
 * A reference to a config or secret is pinned to the version the hub holds when it accepts the
 * spec: the version is part of the container, so a new value is a new container (rolled out as
 * any change is), and a replica the update has not reached yet keeps reading the value it started with.
 */
import path from 'node:path';
import Type, { type Static } from 'typebox';
import {
  MOUNT_LIMITS,
  VALUE_NAME_PATTERN,
  VOLUME_NAME_PATTERN,
  type BindMount,
  type EnvFrom,
  type TmpfsMount,
  type ValueFile,
  type ValueSource,
  type VolumeMount,
} from '../../shared/container-spec.js';
import type { FieldError } from '../../shared/validation.js';

const ValueName = Type.String({ pattern: VALUE_NAME_PATTERN });
const Target = Type.String({ minLength: 1, maxLength: MOUNT_LIMITS.maxTargetLength });
/** Permission bits as octal text ("0440"), as chmod and Compose take them: 292 would read as nonsense. */
const Mode = Type.String({ minLength: 1, maxLength: 5 });
const Id = Type.Integer({ minimum: 0, maximum: 2 ** 31 - 1 });

export const SecretUseSpecSchema = Type.Object(
  { name: ValueName, target: Type.Optional(Target), mode: Type.Optional(Mode), uid: Type.Optional(Id), gid: Type.Optional(Id) },
  { additionalProperties: false },
);
export const ConfigUseSpecSchema = Type.Object(
  { name: ValueName, target: Target, mode: Type.Optional(Mode), uid: Type.Optional(Id), gid: Type.Optional(Id) },
  { additionalProperties: false },
);
export const VolumeSpecSchema = Type.Object(
  { name: Type.String({ pattern: VOLUME_NAME_PATTERN }), target: Target, readOnly: Type.Optional(Type.Boolean()) },
  { additionalProperties: false },
);
/** The largest tmpfs a spec may ask for, in MiB (1 TiB): beyond any edge device's memory. */
const MAX_TMPFS_MB = 1024 * 1024;
export const TmpfsSpecSchema = Type.Object(
  { target: Target, sizeMB: Type.Integer({ minimum: 1, maximum: MAX_TMPFS_MB }), mode: Type.Optional(Mode) },
  { additionalProperties: false },
);
export const BindSpecSchema = Type.Object(
  { hostPath: Type.String({ minLength: 1, maxLength: MOUNT_LIMITS.maxTargetLength }), target: Target, readOnly: Type.Optional(Type.Boolean()) },
  { additionalProperties: false },
);
/** An `env` value: text, or a reference to a secret's or config's value. */
export const EnvValueSpecSchema = Type.Union([
  Type.String({ maxLength: 4096 }),
  Type.Object({ fromSecret: ValueName }, { additionalProperties: false }),
  Type.Object({ fromConfig: ValueName }, { additionalProperties: false }),
]);

export const MountSpecFields = {
  secrets: Type.Optional(Type.Array(SecretUseSpecSchema, { maxItems: MOUNT_LIMITS.maxFiles })),
  configs: Type.Optional(Type.Array(ConfigUseSpecSchema, { maxItems: MOUNT_LIMITS.maxFiles })),
  volumes: Type.Optional(Type.Array(VolumeSpecSchema, { maxItems: MOUNT_LIMITS.maxVolumes })),
  tmpfs: Type.Optional(Type.Array(TmpfsSpecSchema, { maxItems: MOUNT_LIMITS.maxTmpfs })),
  binds: Type.Optional(Type.Array(BindSpecSchema, { maxItems: MOUNT_LIMITS.maxBinds })),
};

type EnvSpec = Record<string, Static<typeof EnvValueSpecSchema>>;
type MountSpec = {
  secrets?: Array<Static<typeof SecretUseSpecSchema>>;
  configs?: Array<Static<typeof ConfigUseSpecSchema>>;
  volumes?: Array<Static<typeof VolumeSpecSchema>>;
  tmpfs?: Array<Static<typeof TmpfsSpecSchema>>;
  binds?: Array<Static<typeof BindSpecSchema>>;
  env?: EnvSpec;
};

/** Default permission bits of a config's or secret's file: readable by any user of the container, as Swarm's. */
export const DEFAULT_VALUE_FILE_MODE = 0o444;
/** Default permission bits of a tmpfs mount's root (the engine's own default). */
export const DEFAULT_TMPFS_MODE = 0o1777;

/**
 * The current version of a config or secret the hub holds, undefined when it holds none of that
 * name; and, for a spec that names a version already (a kept revision, rolled back to), whether
 * that version is still held (else the reference takes the current one).
 */
export interface ValueCatalog {
  currentVersion(source: ValueSource, name: string): number | undefined;
  holds(source: ValueSource, name: string, version: number): boolean;
  /** Bytes of the current value; undefined when there is none (a catalog that does not say counts 0). */
  sizeOf?(source: ValueSource, name: string): number | undefined;
}

/** A catalog that holds nothing: every reference is refused. */
export const emptyCatalog: ValueCatalog = { currentVersion: () => undefined, holds: () => false };

/**
 * Bytes of configs and secrets one service may name in all (each counted once). Every node that
 * runs it receives them in its target, whose frames an agent takes up to 32 MiB: a few such
 * services must still fit in one.
 */
export const MAX_SERVICE_VALUE_BYTES = 4 * 1024 * 1024;

export interface MountContext {
  /** Configs and secrets references resolve against; absent: none exist. */
  values?: ValueCatalog;
  /**
   * Host paths (absolute, normalized) under which `binds` may mount; empty: none. A bind of a host
   * path lets a container read and write the device itself, so the hub's operator opts in per path.
   */
  allowedHostPaths?: readonly string[];
  /**
   * Versions already pinned (the revision a rollback accepts again): name -> version per source.
   * A reference keeps its version when the hub still holds it.
   */
  pinned?: { files?: readonly ValueFile[]; envFrom?: Readonly<Record<string, EnvFrom>> };
}

export interface NormalizedMounts {
  env: Record<string, string>;
  files?: ValueFile[];
  envFrom?: Record<string, EnvFrom>;
  volumes?: VolumeMount[];
  tmpfs?: TmpfsMount[];
  binds?: BindMount[];
}

/** A normalized absolute path's problem, or null: relative, "..", "." or empty segments, a trailing "/", or "/" itself. */
export function containerPathError(text: string): string | null {
  if (!text.startsWith('/')) return `must be an absolute path inside the container (starting with "/"), got "${text}"`;
  if (text === '/') return 'must not be "/" (the container\'s root)';
  if (text.includes('\0')) return 'must not contain a NUL character';
  const segments = text.slice(1).split('/');
  if (segments.some((s) => s === '..')) return `must stay inside the container: ".." is not allowed, got "${text}"`;
  if (segments.some((s) => s === '' || s === '.')) return `must be a normalized path (no "//", "/./" or trailing "/"), got "${text}"`;
  return null;
}

function parseMode(text: string | undefined, fallback: number, max: number, path: string, errors: FieldError[]): number {
  if (text === undefined) return fallback;
  if (!/^0?[0-7]{3,4}$/.test(text)) {
    errors.push({ path, message: `must be octal permission bits such as "0440", got "${text}"` });
    return fallback;
  }
  const mode = parseInt(text, 8);
  if (mode > max) errors.push({ path, message: `must be at most ${max.toString(8).padStart(4, '0')}, got "${text}"` });
  return mode;
}

/** Whether `hostPath` is one of `allowed` or lies under one of them. */
function underAllowed(hostPath: string, allowed: readonly string[]): boolean {
  return allowed.some((root) => hostPath === root || hostPath.startsWith(root === '/' ? '/' : `${root}/`));
}

/**
 * Checks and normalizes the mount fields and `env` of a spec that passed its schema; each problem
 * is added to `errors` naming its field. Pure: the catalog and allow-list are its inputs.
 */
export function normalizeMounts(spec: MountSpec, ctx: MountContext, errors: FieldError[]): NormalizedMounts {
  const values = ctx.values ?? emptyCatalog;
  const targets = new Map<string, string>();
  const claim = (target: string, field: string): void => {
    const problem = containerPathError(target);
    if (problem) return void errors.push({ path: field, message: problem });
    const first = targets.get(target);
    if (first !== undefined) errors.push({ path: field, message: `"${target}" is already mounted by ${first}` });
    else targets.set(target, field);
  };
  const pinnedFiles = new Map((ctx.pinned?.files ?? []).map((f) => [`${f.source}\0${f.name}`, f.version]));
  const pinnedEnv = new Map(Object.values(ctx.pinned?.envFrom ?? {}).map((e) => [`${e.source}\0${e.name}`, e.version]));
  const counted = new Set<string>();
  let valueBytes = 0;
  const versionOf = (source: ValueSource, name: string, field: string, pinned: Map<string, number>): number => {
    const key = `${source}\0${name}`;
    if (!counted.has(key)) {
      counted.add(key);
      valueBytes += values.sizeOf?.(source, name) ?? 0;
      if (valueBytes > MAX_SERVICE_VALUE_BYTES && valueBytes - (values.sizeOf?.(source, name) ?? 0) <= MAX_SERVICE_VALUE_BYTES) {
        errors.push({ path: field, message: `takes the configs and secrets this service names to ${valueBytes} bytes; at most ${MAX_SERVICE_VALUE_BYTES} (4 MiB) in all` });
      }
    }
    const kept = pinned.get(key);
    if (kept !== undefined && values.holds(source, name, kept)) return kept;
    const current = values.currentVersion(source, name);
    if (current === undefined) errors.push({ path: field, message: `no ${source} named "${name}" exists: create it first (PUT /v1/${source}s/${name})` });
    return current ?? 1;
  };

  const files: ValueFile[] = [];
  (spec.secrets ?? []).forEach((s, i) => {
    const base = `secrets[${i}]`;
    const target = s.target ?? `/run/secrets/${s.name}`;
    claim(target, `${base}.target`);
    const mode = parseMode(s.mode, DEFAULT_VALUE_FILE_MODE, 0o777, `${base}.mode`, errors);
    const version = versionOf('secret', s.name, `${base}.name`, pinnedFiles);
    files.push({ source: 'secret', name: s.name, version, target, mode, uid: s.uid ?? 0, gid: s.gid ?? 0 });
  });
  (spec.configs ?? []).forEach((c, i) => {
    const base = `configs[${i}]`;
    claim(c.target, `${base}.target`);
    const mode = parseMode(c.mode, DEFAULT_VALUE_FILE_MODE, 0o777, `${base}.mode`, errors);
    const version = versionOf('config', c.name, `${base}.name`, pinnedFiles);
    files.push({ source: 'config', name: c.name, version, target: c.target, mode, uid: c.uid ?? 0, gid: c.gid ?? 0 });
  });

  const env: Record<string, string> = {};
  const envFrom: Record<string, EnvFrom> = {};
  for (const [key, value] of Object.entries(spec.env ?? {})) {
    if (typeof value === 'string') {
      env[key] = value;
      continue;
    }
    const [source, name] = 'fromSecret' in value ? (['secret', value.fromSecret] as const) : (['config', value.fromConfig] as const);
    envFrom[key] = { source, name, version: versionOf(source, name, `env.${key}`, pinnedEnv) };
  }
  if (Object.keys(envFrom).length > MOUNT_LIMITS.maxEnvFrom) {
    errors.push({ path: 'env', message: `at most ${MOUNT_LIMITS.maxEnvFrom} values may come from configs and secrets, got ${Object.keys(envFrom).length}` });
  }

  const volumes: VolumeMount[] = [];
  const volumeNames = new Map<string, number>();
  (spec.volumes ?? []).forEach((v, i) => {
    claim(v.target, `volumes[${i}].target`);
    const first = volumeNames.get(v.name);
    if (first !== undefined) errors.push({ path: `volumes[${i}].name`, message: `"${v.name}" is already mounted by volumes[${first}]: mount a volume once` });
    else volumeNames.set(v.name, i);
    volumes.push({ name: v.name, target: v.target, readOnly: v.readOnly ?? false });
  });

  const tmpfs: TmpfsMount[] = (spec.tmpfs ?? []).map((t, i) => {
    claim(t.target, `tmpfs[${i}].target`);
    const mode = parseMode(t.mode, DEFAULT_TMPFS_MODE, 0o1777, `tmpfs[${i}].mode`, errors);
    return { target: t.target, sizeBytes: t.sizeMB * 1024 * 1024, mode };
  });

  const allowed = ctx.allowedHostPaths ?? [];
  const binds: BindMount[] = (spec.binds ?? []).map((b, i) => {
    const base = `binds[${i}]`;
    claim(b.target, `${base}.target`);
    const problem = containerPathError(b.hostPath)?.replace('inside the container', 'on the host');
    if (problem) errors.push({ path: `${base}.hostPath`, message: problem });
    else if (allowed.length === 0) errors.push({ path: `${base}.hostPath`, message: 'host paths may not be mounted: the hub was started without --allow-host-path' });
    else if (!underAllowed(b.hostPath, allowed)) {
      errors.push({ path: `${base}.hostPath`, message: `"${b.hostPath}" is not under a path the hub allows (${allowed.join(', ')})` });
    }
    return { hostPath: b.hostPath, target: b.target, readOnly: b.readOnly ?? false };
  });

  return {
    env,
    ...(files.length > 0 ? { files } : {}),
    ...(Object.keys(envFrom).length > 0 ? { envFrom } : {}),
    ...(volumes.length > 0 ? { volumes } : {}),
    ...(tmpfs.length > 0 ? { tmpfs } : {}),
    ...(binds.length > 0 ? { binds } : {}),
  };
}

/** Normalizes an allow-list entry of host paths: absolute, without "..", "." or a trailing "/". */
export function normalizeAllowedHostPath(text: string): { ok: true; path: string } | { ok: false; error: string } {
  if (!text.startsWith('/')) return { ok: false, error: `must be an absolute path, got "${text}"` };
  const normalized = path.posix.normalize(text).replace(/\/+$/, '') || '/';
  if (text.split('/').includes('..')) return { ok: false, error: `must not contain "..", got "${text}"` };
  return { ok: true, path: normalized };
}

/**
 * `spec` with every config and secret it names at the version the hub holds now (the same object
 * when none moved): a service runs the current value of each, and a rollback restores a spec, not
 * an earlier value. A value the hub no longer holds keeps its version (it cannot be deleted while in use).
 */
export function pinnedToCurrent<S extends { files?: ValueFile[]; envFrom?: Record<string, EnvFrom> }>(spec: S, values: ValueCatalog): S {
  let moved = false;
  const current = <R extends { source: ValueSource; name: string; version: number }>(ref: R): R => {
    const version = values.currentVersion(ref.source, ref.name);
    if (version === undefined || version === ref.version) return ref;
    moved = true;
    return { ...ref, version };
  };
  const files = spec.files?.map(current);
  const envFrom = spec.envFrom ? Object.fromEntries(Object.entries(spec.envFrom).map(([k, ref]) => [k, current(ref)])) : undefined;
  if (!moved) return spec;
  return { ...spec, ...(files ? { files } : {}), ...(envFrom ? { envFrom } : {}) };
}
